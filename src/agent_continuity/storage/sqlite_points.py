"""The SQLite store's recovery points: one row each, the body a gzip document.

The columns beside ``body`` (session, seq, creation time, trigger) list the
points without reading them; they sit outside the checksum, so a loaded
point must agree with them.
"""

from __future__ import annotations

import sqlite3
from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import ValidationError

from agent_continuity import ids
from agent_continuity.errors import CorruptRecord, DuplicateRecord, RecoveryPointNotFound
from agent_continuity.model import RecoveryPoint, RecoveryPointInfo, Trigger

from . import codec, retention

if TYPE_CHECKING:
    from .sqlite import SqliteStore


def save_point(store: SqliteStore, point: RecoveryPoint) -> RecoveryPointInfo:
    """See :meth:`~.base.Store.save_point`."""
    ids.validate_recovery_id(point.id)
    body = codec.dump_compressed(point.to_wire())
    # Full precision, so the listing orders points exactly as their bodies would.
    row = (
        point.id,
        point.session_id,
        point.seq,
        point.created.isoformat(),
        point.trigger.value,
    )
    with store._write() as conn:
        store._require(conn, point.session_id)
        try:
            conn.execute("INSERT INTO points VALUES (?, ?, ?, ?, ?, ?)", (*row, body))
        except sqlite3.IntegrityError:
            raise DuplicateRecord(
                f"recovery point {point.id} exists already in {store.url}; points are never "
                "overwritten, save under a new id"
            ) from None
    return RecoveryPointInfo(
        id=point.id,
        session_id=point.session_id,
        seq=point.seq,
        created=point.created,
        trigger=point.trigger,
        location=store._loc("points", point.id),
    )


def load_point(store: SqliteStore, point_id: str) -> RecoveryPoint:
    """See :meth:`~.base.Store.load_point`."""
    ids.validate_recovery_id(point_id)
    row = store._one(
        "SELECT session_id, seq, trigger, CAST(body AS BLOB) FROM points WHERE id = ?", point_id
    )
    if row is None:
        raise RecoveryPointNotFound(f"no recovery point {point_id} in {store.url}")
    location = store._loc("points", point_id)
    try:
        point = RecoveryPoint.model_validate(codec.load_compressed(row[3], location))
    except ValidationError as exc:
        raise CorruptRecord(f"{location}: record cannot be decoded ({exc})", location) from None
    # The listing columns sit outside the checksum; a point must agree with them.
    if (point.id, point.session_id, point.seq, point.trigger.value) != (point_id, *row[:3]):
        raise CorruptRecord(f"{location}: listing columns disagree with the point", location)
    return point


def list_points(store: SqliteStore, session_id: str) -> list[RecoveryPointInfo]:
    """See :meth:`~.base.Store.list_points`."""
    ids.validate_session_id(session_id)
    rows = store._all(
        "SELECT id, seq, created, trigger FROM points WHERE session_id = ?", session_id
    )
    infos = []
    prefix = f"{store.path}:points/"
    for point_id, seq, created, trigger in rows:
        location = prefix + str(point_id)
        try:
            at, kind = datetime.fromisoformat(created), Trigger(trigger)
            infos.append(
                RecoveryPointInfo(
                    id=point_id,
                    session_id=session_id,
                    seq=seq,
                    created=at,
                    trigger=kind,
                    location=location,
                )
            )
        except (ValueError, TypeError) as exc:
            raise CorruptRecord(f"{location}: listing is damaged ({exc})", location) from None
    return sorted(infos, key=lambda i: (i.seq, i.created, i.id))


def prune_points(store: SqliteStore, session_id: str, keep_automatic: int) -> list[str]:
    """See :meth:`~.base.Store.prune_points`."""
    conn = store._connection()
    if store.durability == "sync":
        # Deleting needs no fsync of its own: the commit is in the WAL (it survives
        # kill -9), the next synced commit makes it durable too, and a power
        # failure before that only brings back old, valid points that the next
        # pruning removes. What is kept is durable already.
        conn.execute("PRAGMA synchronous = NORMAL")
    try:
        with store._write() as conn:
            doomed = retention.prunable(
                store.list_points(session_id), keep_automatic, lambda info: _valid(store, info)
            )
            conn.executemany("DELETE FROM points WHERE id = ?", [(p.id,) for p in doomed])
    finally:
        if store.durability == "sync":
            with suppress(sqlite3.Error):  # a broken connection is replaced anyway
                conn.execute("PRAGMA synchronous = FULL")
    return [p.id for p in doomed]


def _valid(store: SqliteStore, info: RecoveryPointInfo) -> bool:
    try:
        store.load_point(info.id)
    except CorruptRecord:
        return False
    return True
