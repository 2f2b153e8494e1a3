"""Storage backends behind one protocol, chosen by URL.

``memory:``, ``files:PATH`` and ``sqlite:///PATH``.
Backends import their drivers lazily, so opening a files store never imports
sqlite3 or psycopg.
"""

from __future__ import annotations

from pathlib import Path

from agent_continuity.errors import ConfigError, StoreUnavailable

from .base import DURABILITY_MODES, JournalRead, LeaseRequest, Store, VerifyReport

__all__ = ["JournalRead", "LeaseRequest", "Store", "VerifyReport", "open_store"]


def open_store(url: str, *, durability: str = "sync", base_dir: Path | None = None) -> Store:
    """Open the store a URL names.

    Args:
        url: ``memory:``, ``files:PATH`` or ``sqlite:///PATH``.
            A relative PATH is taken from ``base_dir`` (default: the current directory).
        durability: ``"sync"`` (default) or ``"batched"``.
        base_dir: Where relative paths start.

    Raises:
        ConfigError: If the URL or durability mode is not understood.
        StoreUnavailable: If the backend's driver is missing or it cannot connect.
    """
    if durability not in DURABILITY_MODES:
        raise ConfigError(
            f"durability must be one of {', '.join(DURABILITY_MODES)}, not {durability!r}"
        )
    base = base_dir if base_dir is not None else Path.cwd()
    scheme, _, rest = url.partition(":")
    if scheme == "memory":
        from .memory import MemoryStore

        return MemoryStore(url, durability)
    if scheme == "files":
        if not rest:
            raise ConfigError("files: needs a folder, e.g. files:projectDocs/tracking")
        from .files import FileStore

        return FileStore(base / rest, durability=durability, url=url)
    if scheme == "sqlite":
        if not rest.startswith("///") or len(rest) <= 3:
            raise ConfigError(
                "sqlite URLs look like sqlite:///relative/path.db or sqlite:////abs/path.db"
            )
        from .sqlite import SqliteStore

        return SqliteStore(base / rest[3:], durability=durability, url=url)
    if scheme in ("postgresql", "postgres"):
        raise StoreUnavailable(
            "the PostgreSQL store is not available yet; use files:PATH or sqlite:///PATH"
        )
    raise ConfigError(f"unknown store URL {url!r}; use files:PATH, sqlite:///PATH or memory:")
