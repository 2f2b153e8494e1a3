"""A SQLite store's connections: one per thread, closed with the thread."""

from __future__ import annotations

import sqlite3
from contextlib import suppress


class ThreadConnection:
    """One thread's connection, closed when the thread ends and its locals are dropped.

    Without this, a thread-per-request server would keep a connection (and
    its file descriptors) for every thread it ever ran.
    """

    __slots__ = ("__weakref__", "conn")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __del__(self) -> None:
        with suppress(sqlite3.Error):
            self.conn.close()
