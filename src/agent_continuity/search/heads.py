"""Each journal's high-water mark, read cheaply: what tells the index which journals moved.

A head is a number that grows whenever a journal gains an event: the size of
a files store's journal file (journals are append-only), the highest sequence
number of an SQLite store's journal. Reading every head is one directory scan
or one query, never a read of the journals themselves, and is skipped while
nothing can have moved (:class:`_FileHeads`, :class:`_SqliteHeads`). A head that shrank
means the journal was rewritten (``verify --repair`` cut a torn tail): that
session is indexed again from its start.

A store may provide its own ``journal_heads() -> dict[str, int]`` (the
PostgreSQL store: ``SELECT session_id, max(seq) FROM events GROUP BY 1``);
for a store that has no cheap heads, :func:`journal_heads` returns None and
the catalog asks each session's journal for the events after its mark.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
import weakref
from pathlib import Path
from typing import Any

from agent_continuity.storage import Store

_JOURNAL_SUFFIX = ".jsonl"
_JOURNAL_NAME = re.compile(r"SESSION-\d{6}-\d{3,}\.jsonl")


def journal_heads(store: Store) -> dict[str, int] | None:
    """Every journal's head, by session id; None when the store has no cheap way to say.

    Args:
        store: The store.
    """
    own = getattr(store, "journal_heads", None)
    if callable(own):
        heads: dict[str, int] = own()
        return heads
    layout = getattr(store, "layout", None)
    journals = getattr(layout, "journals", None)
    sessions = getattr(layout, "sessions", None)
    if isinstance(journals, Path) and isinstance(sessions, Path):
        reader = _FILES.get(store)
        if reader is None:
            reader = _FILES[store] = _FileHeads(journals, sessions)
        return reader.read()
    path = getattr(store, "path", None)
    if isinstance(path, Path) and store.url.startswith("sqlite:"):
        return _sqlite_heads(store, path)
    return None


#: However still the registry stands, every journal is looked at again this often.
FULL_SCAN_SECONDS = 30.0


class _FileHeads:
    """A files store's journal heads, looking only at what can have moved.

    A journal grows without a registry write only while its session is
    active: starting, ending, interrupting and resuming a session all rewrite
    the registry and its active list. So while those two documents and the
    journals folder are unchanged, only the active sessions' journals are
    looked at; any change to them (and at least every
    :data:`FULL_SCAN_SECONDS`) looks at every journal again.
    """

    def __init__(self, journals: Path, sessions: Path) -> None:
        self.journals = journals
        self.registry = sessions / "session-registry.json"
        self.active = sessions / "active-sessions.json"
        self.signature: tuple[int, ...] | None = None
        self.scanned = 0.0
        self.heads: dict[str, int] = {}

    def _signature(self) -> tuple[int, ...] | None:
        found: list[int] = []
        for path in (self.registry, self.active, self.journals):
            try:
                st = os.stat(path)
            except OSError:
                return None
            found += [st.st_ino, st.st_mtime_ns, st.st_size]
        return tuple(found)

    def _active_ids(self) -> list[str] | None:
        try:
            doc = json.loads(self.active.read_bytes())
            listed = doc["activeSessions"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(listed, list) or not all(isinstance(i, str) for i in listed):
            return None
        return listed

    def read(self) -> dict[str, int]:
        signature = self._signature()
        now = time.monotonic()
        active = self._active_ids() if signature is not None else None
        if (
            signature is None
            or signature != self.signature
            or active is None
            or now - self.scanned > FULL_SCAN_SECONDS
        ):
            self.heads = _file_heads(self.journals)
            self.signature, self.scanned = signature, now
            return dict(self.heads)
        for session_id in active:
            if _JOURNAL_NAME.fullmatch(session_id + _JOURNAL_SUFFIX):
                try:
                    self.heads[session_id] = os.stat(
                        self.journals / (session_id + _JOURNAL_SUFFIX)
                    ).st_size
                except FileNotFoundError:
                    self.heads.pop(session_id, None)
        return dict(self.heads)


_FILES: weakref.WeakKeyDictionary[Any, _FileHeads] = weakref.WeakKeyDictionary()


def _file_heads(folder: Path) -> dict[str, int]:
    heads: dict[str, int] = {}
    try:
        entries = os.scandir(folder)
    except FileNotFoundError:
        return heads
    with entries:
        for entry in entries:
            # A cheap look at the name first: this runs for every journal on every query.
            name = entry.name
            if not _JOURNAL_NAME.fullmatch(name):
                continue
            try:
                heads[name[: -len(_JOURNAL_SUFFIX)]] = entry.stat().st_size
            except FileNotFoundError:
                continue
    return heads


class _SqliteHeads:
    """A read-only connection to an SQLite store, and the heads it last read.

    ``PRAGMA data_version`` changes when any other connection (another
    process, or the store's own) commits: while it stands still, the heads
    read last time still hold, and a query pays nothing to know it.
    """

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, timeout=30, check_same_thread=False
        )
        self.version: int | None = None
        self.heads: dict[str, int] = {}

    def read(self) -> dict[str, int]:
        version = int(self.conn.execute("PRAGMA data_version").fetchone()[0])
        if version != self.version:
            rows = self.conn.execute(
                "SELECT j.session_id, (SELECT MAX(seq) FROM events WHERE journal = j.id)"
                " FROM journals AS j"
            ).fetchall()
            self.heads = {str(sid): int(seq or 0) for sid, seq in rows}
            self.version = version
        return dict(self.heads)


_SQLITE: weakref.WeakKeyDictionary[Any, _SqliteHeads] = weakref.WeakKeyDictionary()


def _sqlite_heads(store: Store, path: Path) -> dict[str, int] | None:
    reader = _SQLITE.get(store)
    try:
        if reader is None:
            reader = _SQLITE[store] = _SqliteHeads(path)
        return reader.read()
    except sqlite3.Error:
        # A schema this code does not know, or no database: ask each journal instead.
        _SQLITE.pop(store, None)
        return None
