"""``sqlite:///PATH``: every session of a project in one SQLite database.

This module holds the store, its transactions, the registry and the append
path. Its connections are in :mod:`.sqlite_connection`; the tables and their
migrations in :mod:`.sqlite_schema`; leases in :mod:`.sqlite_leases`; reading a journal in
:mod:`.sqlite_journal`; recovery points in :mod:`.sqlite_points`; snapshots,
emergency backups and the log in :mod:`.sqlite_documents`; ``verify`` and
repair in :mod:`.sqlite_repair`; batched mode's flusher thread in
:mod:`.sqlite_flusher`; what each SQLite failure tells the user in
:mod:`.sqlite_errors`.

Every record carries its own checksum, in the byte formats of :mod:`.codec`:
``line`` is the exact journal line of the files store, ``doc`` a checksummed
JSON document, ``body`` a gzip document. A byte flipped inside a row is
therefore reported as damage, never read as valid. The columns beside them
exist only to index and fence; a journal's first event names its session, so
``verify`` checks the ``journals`` row against it.

Durability. The database runs in WAL mode and every write is one transaction
(``BEGIN IMMEDIATE``, or a single statement, which SQLite runs as one) that is
committed before the method returns.
A committed transaction is in the WAL file, so it survives ``kill -9`` in both
modes. ``durability="sync"`` adds ``synchronous=FULL``: each commit fsyncs the
WAL, so it also survives power loss (automatic recovery points excepted: they
are durable with the next synced commit, see :mod:`.sqlite_points`).
``durability="batched"`` uses
``synchronous=NORMAL`` and a flusher thread that fsyncs the WAL at most
``batch_interval`` seconds after a commit: power loss (or a kernel crash) can
lose the writes of the last ``batch_interval`` seconds, never a process kill.

A damaged ``sessions`` or ``leases`` document (the index) is worked around,
never a reason to refuse: reads derive it from the journal (:mod:`.index`,
:func:`.leases.from_journal`), and a write that replaces it first copies the
damaged bytes to ``quarantine``. ``verify(repair=True)`` closes every number
a journal lost with a tombstone (:mod:`.tombstones`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agent_continuity import ids
from agent_continuity.errors import (
    ConfigError,
    ContinuityError,
    CorruptRecord,
    SessionNotFound,
    StoreError,
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

from . import codec, leases, sqlite_documents, sqlite_journal, sqlite_leases, sqlite_points
from .base import DURABILITY_MODES, JournalRead, LeaseRequest, VerifyReport
from .encryption import attach
from .envelope import Sealer
from .index import IndexDamage, derive_record, missing_journal_error
from .sqlite_connection import ThreadConnection, translated
from .sqlite_errors import translate
from .sqlite_flusher import WalFlusher
from .sqlite_leases import current_lease
from .sqlite_points import WrittenPoints
from .sqlite_repair import keep, reason, verify_store
from .sqlite_schema import (
    APPEND_AFTER,
    HEAD,
    INSERT_EVENT,
    JOURNAL,
    POINTS_OF,
    create_database,
    make_database_private,
    migrate,
    point_range,
)

BUSY_TIMEOUT = 30.0
BATCH_INTERVAL = 1.0
_MAX_REMEMBERED = 10_000  # journals whose end a handle remembers

_M = TypeVar("_M", bound=BaseModel)


class SqliteStore:
    """A store in one SQLite database file, shared safely by many processes.

    One connection per thread (and per process: a store used after ``fork``
    opens fresh ones). See :class:`~.base.Store` for the method contracts.

    Args:
        path: The database file; created, with its folder, when missing.
        durability: ``"sync"`` or ``"batched"`` (see the module docstring).
        url: The URL the store was opened from (default ``sqlite:///PATH``).
        busy_timeout: Seconds to wait for another process's write lock.
        batch_interval: Seconds of acknowledged writes that ``batched`` mode
            may lose to power failure.

    Raises:
        ConfigError: If ``durability`` is not a known mode.
        CorruptRecord: If the file is not an intact SQLite database.
        StoreError: If the file cannot be created, opened or upgraded.
    """

    shared_across_processes = True

    def __init__(
        self,
        path: Path,
        *,
        durability: str = "sync",
        url: str | None = None,
        busy_timeout: float = BUSY_TIMEOUT,
        batch_interval: float = BATCH_INTERVAL,
    ) -> None:
        if durability not in DURABILITY_MODES:
            raise ConfigError(
                f"durability must be one of {', '.join(DURABILITY_MODES)}, not {durability!r}"
            )
        self.path = Path(path)
        self.url = url if url is not None else f"sqlite:///{self.path}"
        self.durability = durability
        self.busy_timeout = busy_timeout
        self.batch_interval = batch_interval
        self._lock = threading.Lock()
        self._closed = False
        self._pid = os.getpid()
        self._local = threading.local()
        self._connections: weakref.WeakSet[ThreadConnection] = weakref.WeakSet()
        self._inherited: list[ThreadConnection] = []
        self._flusher = self._new_flusher()
        self._index_damage = IndexDamage()
        # The last sequence number this handle wrote or saw in each journal: the
        # guess that lets an append go in one statement (which checks it).
        self._last_seq: dict[str, int] = {}
        # The journals this handle knows intact (to mark its points), and the marks of points read.
        self._marks = sqlite_journal.JournalMarks()
        #: Set by :func:`.encryption.attach` when the store is encrypted.
        self.sealer: Sealer | None = None
        self._written_points = WrittenPoints()
        try:
            self._open()
            attach(self)
        except BaseException:
            self.close()
            raise

    # -- connections and transactions ------------------------------------

    def _new_flusher(self) -> WalFlusher | None:
        if self.durability != "batched":
            return None
        return WalFlusher(self.path.with_name(self.path.name + "-wal"), self.batch_interval)

    @translated
    def _open(self) -> None:
        try:
            if not self.path.exists():
                create_database(self.path)
            elif self.path.stat().st_size == 0:
                # Only truncation empties a file that _create_file made whole.
                raise CorruptRecord(
                    f"{self.path} is empty (0 bytes): the store was truncated. Restore it from a "
                    "backup; if it never held sessions, delete it and run the command again",
                    str(self.path),
                )
            else:
                make_database_private(self.path)
        except OSError as exc:
            raise StoreError(
                f"cannot create the store {self.path}: {exc.strerror}; "
                "check that its folder is writable, or choose another --store"
            ) from exc
        conn = self._connection()
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(
                f"{self.path} cannot use write-ahead logging (journal mode {mode!r}); "
                "put the store on a local file system"
            )
        migrate(conn, self.path)

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"the store {self.url} is closed; open it again")
        if os.getpid() != self._pid:
            # SQLite connections must not cross fork(). The parent's are kept
            # referenced but unused: closing them here could disturb its locks.
            self._pid = os.getpid()
            self._local = threading.local()
            self._inherited = list(self._connections)
            self._connections = weakref.WeakSet()
            self._flusher = self._new_flusher()
        held: ThreadConnection | None = getattr(self._local, "held", None)
        if held is None:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,  # explicit transactions only
                check_same_thread=False,  # so close() may close every thread's connection
            )
            sync = "FULL" if self.durability == "sync" else "NORMAL"
            conn.execute(f"PRAGMA synchronous = {sync}")
            held = self._local.held = ThreadConnection(conn)
            with self._lock:
                self._connections.add(held)
        return held.conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed before the caller's method returns.

        ``BEGIN IMMEDIATE`` takes the write lock up front (waiting up to the
        busy timeout), so a read-then-write such as id allocation or the lease
        check can never be overtaken by another process between its read and
        its write.
        """
        self._check_flushed()
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            self._roll_back(conn)
            raise
        if self._flusher is not None:
            self._flusher.committed()

    def _write_one(self, sql: str, params: Sequence[object]) -> sqlite3.Cursor:
        """One statement in a transaction of its own, committed before it returns.

        SQLite takes the write lock as the statement starts (waiting up to the
        busy timeout), so a statement that reads and writes (``INSERT ...
        SELECT ... WHERE``) is as safe from other processes as a ``BEGIN
        IMMEDIATE`` transaction, at a third of the round trips.
        """
        self._check_flushed()
        conn = self._connection()
        try:
            cursor = conn.execute(sql, params)
        except BaseException:
            self._roll_back(conn)
            raise
        if self._flusher is not None:
            self._flusher.committed()
        return cursor

    def _check_flushed(self) -> None:
        """Report a failed flush of batched mode to the next writer: nobody waits for it."""
        if self._flusher is not None and self._flusher.error is not None:
            exc, self._flusher.error = self._flusher.error, None
            raise StoreError(
                f"flushing {self.path} to disk failed ({exc.strerror}); writes made in the last "
                f"{self.batch_interval:g} s may not survive a power failure. Check the disk"
            ) from exc

    def _roll_back(self, conn: sqlite3.Connection) -> None:
        # SQLite already rolled back after some errors (disk full, I/O).
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                # Unusable now; the next call in this thread opens a fresh one.
                self._local.held = None

    def _translate(self, exc: sqlite3.Error) -> ContinuityError:
        return translate(exc, self.path, self.busy_timeout)

    def close(self) -> None:
        """Flush pending writes and close every connection. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            connections, self._connections = list(self._connections), weakref.WeakSet()
        if self._flusher is not None:
            self._flusher.close()
        for held in connections:
            with suppress(sqlite3.Error):
                held.conn.close()

    # -- row helpers ------------------------------------------------------

    def _loc(self, table: str, *key: object) -> str:
        return f"{self.path}:{table}/" + "/".join(str(k) for k in key)

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

    def _require(self, conn: sqlite3.Connection, session_id: str) -> None:
        """Raise SessionNotFound unless the session has a registry entry, a journal or a point."""
        ids.validate_session_id(session_id)
        if not conn.execute(
            "SELECT EXISTS (SELECT 1 FROM sessions WHERE id = ?1)"
            f" OR EXISTS (SELECT 1 FROM events WHERE journal = {JOURNAL})"
            f" OR EXISTS ({POINTS_OF})",
            (session_id, *point_range(session_id)),
        ).fetchone()[0]:
            raise SessionNotFound(
                f"no session {session_id} in {self.url}; `continuity list` shows the sessions"
            )

    def _put_session(self, conn: sqlite3.Connection, record: SessionRecord) -> None:
        key = ids.parse_session_id(record.id)
        doc = codec.dump_row(record.to_wire(), self.sealer, "sessions", record.id)
        conn.execute(
            "INSERT OR REPLACE INTO sessions (id, day, number, doc) VALUES (?, ?, ?, ?)",
            (record.id, ids.day_code(key.day), key.number, doc),
        )

    def _put_lease(self, conn: sqlite3.Connection, lease: Lease) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO leases (session_id, token, doc) VALUES (?, ?, ?)",
            (lease.session_id, lease.token, codec.dump_document(lease.to_wire())),
        )

    def _saw_end(self, session_id: str, seq: int) -> None:
        """Remember where a journal ends, as a guess for the next append (which checks it)."""
        if len(self._last_seq) >= _MAX_REMEMBERED and session_id not in self._last_seq:
            self._last_seq.clear()  # only a guess: a server touching many sessions starts over
        self._last_seq[session_id] = seq

    def _journal(self, conn: sqlite3.Connection, session_id: str, journal: int | None) -> int:
        """The session's journal key; a new one when it has none yet."""
        if journal is not None:
            return journal
        cursor = conn.execute("INSERT INTO journals (session_id) VALUES (?)", (session_id,))
        return int(cursor.lastrowid or 0)

    def _append_in(
        self,
        conn: sqlite3.Connection,
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
            # Inside BEGIN IMMEDIATE no other process can allocate between this
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
                f"no session {session_id} in {self.url}; `continuity list` shows the sessions"
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
        return sqlite_leases.acquire_lease(
            self, session_id, request, steal=steal, expect_token=expect_token
        )

    @translated
    def renew_lease(self, lease: Lease, request: LeaseRequest) -> Lease:
        return sqlite_leases.renew_lease(self, lease, request)

    @translated
    def release_lease(self, lease: Lease) -> None:
        self._marks.forget(lease.session_id)
        sqlite_leases.release_lease(self, lease)

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
            if self._write_one(APPEND_AFTER, params).rowcount == 1:
                self._saw_end(lease.session_id, event.seq)
                self._marks.appended(lease.session_id, known, last, [params[3]])
                return [event]
            known = None  # the journal moved, or the lease did
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
            events, lines = self._append_in(conn, lease.session_id, journal, last or 0, drafts)
        self._marks.appended(lease.session_id, known, last or 0, lines)
        return events

    @translated
    def read_events(self, session_id: str, after_seq: int = 0) -> JournalRead:
        return sqlite_journal.read_events(self, session_id, after_seq)

    # -- recovery points --------------------------------------------------

    @translated
    def save_point(self, point: RecoveryPoint) -> RecoveryPointInfo:
        return sqlite_points.save_point(self, point)

    @translated
    def load_point(self, point_id: str) -> RecoveryPoint:
        return sqlite_points.load_point(self, point_id)

    @translated
    def list_points(self, session_id: str) -> list[RecoveryPointInfo]:
        return sqlite_points.list_points(self, session_id)

    @translated
    def prune_points(self, session_id: str, keep_automatic: int) -> list[str]:
        return sqlite_points.prune_points(self, session_id, keep_automatic)

    # -- snapshots, emergency backups, log --------------------------------

    @translated
    def save_context_snapshot(self, snapshot: ContextSnapshot) -> None:
        sqlite_documents.save_context_snapshot(self, snapshot)

    @translated
    def load_context_snapshot(self, session_id: str) -> ContextSnapshot | None:
        return sqlite_documents.load_context_snapshot(self, session_id)

    @translated
    def save_emergency(self, backup: EmergencyBackup) -> None:
        sqlite_documents.save_emergency(self, backup)

    @translated
    def load_emergency(self, session_id: str) -> EmergencyBackup | None:
        return sqlite_documents.load_emergency(self, session_id)

    @translated
    def list_emergency(self) -> tuple[list[EmergencyBackup], list[Damage]]:
        return sqlite_documents.list_emergency(self)

    @translated
    def log_recovery(self, entry: dict[str, Any]) -> None:
        sqlite_documents.log_recovery(self, entry)

    @translated
    def read_recovery_log(self) -> list[dict[str, Any]]:
        return sqlite_documents.read_recovery_log(self)

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
        return sqlite_journal.lost_journals(self)

    def index_damage(self) -> list[Damage]:
        return self._index_damage.found()
