"""Reading a journal from the SQLite store: every row checked, every damage reported.

A row holds one journal line exactly as the files store writes it, checksum
included, keyed by the journal's small integer and the event's number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent_continuity import ids
from agent_continuity.errors import CorruptRecord

from . import codec
from .base import JournalRead
from .sqlite_repair import damage_at
from .sqlite_schema import JOURNAL

if TYPE_CHECKING:
    from .sqlite import SqliteStore


def read_events(store: SqliteStore, session_id: str, after_seq: int = 0) -> JournalRead:
    """See :meth:`~.base.Store.read_events`."""
    ids.validate_session_id(session_id)
    conn = store._connection()
    # Every row, as the files store reads every line: damage before a recovery
    # point is still damage, and a point made over it must not hide it.
    rows = conn.execute(
        f"SELECT seq, CAST(line AS BLOB) FROM events WHERE journal = {JOURNAL} ORDER BY seq",
        (session_id,),
    ).fetchall()
    if not rows:
        store._require(conn, session_id)
    clean = _read_clean(store, session_id, rows, after_seq)
    if clean is not None:
        return clean
    result = JournalRead(events=[])
    expected = 1
    for seq, line in rows:
        location = store._loc("events", session_id, seq)
        if seq > expected:
            missing = str(expected) if seq == expected + 1 else f"{expected}-{seq - 1}"
            detail = f"events {missing} of {session_id} are missing from the journal"
            result.damage.append(
                damage_at(store._loc("events", session_id, missing), "gap", detail)
            )
        expected = seq + 1
        try:
            if seq <= after_seq:
                # Checked (checksum, number) but not decoded, as in the files store.
                if codec.event_seq(line, location) != seq:
                    detail = f"{location}: row {seq} holds another event"
                    result.damage.append(damage_at(location, "decode", detail))
                else:
                    result.end_seq = seq
                continue
            event = codec.decode_event(line, location)
        except CorruptRecord as exc:
            result.damage.append(damage_at(location, "checksum", str(exc)))
            continue
        if event.seq != seq:
            detail = f"{location}: row {seq} holds event {event.seq}"
            result.damage.append(damage_at(location, "decode", detail))
            continue
        result.events.append(event)
        result.end_seq = seq
    return result


def _read_clean(
    store: SqliteStore, session_id: str, rows: list[tuple[int, bytes]], after_seq: int
) -> JournalRead | None:
    """The events after ``after_seq`` of an undamaged journal; None for any doubt.

    As in the files store: one tight checksum loop proves every row intact
    and numbered 1, 2, 3, ...; the loop above reports whatever is not.
    """
    seqs = [seq for seq, _ in rows]
    if seqs != list(range(1, len(rows) + 1)):
        return None
    # Rows hold whole lines, newline included; a row without one fails the check.
    if codec.intact_seqs([line[:-1] for _, line in rows]) != seqs:
        return None
    start = max(after_seq, 0)
    try:
        events = [
            codec.decode_event(line, store._loc("events", session_id, seq))
            for seq, line in rows[start:]
        ]
    except CorruptRecord:
        return None
    return JournalRead(events=events, end_seq=len(rows))
