"""The shared SQL store: everything about a store on a database that no dialect changes.

:class:`SqlStore` holds the registry, the append path and the public
methods; the modules beside it hold leases (:mod:`.leases`), reading a
journal (:mod:`.journal`), recovery points (:mod:`.points`), snapshots,
emergency backups and the log (:mod:`.documents`) and ``verify`` and repair
(:mod:`.repair`), all in the SQL of :mod:`.statements`. A dialect
(:class:`~..sqlite.SqliteStore`, :class:`~..postgres.PostgresStore`)
supplies only what differs: connecting, the write transaction, the upserts,
the unsynced commit, what its errors mean, and its schema and migrations.

Every record carries its own checksum, in the byte formats of :mod:`..codec`:
``line`` is the exact journal line of the files store, ``doc`` a checksummed
JSON document, ``body`` a gzip document. A byte flipped inside a row is
therefore reported as damage, never read as valid. The columns beside them
exist only to index and fence; a journal's first event names its session, so
``verify`` checks the ``journals`` row against it.

Every write is one transaction (:meth:`SqlStore._write`, which holds the
store's write lock, or a single statement, :meth:`SqlStore._write_one`) that
is committed, durably in ``sync`` mode, before the method returns.

A damaged ``sessions`` or ``leases`` document (the index) is worked around,
never a reason to refuse: reads derive it from the journal (:mod:`..index`,
:func:`..leases.from_journal`), and a write that replaces it first copies the
damaged bytes to ``quarantine``. ``verify(repair=True)`` closes every number
a journal lost with a tombstone (:mod:`..tombstones`).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError

from agent_continuity import ids
from agent_continuity.errors import (
    ContinuityError,
    CorruptRecord,
    SessionNotFound,
)
from agent_continuity.model import (
    ContextSnapshot,
    Damage,
    EmergencyBackup,
    Event,
    EventDraft,
    EventKind,
    Lease,
    RecoveryPoint,
    RecoveryPointInfo,
    SessionRecord,
)

from .. import codec, leases, shown_url
from ..base import JournalRead, LeaseRequest, VerifyReport
from ..envelope import Sealer
from ..index import IndexDamage, derive_record, missing_journal_error
from . import documents as sql_documents
from . import journal as sql_journal
from . import leases as sql_leases
from . import points as sql_points
from .connection import SqlConnection, SqlCursor, translated
from .leases import current_lease
from .points import WrittenPoints
from .repair import keep, reason, verify_store
from .statements import APPEND_AFTER, HEAD, INSERT_EVENT, JOURNAL, POINTS_OF, point_range

_MAX_REMEMBERED = 10_000  # journals whose end a handle remembers
_APPEND_TRIES = 50  # each lost race means another writer's event went in meanwhile

_M = TypeVar("_M", bound=BaseModel)


class SqlStore:
    """The dialect-independent half of a store on a SQL database.

    A dialect subclass sets :attr:`where`, :attr:`url`, :attr:`durability`,
    :attr:`upserts` and :attr:`driver_errors`, calls :meth:`_start` in its
    constructor, and implements the hooks below the public methods' helpers.
    See :class:`~..base.Store` for the method contracts.
    """

    shared_across_processes = True
    #: The driver's error classes, turned into the package's own by :func:`translated`.
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    #: table -> its upsert statement (columns in :data:`.statements.UPSERTED` order).
    upserts: ClassVar[dict[str, str]] = {}
    url: str
    durability: str
    #: Where rows are, for the locations in damage reports (a path, or a server's address).
    where: str
    _scope: AbstractContextManager[object]

    def _start(self) -> None:
        """Set up what every dialect's store keeps between calls."""
        self._index_damage = IndexDamage()
        # The last sequence number this handle wrote or saw in each journal: the
        # guess that lets an append go in one statement (which checks it).
        self._last_seq: dict[str, int] = {}
        # The journals this handle knows intact (to mark its points), and the marks of points read.
        self._marks = sql_journal.JournalMarks()
        #: Set by :func:`..encryption.attach` when the store is encrypted.
        self.sealer: Sealer | None = None
        self._written_points = WrittenPoints()

    # -- what a dialect supplies ------------------------------------------

    def _connection(self) -> SqlConnection:
        """This thread's connection (for reads, and inside :meth:`_write`)."""
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[SqlConnection]:
        """One write transaction holding the store's write lock, committed before it exits.

        No other writer's transaction runs between its reads and its writes, so
        a read-then-write such as id allocation or the lease check can never be
        overtaken by another process.
        """
        raise NotImplementedError

    def _write_one(self, sql: str, params: Sequence[object]) -> SqlCursor:
        """One statement in a transaction of its own, committed before it returns."""
        raise NotImplementedError

    def _unsynced(self, when: bool = True) -> AbstractContextManager[None]:
        """Commits inside it need not reach the disk before they return (``sync`` mode only).

        They survive ``kill -9`` of the writer at once, and a power failure with
        the next synced commit; see :mod:`.points`.
        """
        raise NotImplementedError

    def _insert_id(self, conn: SqlConnection, sql: str, params: Sequence[object]) -> int:
        """Run an ``INSERT`` into a table keyed ``id`` and return the key it made."""
        raise NotImplementedError

    def _translate(self, exc: BaseException) -> ContinuityError:
        """The package's error for a driver error: what happened, what to do."""
        raise NotImplementedError

    def _is_unique_violation(self, exc: BaseException) -> bool:
        """Whether a driver error is a row whose key exists already."""
        raise NotImplementedError

    def _integrity_problems(self, conn: SqlConnection) -> list[str]:
        """What the database finds wrong with its own pages (none: ``[]``)."""
        raise NotImplementedError

    def _salvage_advice(self) -> str:
        """What to do when the database cannot read its own pages."""
        raise NotImplementedError

    def close(self) -> None:
        """Flush pending writes and close every connection. Safe to call twice."""
        raise NotImplementedError

    # -- row helpers ------------------------------------------------------

    def _loc(self, table: str, *key: object) -> str:
        return f"{self.where}:{table}/" + "/".join(str(k) for k in key)

    def _one(self, sql: str, *params: object) -> Any:
        return self._connection().execute(sql, params).fetchone()

    def _all(self, sql: str, *params: object) -> list[Any]:
        return self._connection().execute(sql, params).fetchall()

    def _load(self, table: str, key: str, model: type[_M]) -> _M | None:
        """The checksummed document of a session-keyed table, or None."""
        ids.validate_session_id(key)
        column = "id" if table == "sessions" else "session_id"
        row = self._one(f"SELECT CAST(doc AS BLOB) FROM {table} WHERE {column} = ?", key)
        location = self._loc(table, key)
        return None if row is None else self._document(row[0], location, model, table, key)

    def _document(
        self, data: bytes, location: str, model: type[_M], table: str = "", key: str = ""
    ) -> _M:
        """Load and verify a checksummed document (of ``table``'s row ``key``) into ``model``."""
        try:
            return model.model_validate(codec.load_row(data, location, self.sealer, table, key))
        except CorruptRecord as exc:
            raise CorruptRecord(
                f"{exc}; run `continuity verify --repair` to move it aside", location
            ) from None
        except ValidationError as exc:
            raise CorruptRecord(f"{location}: record cannot be decoded ({exc})", location) from None

    def _require(self, conn: SqlConnection, session_id: str) -> None:
        """Raise SessionNotFound unless the session has a registry entry, a journal or a point."""
        ids.validate_session_id(session_id)
        if not conn.execute(
            "SELECT EXISTS (SELECT 1 FROM sessions WHERE id = ?1)"
            f" OR EXISTS (SELECT 1 FROM events WHERE journal = {JOURNAL})"
            f" OR EXISTS ({POINTS_OF})",
            (session_id, *point_range(session_id)),
        ).fetchone()[0]:
            raise SessionNotFound(
                f"no session {session_id} in {shown_url(self)}; "
                "`continuity list` shows the sessions"
            )

    def _put_session(self, conn: SqlConnection, record: SessionRecord) -> None:
        key = ids.parse_session_id(record.id)
        doc = codec.dump_row(record.to_wire(), self.sealer, "sessions", record.id)
        conn.execute(
            self.upserts["sessions"],
            (record.id, ids.day_code(key.day), key.number, doc),
        )

    def _put_lease(self, conn: SqlConnection, lease: Lease) -> None:
        conn.execute(
            self.upserts["leases"],
            (lease.session_id, lease.token, codec.dump_document(lease.to_wire())),
        )

    def _saw_end(self, session_id: str, seq: int) -> None:
        """Remember where a journal ends, as a guess for the next append (which checks it)."""
        if len(self._last_seq) >= _MAX_REMEMBERED and session_id not in self._last_seq:
            self._last_seq.clear()  # only a guess: a server touching many sessions starts over
        self._last_seq[session_id] = seq

    def _journal(self, conn: SqlConnection, session_id: str, journal: int | None) -> int:
        """The session's journal key; a new one when it has none yet."""
        if journal is not None:
            return journal
        return self._insert_id(conn, "INSERT INTO journals (session_id) VALUES (?)", (session_id,))

    def _append_in(
        self,
        conn: SqlConnection,
        session_id: str,
        journal: int | None,
        last: int,
        drafts: Sequence[EventDraft],
    ) -> tuple[list[Event], list[bytes]]:
        """Append ``drafts`` after ``last`` in the caller's write transaction: events, lines.

        Raises:
            JournalMissing: If the session's journal is gone (no rows): it is
                never started again here, which would hide the loss.
        """
        self._marks.forget(session_id)  # a caller that committed may extend it again
        if journal is None or last == 0:
            raise missing_journal_error(session_id, self._loc("events", session_id))
        events = [
            Event(seq=last + n, kind=d.kind, at=d.at, payload=d.payload)
            for n, d in enumerate(drafts, 1)
        ]
        rows = [(journal, e.seq, codec.encode_event(e, self.sealer, session_id)) for e in events]
        if len(rows) == 1:
            conn.execute(INSERT_EVENT, rows[0])
        else:
            conn.executemany(INSERT_EVENT, rows)
        self._saw_end(session_id, events[-1].seq)
        return events, [row[2] for row in rows]

    # -- sessions ---------------------------------------------------------

    @translated
    def create_session(
        self, draft: SessionRecord, lease: LeaseRequest
    ) -> tuple[SessionRecord, Lease]:
        day = draft.created.date()
        code = ids.day_code(day)
        with self._write() as conn:
            # Inside the write lock no other process can allocate between this
            # read and the insert below, so ids never repeat.
            number = conn.execute(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM sessions WHERE day = ?", (code,)
            ).fetchone()[0]
            session_id = ids.make_session_id(day, number)
            # A registry row lost to damage must not hand its journal's id (or, the
            # journal lost too, its recovery points' id) out again.
            while conn.execute(
                f"SELECT 1 FROM journals WHERE session_id = ?1 UNION ALL {POINTS_OF}",
                (session_id, *point_range(session_id)),
            ).fetchone():
                number += 1
                session_id = ids.make_session_id(day, number)
            record = draft.model_copy(update={"id": session_id, "last_seq": 1})
            granted = leases.grant(session_id, None, lease, steal=False, expect_token=None)
            payload = leases.creation_payload(record, granted)
            first = Event(seq=1, kind=EventKind.SESSION, at=draft.created, payload=payload)
            self._put_session(conn, record)
            journal = self._journal(conn, session_id, None)
            line = codec.encode_event(first, self.sealer, session_id)
            conn.execute(INSERT_EVENT, (journal, 1, line))
            self._saw_end(session_id, 1)
            self._put_lease(conn, granted)
        self._marks.started(session_id, line)
        return record, granted

    @translated
    def get_session(self, session_id: str) -> SessionRecord:
        ids.validate_session_id(session_id)
        row = self._one("SELECT CAST(doc AS BLOB) FROM sessions WHERE id = ?", session_id)
        if row is None:
            raise SessionNotFound(
                f"no session {session_id} in {shown_url(self)}; "
                "`continuity list` shows the sessions"
            )
        return self._entry(session_id, row[0])

    @translated
    def list_sessions(self) -> list[SessionRecord]:
        records = []
        for session_id, doc in self._all("SELECT id, CAST(doc AS BLOB) FROM sessions"):
            try:
                records.append(self._entry(session_id, doc))
            except CorruptRecord as exc:
                # Neither the entry nor the journal can say what it was: verify names it.
                self._index_damage.note(exc.location or session_id, "missing", str(exc))
        return sorted(records, key=lambda r: (r.created, r.id))

    def _entry(self, session_id: str, doc: bytes) -> SessionRecord:
        """A registry row's record; a damaged one is derived from the journal instead."""
        location = self._loc("sessions", session_id)
        try:
            return self._document(doc, location, SessionRecord, "sessions", session_id)
        except CorruptRecord as exc:
            record = derive_record(self, session_id)
            self._index_damage.note(
                location,
                "checksum",
                f"{reason(exc)}; the entry was derived from the journal until a write or "
                "`continuity verify --repair` rebuilds it",
            )
            return record

    @translated
    def put_session(self, record: SessionRecord) -> None:
        with self._write() as conn:
            # A registry row quarantined by repair comes back: the journal says it exists.
            self._require(conn, record.id)
            row = conn.execute(
                "SELECT CAST(doc AS BLOB) FROM sessions WHERE id = ?", (record.id,)
            ).fetchone()
            location = self._loc("sessions", record.id)
            try:
                if row is not None:
                    codec.load_document(row[0], location)
            except CorruptRecord as exc:
                kept = keep(self, conn, "sessions", record.id, reason(exc), row[0])
                self._index_damage.note(
                    location,
                    "checksum",
                    f"{reason(exc)}; its bytes were moved to {kept} and the entry was rewritten",
                )
            self._put_session(conn, record)

    # -- leases -----------------------------------------------------------

    @translated
    def read_lease(self, session_id: str) -> Lease | None:
        return current_lease(self, session_id)[0]

    @translated
    def acquire_lease(
        self,
        session_id: str,
        request: LeaseRequest,
        *,
        steal: bool = False,
        expect_token: int | None = None,
    ) -> Lease:
        return sql_leases.acquire_lease(
            self, session_id, request, steal=steal, expect_token=expect_token
        )

    @translated
    def renew_lease(self, lease: Lease, request: LeaseRequest) -> Lease:
        return sql_leases.renew_lease(self, lease, request)

    @translated
    def release_lease(self, lease: Lease) -> None:
        self._marks.forget(lease.session_id)
        sql_leases.release_lease(self, lease)

    # -- journal ----------------------------------------------------------

    @translated
    def append(self, lease: Lease, drafts: Sequence[EventDraft]) -> list[Event]:
        last = self._last_seq.get(lease.session_id)
        known = self._marks.take(lease.session_id)  # put back extended once committed
        if last is not None and len(drafts) == 1:
            # The everyday append in one statement: the event goes in only if the
            # lease is still current and the journal still ends where this handle
            # last saw it. Otherwise nothing is written and the transaction below
            # finds out why, step by step.
            draft = drafts[0]
            event = Event(seq=last + 1, kind=draft.kind, at=draft.at, payload=draft.payload)
            line = codec.encode_event(event, self.sealer, lease.session_id)
            params = (lease.session_id, lease.token, event.seq, line)
            try:
                appended = self._write_one(APPEND_AFTER, params).rowcount == 1
            except self.driver_errors as exc:
                # Where writers do not queue for the whole statement (PostgreSQL), two
                # appends of one number meet at its key: the step by step path says why.
                if not self._is_unique_violation(exc):
                    raise
                appended = False
            if appended:
                self._saw_end(lease.session_id, event.seq)
                self._marks.appended(lease.session_id, known, last, [params[3]])
                return [event]
            known = None  # the journal moved, or the lease did
        for attempt in range(_APPEND_TRIES):
            try:
                with self._write() as conn:
                    token, journal, last = conn.execute(HEAD, (lease.session_id,)).fetchone()
                    if token != lease.token:
                        leases.check_current(current_lease(self, lease.session_id)[0], lease)
                        location = self._loc("leases", lease.session_id)
                        raise CorruptRecord(
                            f"{location}: the lease row disagrees with its document; "
                            "run `continuity verify --repair`",
                            location,
                        )
                    events, lines = self._append_in(
                        conn, lease.session_id, journal, last or 0, drafts
                    )
                break
            except self.driver_errors as exc:
                # Where the one-statement append does not wait for the write lock
                # (PostgreSQL), another process's may take the number read above
                # before this insert: nothing was written, so read the end again.
                if not self._is_unique_violation(exc) or attempt == _APPEND_TRIES - 1:
                    raise
        self._marks.appended(lease.session_id, known, last or 0, lines)
        return events

    @translated
    def read_events(self, session_id: str, after_seq: int = 0) -> JournalRead:
        return sql_journal.read_events(self, session_id, after_seq)

    # -- recovery points --------------------------------------------------

    @translated
    def save_point(self, point: RecoveryPoint) -> RecoveryPointInfo:
        return sql_points.save_point(self, point)

    @translated
    def load_point(self, point_id: str) -> RecoveryPoint:
        return sql_points.load_point(self, point_id)

    @translated
    def list_points(self, session_id: str) -> list[RecoveryPointInfo]:
        return sql_points.list_points(self, session_id)

    @translated
    def prune_points(self, session_id: str, keep_automatic: int) -> list[str]:
        return sql_points.prune_points(self, session_id, keep_automatic)

    # -- snapshots, emergency backups, log --------------------------------

    @translated
    def save_context_snapshot(self, snapshot: ContextSnapshot) -> None:
        sql_documents.save_context_snapshot(self, snapshot)

    @translated
    def load_context_snapshot(self, session_id: str) -> ContextSnapshot | None:
        return sql_documents.load_context_snapshot(self, session_id)

    @translated
    def save_emergency(self, backup: EmergencyBackup) -> None:
        sql_documents.save_emergency(self, backup)

    @translated
    def load_emergency(self, session_id: str) -> EmergencyBackup | None:
        return sql_documents.load_emergency(self, session_id)

    @translated
    def list_emergency(self) -> tuple[list[EmergencyBackup], list[Damage]]:
        return sql_documents.list_emergency(self)

    @translated
    def log_recovery(self, entry: dict[str, Any]) -> None:
        sql_documents.log_recovery(self, entry)

    @translated
    def read_recovery_log(self) -> list[dict[str, Any]]:
        return sql_documents.read_recovery_log(self)

    # -- maintenance ------------------------------------------------------

    @translated
    def verify(self, repair: bool = False) -> VerifyReport:
        try:
            return verify_store(self, repair=repair)
        finally:
            if repair:  # it may rewrite journals: vouch again after a clean read
                self._marks.forget()

    @translated
    def lost_journals(self) -> list[str]:
        return sql_journal.lost_journals(self)

    def index_damage(self) -> list[Damage]:
        return self._index_damage.found()
