"""The SQL stores' recovery points: one row each, the body a gzip document.

The columns beside ``body`` (session, seq, creation time, trigger) list the
points without reading them; they sit outside the checksum, so a loaded
point must agree with them.

With ``durability="sync"`` a point made on request or by a trigger is
fsynced before it returns. An automatic (interval) point, and the pruning
of old ones, is committed without an fsync of its own: it survives ``kill
-9`` at once, and power loss with the next synced commit (the session's next
append) or WAL checkpoint. A power failure before that takes back only that
point, never an event: recovery then starts from the point before it and
replays the journal, which every append made durable. What such a failure
can cost is the code context that one interval save observed.

A point saved by the journal's writer, when that writer knows rows 1..seq
intact, carries their ``journalMark`` inside its checksummed body (see
:mod:`.journal`); a handle that loads the point remembers the mark
for its next read of the events after it. The loaded model never holds it.

A large code context goes to the ``file_states`` table, chunks by hash shared
by the session's points (see :mod:`..file_states`), in the transaction that
inserts the first point referring to them; pruning deletes, in its own
transaction, the chunks no point refers to any more.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import ValidationError

from agent_continuity import ids
from agent_continuity.errors import (
    CorruptRecord,
    DuplicateRecord,
    InvalidInput,
    RecoveryPointNotFound,
    SessionNotFound,
)
from agent_continuity.model import RecoveryPoint, RecoveryPointInfo, Trigger

from .. import codec, file_states, retention, shown_url
from ..journal_file import JournalMark
from .statements import JOURNAL

if TYPE_CHECKING:
    from ..envelope import Sealer
    from .connection import SqlConnection
    from .store import SqlStore

# The point goes in only if its session exists (a registry entry or a journal).
_SAVE = (
    "INSERT INTO points (id, session_id, seq, created, trigger, body)"
    " SELECT ?2, ?1, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM sessions WHERE id = ?1)"
    f" OR EXISTS (SELECT 1 FROM events WHERE journal = {JOURNAL})"
)
_ROW = "SELECT session_id, seq, trigger, CAST(body AS BLOB) FROM points WHERE id = ?"
# A session's points are the ids from ?2 up to ?3 (every point id starts with its
# session's part, so the primary key finds them without an index of its own); the
# body only of point ?4, the one to check.
_LIST = (
    "SELECT id, seq, created, trigger, CASE WHEN id = ?4 THEN CAST(body AS BLOB) END"
    " FROM points WHERE id >= ?2 AND id < ?3 AND session_id = ?1"
)
_MAX_WRITTEN = 10_000  # sessions whose last saved point a handle remembers
_CHUNK = "SELECT CAST(body AS BLOB) FROM file_states WHERE session_id = ? AND hash = ?"
_ANY_CHUNK = "SELECT 1 FROM file_states WHERE session_id = ? LIMIT 1"


class WrittenPoints:
    """The last point a store handle saved in each session, as its row should read.

    Pruning never deletes the newest valid point, so it checks the newest
    point, which is nearly always the one this handle has just saved. Comparing
    the row with what was written (its listing columns and the SHA-256 of its
    body) proves it unchanged without decompressing, hashing and validating it
    again; a row that differs in any byte is loaded and checked like any other.
    """

    def __init__(self) -> None:
        self._rows: dict[str, tuple[str, int, str, bytes]] = {}

    def saved(self, point: RecoveryPoint, body: bytes) -> None:
        """Remember the row just written for ``point``."""
        if len(self._rows) >= _MAX_WRITTEN:
            self._rows.pop(next(iter(self._rows)))
        self._rows.pop(point.session_id, None)  # keep the dict in the order of saving
        digest = hashlib.sha256(body).digest()
        self._rows[point.session_id] = (point.id, point.seq, point.trigger.value, digest)

    def last(self, session_id: str) -> str | None:
        """The id of the last point saved here in the session, if any."""
        remembered = self._rows.get(session_id)
        return None if remembered is None else remembered[0]

    def unchanged(self, info: RecoveryPointInfo, body: bytes | None) -> bool:
        """Whether ``info`` (its row's body ``body``) reads exactly as it was saved here."""
        remembered = self._rows.get(info.session_id)
        return (
            remembered is not None
            and isinstance(body, bytes)
            and (info.id, info.seq, info.trigger.value, hashlib.sha256(body).digest()) == remembered
        )


def save_point(store: SqlStore, point: RecoveryPoint) -> RecoveryPointInfo:
    """See :meth:`~.base.Store.save_point`."""
    ids.validate_recovery_id(point.id)
    if ids.session_of_recovery_id(point.id) != point.session_id:
        raise InvalidInput(
            f"recovery point {point.id} names another session than {point.session_id}; "
            "build its id with make_recovery_id(session_id, ...)"
        )
    doc = point.to_wire()
    chunks = file_states.split(doc)
    # Only the writer's own knowledge of rows 1..seq, never a guess.
    mark = store._marks.running(point.session_id)
    if mark is not None and mark.seq == point.seq:
        doc[JournalMark.KEY] = mark.to_doc()
    else:
        mark = None
    body = codec.dump_compressed(doc, store.sealer, "point", point.id)
    # Full precision, so the listing orders points exactly as their bodies would.
    row = (
        point.session_id,
        point.id,
        point.seq,
        point.created.isoformat(),
        point.trigger.value,
    )
    try:
        with store._unsynced(point.trigger.automatic):
            if chunks:
                with store._write() as conn:
                    _put_chunks(store, conn, point.session_id, chunks)
                    inserted = conn.execute(_SAVE, (*row, body)).rowcount
                    if inserted != 1:
                        raise SessionNotFound(
                            f"no session {point.session_id} in {shown_url(store)}; "
                            "`continuity list` shows the sessions"
                        )
            else:
                inserted = store._write_one(_SAVE, (*row, body)).rowcount
    except store.driver_errors as exc:
        if not store._is_unique_violation(exc):
            raise
        raise DuplicateRecord(
            f"recovery point {point.id} exists already in {shown_url(store)}; points are never "
            "overwritten, save under a new id"
        ) from None
    if inserted != 1:
        raise SessionNotFound(
            f"no session {point.session_id} in {shown_url(store)}; "
            "`continuity list` shows the sessions"
        )
    store._written_points.saved(point, body)
    if mark is not None:
        store._marks.remember(point.session_id, mark)
    return RecoveryPointInfo(
        id=point.id,
        session_id=point.session_id,
        seq=point.seq,
        created=point.created,
        trigger=point.trigger,
        location=store._loc("points", point.id),
    )


def load_point(store: SqlStore, point_id: str) -> RecoveryPoint:
    """See :meth:`~.base.Store.load_point`."""
    ids.validate_recovery_id(point_id)
    row = store._one(_ROW, point_id)
    if row is None:
        raise RecoveryPointNotFound(f"no recovery point {point_id} in {shown_url(store)}")
    location = store._loc("points", point_id)
    doc = codec.load_compressed(row[3], location, store.sealer, "point", point_id)
    mark = JournalMark.take_from(doc, row[1])
    session_id = row[0]

    def chunk(ref: str) -> bytes | None:
        found = store._one(_CHUNK, session_id, ref)
        if found is None:
            return None
        where = store._loc("file_states", session_id, ref)
        return codec.open_blob(bytes(found[0]), store.sealer, "chunk", f"{session_id}/{ref}", where)

    damage = file_states.join(
        doc, chunk, lambda ref: store._loc("file_states", session_id, ref), point_id
    )
    try:
        point = RecoveryPoint.model_validate(doc)
    except ValidationError as exc:
        raise CorruptRecord(f"{location}: record cannot be decoded ({exc})", location) from None
    # The listing columns sit outside the checksum; a point must agree with them.
    if (point.id, point.session_id, point.seq, point.trigger.value) != (point_id, *row[:3]):
        raise CorruptRecord(f"{location}: listing columns disagree with the point", location)
    if mark is not None:
        store._marks.remember(point.session_id, mark)
    point.damage = damage
    return point


def _put_chunks(
    store: SqlStore, conn: SqlConnection, session_id: str, chunks: dict[str, bytes]
) -> None:
    """Store the chunks a point is about to refer to, unless stored intact already."""
    marks = ", ".join("?" * len(chunks))
    stored = dict(
        conn.execute(
            f"SELECT hash, CAST(body AS BLOB) FROM file_states WHERE session_id = ?"
            f" AND hash IN ({marks})",
            (session_id, *chunks),
        ).fetchall()
    )
    for ref, data in chunks.items():
        held = stored.get(ref)
        owner = f"{session_id}/{ref}"
        if held is not None:
            held = codec.open_blob(bytes(held), store.sealer, "chunk", owner, owner)
        if held is None or not file_states.intact(ref, bytes(held)):
            # A damaged one is replaced whole.
            conn.execute(
                store.upserts["file_states"],
                (session_id, ref, codec.seal_blob(data, store.sealer, "chunk", owner)),
            )


def _collect_chunks(conn: SqlConnection, session_id: str, sealer: Sealer | None) -> None:
    """Delete the chunks no point of the session refers to any more (inside a write)."""
    rows = conn.execute("SELECT hash FROM file_states WHERE session_id = ?", (session_id,))
    stored = [row[0] for row in rows]
    if not stored:
        return
    docs = []
    low = "RECOVERY-" + session_id[len("SESSION-") :] + "-"
    for point_id, data in conn.execute(
        "SELECT id, CAST(body AS BLOB) FROM points WHERE id >= ? AND id < ? AND session_id = ?",
        (low, low[:-1] + ".", session_id),
    ):
        try:
            docs.append(codec.load_compressed(data, "", sealer, "point", point_id))
        except CorruptRecord:
            return  # a point that cannot be read may refer to any chunk: keep them all
    doomed = file_states.unreferenced(stored, docs)
    conn.executemany(
        "DELETE FROM file_states WHERE session_id = ? AND hash = ?",
        [(session_id, ref) for ref in doomed],
    )


def list_points(store: SqlStore, session_id: str) -> list[RecoveryPointInfo]:
    """See :meth:`~.base.Store.list_points`."""
    return _listing(store, session_id, None)[0]


def _listing(
    store: SqlStore, session_id: str, check: str | None
) -> tuple[list[RecoveryPointInfo], bytes | None]:
    """The session's points, oldest first, and the body of point ``check`` if listed."""
    ids.validate_session_id(session_id)
    low = "RECOVERY-" + session_id[len("SESSION-") :] + "-"
    rows = store._all(_LIST, session_id, low, low[:-1] + ".", check)
    infos = []
    body = None
    prefix = f"{store.where}:points/"
    for point_id, seq, created, trigger, data in rows:
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
        if data is not None:
            body = data
    return sorted(infos, key=lambda i: (i.seq, i.created, i.id)), body


def prune_points(store: SqlStore, session_id: str, keep_automatic: int) -> list[str]:
    """See :meth:`~.base.Store.prune_points`."""
    # Deciding outside the write lock is safe: other writers only add points,
    # which this pruning does not touch, or prune too. The newest valid point
    # listed here is kept whatever was added since.
    written = store._written_points
    infos, body = _listing(store, session_id, written.last(session_id))

    def valid(info: RecoveryPointInfo) -> bool:
        if written.unchanged(info, body):
            return True
        try:
            load_point(store, info.id)
        except (CorruptRecord, RecoveryPointNotFound):  # damaged, or pruned meanwhile
            return False
        return True

    doomed = [p.id for p in retention.prunable(infos, keep_automatic, valid)]
    if not doomed:
        return []
    # A power failure before the next synced commit only brings back old, valid
    # points, which the next pruning removes again.
    marks = ", ".join("?" * len(doomed))
    delete = f"DELETE FROM points WHERE id IN ({marks})"
    # A session without chunks (most: small code contexts stay in the points) is
    # pruned in one statement. A chunk stored after this look belongs to a point
    # saved after it, which this pruning keeps.
    with store._unsynced():
        if store._one(_ANY_CHUNK, session_id) is None:
            store._write_one(delete, doomed)
        else:
            with store._write() as conn:
                conn.execute(delete, doomed)
                _collect_chunks(conn, session_id, store.sealer)
    return doomed
