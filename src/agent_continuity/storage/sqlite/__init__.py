"""``sqlite:///PATH``: SQLite's dialect of the shared SQL store (:mod:`..sql`)."""

from __future__ import annotations

from .store import SqliteStore

__all__ = ["SqliteStore"]
