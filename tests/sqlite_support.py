"""Helpers of the SQLite store's own tests: sessions, lease requests, and the raw file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent_continuity.model import EventDraft, EventKind, Lease, SessionRecord
from agent_continuity.storage import LeaseRequest
from agent_continuity.storage.sqlite import SqliteStore

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
# The events table keys each journal by a small integer, filed in ``journals``.
JOURNAL_OF = "(SELECT id FROM journals WHERE session_id = ?)"


def request(holder: str = "111@alpha", now: datetime = NOW) -> LeaseRequest:
    return LeaseRequest(holder=holder, pid=111, host="alpha", ttl=timedelta(minutes=5), now=now)


def note(text: str) -> EventDraft:
    return EventDraft(kind=EventKind.NOTE, at=NOW, payload={"text": text})


def new_session(store: SqliteStore, holder: str = "111@alpha") -> tuple[SessionRecord, Lease]:
    draft = SessionRecord(id="unset", type="task-execution", created=NOW, last_activity=NOW)
    return store.create_session(draft, request(holder))


@contextmanager
def raw(db: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection to the store file, as a person with `sqlite3` would open it."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def flip_byte(db: Path, table: str, column: str, where: str, key: tuple[object, ...]) -> bytes:
    with raw(db) as conn:
        data = bytearray(
            conn.execute(f"SELECT {column} FROM {table} WHERE {where}", key).fetchone()[0]
        )
        data[len(data) // 2] ^= 0x20
        conn.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (bytes(data), *key))
    return bytes(data)
