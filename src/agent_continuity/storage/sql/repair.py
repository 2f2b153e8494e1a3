"""``verify`` for the SQL stores: check every row, and with ``repair`` mend what is derivable.

This module is the maintenance half of :class:`~.store.SqlStore` and uses
its internals on purpose. Repair never deletes the only copy of anything:
damaged bytes are first copied to the ``quarantine`` table. The registry is
rebuilt from the journals, a damaged lease is resealed so that fencing still
holds, a misfiled journal is filed under the session its first event names,
and each number a journal lost gets a tombstone (:mod:`.tombstones`), so a
repaired store verifies clean and the loss stays on record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent_continuity import ids
from agent_continuity.errors import CorruptRecord, InvalidIdentifier, KeyUnavailable
from agent_continuity.model import Damage, EventKind, Lease, SessionRecord, utc_now

from .. import codec
from ..base import VerifyReport
from ..index import derive_record, missing_journal_detail
from ..tombstones import Lost, lost_numbers, tombstone, tombstones
from .statements import DOCUMENTS, INSERT_EVENT, JOURNAL

if TYPE_CHECKING:
    from .connection import SqlConnection
    from .store import SqlStore


def verify_store(store: SqlStore, *, repair: bool) -> VerifyReport:
    """Check (and with ``repair``, mend) every row; see :meth:`~.base.Store.verify`."""
    report = VerifyReport()
    conn = store._connection()
    try:
        problems = store._integrity_problems(conn)
        if problems:
            report.damage.extend(damage_at(str(store.where), "integrity", p) for p in problems)
        journals, misfiled = _check_journals(store, conn, report)
        damaged, rebuild, mend = _check_rows(store, conn, journals, report)
    except Exception as exc:
        if not isinstance(exc, (*store.driver_errors, CorruptRecord)):
            raise
        # The database cannot read its own pages: no row-level repair is safe.
        detail = f"{exc}; {store._salvage_advice()}"
        report.damage.append(damage_at(str(store.where), "integrity", detail))
        return report
    lost = lost_journals(store, conn, journals)
    if repair and (damaged or rebuild or mend or misfiled or lost):
        with store._write() as conn:
            _relink(store, conn, misfiled, report)
            for session_id in lost:
                _rebuild_journal(store, conn, session_id, report)
                row = conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,))
                if row.fetchone() is None:  # the registry row was lost too
                    _rebuild(store, conn, session_id, report)
            kept = _quarantine(store, conn, damaged, report)
            for session_id in sorted(mend):
                _close_gaps(store, conn, session_id, kept.get(session_id, {}), report)
            for session_id in sorted(rebuild):
                _rebuild(store, conn, session_id, report)
    return report


def _check_journals(
    store: SqlStore, conn: SqlConnection, report: VerifyReport
) -> tuple[set[str], list[tuple[int, str | None, str | None]]]:
    """Check each journal key against the session its first event names.

    Returns:
        The sessions that have a journal, and the keys filed under no or the
        wrong session id: (key, the id its first event names, the id it is filed under).
    """
    filed: dict[int, str] = dict(conn.execute("SELECT id, session_id FROM journals"))
    firsts = dict(conn.execute("SELECT journal, CAST(line AS BLOB) FROM events WHERE seq = 1"))
    journals: set[str] = set()
    misfiled: list[tuple[int, str | None, str | None]] = []
    for key in [r[0] for r in conn.execute("SELECT DISTINCT journal FROM events")]:
        stored, named = filed.get(key), _named(firsts.get(key))
        report.checked += 1
        if stored is not None and _is_session_id(stored) and named in (None, stored):
            journals.add(stored)
            continue
        where = f"filed under {stored!r}" if stored is not None else "filed under no session"
        detail = f"journal {key} is {where}, but its first event is session {named}"
        if named is None:
            detail = f"journal {key} is {where}, and its first event is lost"
        report.damage.append(damage_at(store._loc("journals", key), "missing", detail))
        misfiled.append((key, named, stored))
    return journals, misfiled


def _relink(
    store: SqlStore,
    conn: SqlConnection,
    misfiled: list[tuple[int, str | None, str | None]],
    report: VerifyReport,
) -> None:
    """File each misfiled journal under the session its first event names, if that
    session has no other journal; the damaged id is kept in the quarantine."""
    for key, named, stored in misfiled:
        taken = conn.execute("SELECT 1 FROM journals WHERE session_id = ?", (named,))
        if named is None or taken.fetchone() is not None:
            continue
        if stored is not None:
            reason = f"journal {key} was filed under this id; its first event is {named}"
            kept = keep(store, conn, "journals", str(key), reason, stored.encode())
            report.quarantined.append(kept)
        conn.execute(store.upserts["journals"], (key, named))
        report.repaired.append(f"{store._loc('journals', key)}: filed under {named}")


def _check_rows(
    store: SqlStore, conn: SqlConnection, journals: set[str], report: VerifyReport
) -> tuple[list[tuple[str, tuple[object, ...], Damage]], set[str], set[str]]:
    """Check every row; return the damaged rows (table, key, damage), the
    sessions whose registry entry must be rebuilt from the journal, and
    those whose journal lost events."""
    damaged: list[tuple[str, tuple[object, ...], Damage]] = []
    for table, (key, column) in DOCUMENTS.items():
        for row_key, data in conn.execute(
            f"SELECT {key}, CAST({column} AS BLOB) FROM {table}"
        ).fetchall():
            report.checked += 1
            try:
                if table == "points":
                    # Also checks the listing columns. A damaged file-state chunk leaves
                    # the point valid and its code context unknown: reported, not moved.
                    report.damage += store.load_point(row_key).damage
                else:
                    codec.load_row(data, store._loc(table, row_key), store.sealer, table, row_key)
            except (CorruptRecord, InvalidIdentifier) as exc:
                damage = damage_at(store._loc(table, row_key), "checksum", str(exc))
                report.damage.append(damage)
                damaged.append((table, (row_key,), damage))
    registered = {r[0] for r in conn.execute("SELECT id FROM sessions")}
    mend = set()
    for session_id in sorted(journals):
        read = store.read_events(session_id)
        report.checked += len(read.events)
        report.damage.extend(read.damage)
        covered = max((p.seq for p in store.list_points(session_id)), default=0)
        if not read.damage and covered > read.end_seq:
            # Cut at a row boundary, a journal has no damaged row to show; its
            # recovery points still know how far it went.
            detail = (
                f"the journal ends at event {read.end_seq} but a recovery point covers event "
                f"{covered}; events {read.end_seq + 1}..{covered} are lost"
            )
            report.damage.append(damage_at(store._loc("events", session_id), "truncated", detail))
        if read.damage:
            mend.add(session_id)
        for damage in read.damage:
            if damage.kind != "gap":
                seq = int(damage.location.rsplit("/", 1)[1])
                damaged.append(("events", (session_id, seq), damage))
    for sid in sorted(journals - registered):
        detail = f"{sid} has a journal but no registry entry"
        report.damage.append(damage_at(store._loc("sessions", sid), "missing", detail))
    for sid in lost_journals(store, conn, journals):
        report.checked += 1
        detail = missing_journal_detail(sid)
        report.damage.append(damage_at(store._loc("events", sid), "missing", detail))
    rebuild = (journals - registered) | {
        str(key[0]) for table, key, _ in damaged if table == "sessions"
    }
    return damaged, rebuild & journals, mend


def keep(
    store: SqlStore, conn: SqlConnection, source: str, key: str, reason: str, data: bytes
) -> str:
    """Copy damaged bytes to the quarantine table; returns where they are now."""
    key_made = store._insert_id(
        conn,
        "INSERT INTO quarantine (source, key, found, reason, data) VALUES (?, ?, ?, ?, ?)",
        (source, key, utc_now().isoformat(), reason, data),
    )
    return store._loc("quarantine", key_made)


def _quarantine(
    store: SqlStore,
    conn: SqlConnection,
    damaged: list[tuple[str, tuple[object, ...], Damage]],
    report: VerifyReport,
) -> dict[str, Lost]:
    """Move damaged rows to the quarantine table: the bytes are kept, never deleted.

    Returns:
        For each session, the events quarantined: why each was lost and where it went.
    """
    events: dict[str, Lost] = {}
    for table, key, damage in damaged:
        if table == "events":
            where, column = f"journal = {JOURNAL} AND seq = ?2", "line"
        else:
            where, column = f"{DOCUMENTS[table][0]} = ?", DOCUMENTS[table][1]
        row = conn.execute(
            f"SELECT CAST({column} AS BLOB) FROM {table} WHERE {where}", key
        ).fetchone()
        if row is None:
            continue
        if table == "leases":
            _reseal_lease(store, conn, str(key[0]))
        kept = keep(store, conn, table, "/".join(str(k) for k in key), damage.detail, row[0])
        if table != "leases":
            conn.execute(f"DELETE FROM {table} WHERE {where}", key)
        if table == "events":
            reason = "torn" if codec.cut_short(row[0]) else "checksum"
            events.setdefault(str(key[0]), {})[int(str(key[1]))] = (reason, kept)
        report.quarantined.append(kept)
    return events


def _close_gaps(
    store: SqlStore, conn: SqlConnection, session_id: str, kept: Lost, report: VerifyReport
) -> None:
    """Put a tombstone at every number the journal lost (damaged rows already quarantined)."""
    read = store.read_events(session_id)
    present = [e.seq for e in read.events]
    lost: Lost = {
        seq: kept.get(seq, ("missing", None))
        for seq in lost_numbers(present, max([*present, *kept], default=0))
    }
    stones = tombstones(read.events, lost, utc_now())
    journal = conn.execute(f"SELECT {JOURNAL}", (session_id,)).fetchone()[0]
    lines = [(journal, e.seq, codec.encode_event(e, store.sealer, session_id)) for e in stones]
    conn.executemany(INSERT_EVENT, lines)
    if stones:
        numbers = ", ".join(str(e.seq) for e in stones)
        report.repaired.append(
            f"{store._loc('events', session_id)}: closed lost event(s) {numbers} with tombstones"
        )


def lost_journals(store: SqlStore, conn: SqlConnection, journals: set[str]) -> list[str]:
    """The sessions known to a registry row or a recovery point whose journal is gone."""
    known = {str(r[0]) for r in conn.execute("SELECT id FROM sessions")}
    known |= {str(r[0]) for r in conn.execute("SELECT DISTINCT session_id FROM points")}
    return sorted(s for s in known - journals if _is_session_id(s))


def _rebuild_journal(
    store: SqlStore, conn: SqlConnection, session_id: str, report: VerifyReport
) -> None:
    """Write a lost journal again: a tombstone at every number another record saw.

    What the session's points, emergency backup and registry entry hold is
    kept; the journal says, number by number, that the events are lost
    (reason ``missing``), so recovery replays them after the newest valid
    point, the session takes writes again, and the store verifies clean.
    """
    seen, when = 1, []
    row = conn.execute("SELECT CAST(doc AS BLOB) FROM sessions WHERE id = ?", (session_id,))
    doc = row.fetchone()
    if doc is not None:
        try:
            opened = codec.load_row(doc[0], "", store.sealer, "sessions", session_id)
            record = SessionRecord.model_validate(opened)
            seen = max(seen, record.last_seq)
            when.append(record.last_activity)
        except (CorruptRecord, ValueError):
            pass  # reported with the registry rows
    points = store.list_points(session_id)
    if points:
        seen = max(seen, points[-1].seq)
        when.append(points[-1].created)
    try:
        backup = store.load_emergency(session_id)
    except CorruptRecord:
        backup = None  # reported with the emergency rows
    if backup is not None:
        seen = max(seen, backup.seq)
    now = utc_now()
    at = max(when, default=now)
    journal = conn.execute(f"SELECT {JOURNAL}", (session_id,)).fetchone()[0]
    if conn.execute("SELECT 1 FROM events WHERE journal = ?", (journal,)).fetchone():
        return  # a misfiled journal, filed under this session again just now
    if journal is None:
        journal = store._insert_id(
            conn, "INSERT INTO journals (session_id) VALUES (?)", (session_id,)
        )
    stones = [
        tombstone(seq, reason="missing", quarantine=None, at=at, repaired_at=now)
        for seq in range(1, seen + 1)
    ]
    lines = [(journal, e.seq, codec.encode_event(e, store.sealer, session_id)) for e in stones]
    conn.executemany(INSERT_EVENT, lines)
    store._marks.forget(session_id)
    store._saw_end(session_id, seen)
    report.repaired.append(
        f"{store._loc('events', session_id)}: the journal was missing; rebuilt with a tombstone "
        f"at each of events 1..{seen}; what the recovery points and the emergency backup hold "
        "is kept"
    )


def _reseal_lease(store: SqlStore, conn: SqlConnection, session_id: str) -> None:
    """Replace a damaged lease by an expired one that keeps the highest token seen,
    so the next writer still fences out every earlier one."""
    token = store._one("SELECT token FROM leases WHERE session_id = ?", session_id)[0]
    for event in store.read_events(session_id).events:
        if event.kind is EventKind.LEASE:
            token = max(int(token), int(event.payload.get("token", 0)))
    now = utc_now()
    sealed = Lease(
        session_id=session_id,
        token=max(int(token), 1),
        holder="verify --repair",
        acquired=now,
        heartbeat=now,
        expires=now,
    )
    store._put_lease(conn, sealed)


def _rebuild(store: SqlStore, conn: SqlConnection, session_id: str, report: VerifyReport) -> None:
    """Rebuild a registry entry from the newest valid point and the journal after it."""
    try:
        record = derive_record(store, session_id)
    except CorruptRecord as exc:
        detail = f"cannot rebuild {session_id}: {exc}"
        report.damage.append(damage_at(store._loc("sessions", session_id), "missing", detail))
        return
    store._put_session(conn, record)
    report.repaired.append(store._loc("sessions", session_id))


def _is_session_id(value: object) -> bool:
    try:
        ids.validate_session_id(value)
    except InvalidIdentifier:
        return False
    return True


def _named(first: bytes | None) -> str | None:
    """The session id a journal's first event names, or None if it is lost or names none."""
    if first is None:
        return None
    try:
        event = codec.decode_event(first)
        named = event.payload["record"]["id"] if event.kind is EventKind.SESSION else None
    except (CorruptRecord, KeyError, TypeError, KeyUnavailable):
        return None  # sealed: bound to a session this journal cannot name
    return named if _is_session_id(named) else None


def damage_at(location: str, kind: str, detail: str) -> Damage:
    """One finding of ``verify`` or of a read: where, what kind, and what to do."""
    return Damage(location=location, kind=kind, detail=detail)


def reason(problem: CorruptRecord | None) -> str:
    """What is wrong with a record, without the advice its message ends with."""
    if problem is None:
        return "it is missing"
    return str(problem).split("; run `continuity verify", 1)[0]
