"""Each journal's high-water mark, read cheaply: what tells the index which journals moved.

A head is a number that grows whenever a journal gains an event: the size of
a files store's journal file (journals are append-only), the highest sequence
number of an SQLite store's journal. Reading every head is one directory scan
or one query, never a read of the journals themselves. A head that shrank
means the journal was rewritten (``verify --repair`` cut a torn tail): that
session is indexed again from its start.

A store may provide its own ``journal_heads() -> dict[str, int]`` (the
PostgreSQL store: ``SELECT session_id, max(seq) FROM events GROUP BY 1``);
for a store that has no cheap heads, :func:`journal_heads` returns None and
the catalog asks each session's journal for the events after its mark.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from agent_continuity import ids
from agent_continuity.errors import InvalidIdentifier
from agent_continuity.storage import Store

_JOURNAL_SUFFIX = ".jsonl"


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
    if isinstance(journals, Path):
        return _file_heads(journals)
    path = getattr(store, "path", None)
    if isinstance(path, Path) and store.url.startswith("sqlite:"):
        return _sqlite_heads(path)
    return None


def _file_heads(folder: Path) -> dict[str, int]:
    heads: dict[str, int] = {}
    try:
        entries = os.scandir(folder)
    except FileNotFoundError:
        return heads
    with entries:
        for entry in entries:
            name = entry.name
            if not name.endswith(_JOURNAL_SUFFIX):
                continue
            try:
                session_id = ids.validate_session_id(name[: -len(_JOURNAL_SUFFIX)])
            except InvalidIdentifier:
                continue
            try:
                heads[session_id] = entry.stat().st_size
            except FileNotFoundError:
                continue
    return heads


def _sqlite_heads(path: Path) -> dict[str, int] | None:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:
        return None
    try:
        rows = conn.execute(
            "SELECT j.session_id, (SELECT MAX(seq) FROM events WHERE journal = j.id)"
            " FROM journals AS j"
        ).fetchall()
    except sqlite3.Error:
        # A schema this code does not know: fall back on asking each journal.
        return None
    finally:
        conn.close()
    return {str(sid): int(seq or 0) for sid, seq in rows}
