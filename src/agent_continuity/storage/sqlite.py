"""``sqlite:///PATH``: every session of a project in one SQLite database.

Schema (version 2; ``PRAGMA user_version`` holds the version, ``MIGRATIONS[v]``
upgrades a database from version ``v`` to ``v + 1``)::

    sessions(id PK, day, number, doc)          registry entries; UNIQUE(day, number)
    journals(id PK, session_id UNIQUE)         each journal's small key, so events need no text
    events(journal, seq, line)                 journals; PK(journal, seq), WITHOUT ROWID
    leases(session_id PK, token, doc)          fencing token, and the lease as a document
    points(id PK, session_id, seq, created, trigger, body)
    snapshots(session_id PK, doc)              latest context snapshot
    emergency(session_id PK, doc)              emergency backups
    recovery_log(id PK, doc)
    quarantine(id PK, source, key, found, reason, data)   damaged rows moved by repair

Every record carries its own checksum, in the byte formats of :mod:`.codec`:
``line`` is the exact journal line of the files store, ``doc`` a checksummed
JSON document, ``body`` a gzip document. A byte flipped inside a row is
therefore reported as damage, never read as valid. The columns beside them
exist only to index and fence; a journal's first event names its session, so
``verify`` checks the ``journals`` row against it.

Durability. The database runs in WAL mode and every write is one
``BEGIN IMMEDIATE`` transaction that is committed before the method returns.
A committed transaction is in the WAL file, so it survives ``kill -9`` in both
modes. ``durability="sync"`` adds ``synchronous=FULL``: each commit fsyncs the
WAL, so it also survives power loss. ``durability="batched"`` uses
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
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from pydantic import BaseModel, ValidationError

from agent_continuity import ids
from agent_continuity.errors import (
    ConfigError,
    ContinuityError,
    CorruptRecord,
    DuplicateRecord,
    InvalidIdentifier,
    RecoveryPointNotFound,
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
    Trigger,
    utc_now,
)

from . import codec, leases, retention
from .base import DURABILITY_MODES, JournalRead, LeaseRequest, VerifyReport
from .index import IndexDamage, derive_record
from .tombstones import Lost, lost_numbers, tombstones

BUSY_TIMEOUT = 30.0
BATCH_INTERVAL = 1.0

MIGRATIONS: list[tuple[str, ...]] = [
    (
        "CREATE TABLE sessions (id TEXT PRIMARY KEY, day TEXT NOT NULL, number INTEGER NOT NULL,"
        " doc BLOB NOT NULL, UNIQUE (day, number))",
        # Most events are a few hundred bytes, where a clustered key is the
        # cheapest layout for both the append and the in-order read.
        "CREATE TABLE events (session_id TEXT NOT NULL, seq INTEGER NOT NULL, line BLOB NOT NULL,"
        " PRIMARY KEY (session_id, seq)) WITHOUT ROWID",
        "CREATE TABLE leases (session_id TEXT PRIMARY KEY, token INTEGER NOT NULL,"
        " doc BLOB NOT NULL)",
        "CREATE TABLE points (id TEXT PRIMARY KEY, session_id TEXT NOT NULL, seq INTEGER NOT NULL,"
        " created TEXT NOT NULL, trigger TEXT NOT NULL, body BLOB NOT NULL)",
        "CREATE INDEX points_by_session ON points (session_id)",
        "CREATE TABLE snapshots (session_id TEXT PRIMARY KEY, doc BLOB NOT NULL)",
        "CREATE TABLE emergency (session_id TEXT PRIMARY KEY, doc BLOB NOT NULL)",
        "CREATE TABLE recovery_log (id INTEGER PRIMARY KEY, doc BLOB NOT NULL)",
        "CREATE TABLE quarantine (id INTEGER PRIMARY KEY, source TEXT NOT NULL, key TEXT NOT NULL,"
        " found TEXT NOT NULL, reason TEXT NOT NULL, data BLOB)",
    ),
    (
        # Version 2: every event row repeated its session's 22-byte text id in its
        # key; a small integer instead takes the file from x1.53 to under x1.5 of
        # the transcript. The keys are handed out in id order, oldest first.
        "CREATE TABLE journals (id INTEGER PRIMARY KEY, session_id TEXT NOT NULL UNIQUE)",
        "INSERT INTO journals (session_id) SELECT DISTINCT session_id FROM events ORDER BY 1",
        "CREATE TABLE events_v2 (journal INTEGER NOT NULL REFERENCES journals (id),"
        " seq INTEGER NOT NULL, line BLOB NOT NULL, PRIMARY KEY (journal, seq)) WITHOUT ROWID",
        "INSERT INTO events_v2 (journal, seq, line) SELECT journals.id, events.seq, events.line"
        " FROM events JOIN journals USING (session_id) ORDER BY 1, 2",
        "DROP TABLE events",
        "ALTER TABLE events_v2 RENAME TO events",
    ),
]

# Checksummed document columns that verify() reads: table -> (key column, value column).
_DOCUMENTS = {
    "sessions": ("id", "doc"),
    "leases": ("session_id", "doc"),
    "points": ("id", "body"),
    "snapshots": ("session_id", "doc"),
    "emergency": ("session_id", "doc"),
    "recovery_log": ("id", "doc"),
}
# A session's journal key, for a statement whose first parameter is the session id.
_JOURNAL = "(SELECT id FROM journals WHERE session_id = ?1)"
# Fencing, the journal key and the last sequence number, in one statement on the append path.
_HEAD = (
    f"SELECT (SELECT token FROM leases WHERE session_id = ?1), {_JOURNAL},"
    f" (SELECT MAX(seq) FROM events WHERE journal = {_JOURNAL})"
)
_INSERT_EVENT = "INSERT INTO events (journal, seq, line) VALUES (?, ?, ?)"
# What to do about each SQLite result code that is not damage.
_ADVICE = (
    (
        {sqlite3.SQLITE_FULL},
        "no space left for {where} ({exc}); nothing was written. "
        "Free disk space and run the command again",
    ),
    (
        {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED},
        "{where} stayed locked by another process for {timeout:g} s ({exc}); "
        "run the command again, or stop the process holding it",
    ),
    (
        {sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_CANTOPEN},
        "cannot write {where} ({exc}); check that the file and its folder exist and are "
        "writable by this user, or choose another --store",
    ),
    ({sqlite3.SQLITE_IOERR}, "I/O error on {where} ({exc}); check the disk, then run again"),
)

_P = ParamSpec("_P")
_R = TypeVar("_R")
_M = TypeVar("_M", bound=BaseModel)


def _translated(
    method: Callable[Concatenate[SqliteStore, _P], _R],
) -> Callable[Concatenate[SqliteStore, _P], _R]:
    """Turn driver errors escaping a public method into the package's own errors."""

    @wraps(method)
    def wrapper(self: SqliteStore, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    return wrapper


def _damage(location: str, kind: str, detail: str) -> Damage:
    return Damage(location=location, kind=kind, detail=detail)


def _reason(problem: CorruptRecord | None) -> str:
    """What is wrong with a record, without the advice its message ends with."""
    if problem is None:
        return "it is missing"
    return str(problem).split("; run `continuity verify", 1)[0]


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
    except (CorruptRecord, KeyError, TypeError):
        return None
    return named if _is_session_id(named) else None


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _ThreadConnection:
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


class _WalFlusher:
    """Bounds what ``batched`` mode can lose to power failure.

    With ``synchronous=NORMAL`` SQLite writes each commit to the WAL but
    fsyncs it only at checkpoints, which may be minutes apart for a quiet
    session. This thread fsyncs the WAL at most ``interval`` seconds after a
    commit. Any file descriptor works: fsync flushes the file, not the handle.
    """

    def __init__(self, wal: Path, interval: float) -> None:
        self.wal = wal
        self.interval = interval
        self.error: OSError | None = None
        self._dirty = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def committed(self) -> None:
        """Note a commit; the WAL is fsynced within ``interval``."""
        if self._dirty.is_set():
            return  # a flush is already due; setting the event again costs a lock
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name=f"continuity-wal-flush:{self.wal.name}", daemon=True
                    )
                    self._thread.start()
        self._dirty.set()

    def close(self) -> None:
        """Flush what is pending and stop the thread."""
        self._closing.set()
        self._dirty.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while True:
            self._dirty.wait()
            closing = self._closing.wait(self.interval)
            self._dirty.clear()
            self._flush()
            if closing:
                return

    def _flush(self) -> None:
        try:
            _fsync_path(self.wal)
            # The WAL may be new since the last flush; its name must survive too.
            _fsync_path(self.wal.parent, directory=True)
        except FileNotFoundError:
            pass  # the last connection checkpointed (and synced) it into the database
        except OSError as exc:
            # Nobody waits for this thread; the next write reports it instead.
            self.error = exc


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
        self._connections: weakref.WeakSet[_ThreadConnection] = weakref.WeakSet()
        self._inherited: list[_ThreadConnection] = []
        self._flusher = self._new_flusher()
        self._index_damage = IndexDamage()
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    # -- connections and transactions ------------------------------------

    def _new_flusher(self) -> _WalFlusher | None:
        if self.durability != "batched":
            return None
        return _WalFlusher(self.path.with_name(self.path.name + "-wal"), self.batch_interval)

    @_translated
    def _open(self) -> None:
        try:
            if not self.path.exists():
                self._create_file()
            elif self.path.stat().st_size == 0:
                # Only truncation empties a file that _create_file made whole.
                raise CorruptRecord(
                    f"{self.path} is empty (0 bytes): the store was truncated. Restore it from a "
                    "backup; if it never held sessions, delete it and run the command again",
                    str(self.path),
                )
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
        self._migrate(conn)

    def _create_file(self) -> None:
        """Create the database whole under a temporary name, then link it in place.

        A store file therefore never exists half-made, so an empty one can
        only be a damaged one, and two processes creating it at once both end
        up with the same complete file.
        """
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{self.path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.new"
        try:
            conn = sqlite3.connect(tmp, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = FULL")
                self._migrate(conn)
            finally:
                conn.close()  # checkpoints the WAL into the file
            _fsync_path(tmp)
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                pass  # another process created it first; its file is as good as ours
            except OSError:
                # No hard links here (some network or FAT file systems).
                if not self.path.exists():
                    os.replace(tmp, self.path)
            _fsync_path(folder, directory=True)
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{tmp}{suffix}").unlink(missing_ok=True)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        target = len(MIGRATIONS)
        if conn.execute("PRAGMA user_version").fetchone()[0] == target:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > target:
                raise StoreError(
                    f"{self.path} has schema version {version}, newer than this agent-continuity "
                    f"understands ({target}); upgrade agent-continuity"
                )
            for step in MIGRATIONS[version:]:
                for statement in step:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

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
        held: _ThreadConnection | None = getattr(self._local, "held", None)
        if held is None:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,  # explicit transactions only
                check_same_thread=False,  # so close() may close every thread's connection
            )
            sync = "FULL" if self.durability == "sync" else "NORMAL"
            conn.execute(f"PRAGMA synchronous = {sync}")
            held = self._local.held = _ThreadConnection(conn)
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
        if self._flusher is not None and self._flusher.error is not None:
            exc, self._flusher.error = self._flusher.error, None
            raise StoreError(
                f"flushing {self.path} to disk failed ({exc.strerror}); writes made in the last "
                f"{self.batch_interval:g} s may not survive a power failure. Check the disk"
            ) from exc
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            # SQLite already rolled back after some errors (disk full, I/O).
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    # Unusable now; the next call in this thread opens a fresh one.
                    self._local.held = None
            raise
        if self._flusher is not None:
            self._flusher.committed()

    def _translate(self, exc: sqlite3.Error) -> ContinuityError:
        where = str(self.path)
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary result code
        if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            return CorruptRecord(
                f"{where} is damaged ({exc}); restore the file from a backup, or salvage what "
                f"is readable with `sqlite3 {where} .recover`",
                where,
            )
        advice = next(
            (a for codes, a in _ADVICE if code in codes), "SQLite failed on {where} ({exc})"
        )
        return StoreError(advice.format(where=where, exc=exc, timeout=self.busy_timeout))

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
        return None if row is None else self._document(row[0], self._loc(table, key), model)

    def _document(self, data: bytes, location: str, model: type[_M]) -> _M:
        """Load and verify a checksummed document into ``model``."""
        try:
            return model.model_validate(codec.load_document(data, location))
        except CorruptRecord as exc:
            raise CorruptRecord(
                f"{exc}; run `continuity verify --repair` to move it aside", location
            ) from None
        except ValidationError as exc:
            raise CorruptRecord(f"{location}: record cannot be decoded ({exc})", location) from None

    def _require(self, conn: sqlite3.Connection, session_id: str) -> None:
        """Raise SessionNotFound unless the session has a registry entry or a journal."""
        ids.validate_session_id(session_id)
        if not conn.execute(
            "SELECT EXISTS (SELECT 1 FROM sessions WHERE id = ?1)"
            f" OR EXISTS (SELECT 1 FROM events WHERE journal = {_JOURNAL})",
            (session_id,),
        ).fetchone()[0]:
            raise SessionNotFound(
                f"no session {session_id} in {self.url}; `continuity list` shows the sessions"
            )

    def _put_session(self, conn: sqlite3.Connection, record: SessionRecord) -> None:
        key = ids.parse_session_id(record.id)
        conn.execute(
            "INSERT OR REPLACE INTO sessions (id, day, number, doc) VALUES (?, ?, ?, ?)",
            (record.id, ids.day_code(key.day), key.number, codec.dump_document(record.to_wire())),
        )

    def _put_lease(self, conn: sqlite3.Connection, lease: Lease) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO leases (session_id, token, doc) VALUES (?, ?, ?)",
            (lease.session_id, lease.token, codec.dump_document(lease.to_wire())),
        )

    def _journal(self, conn: sqlite3.Connection, session_id: str, journal: int | None) -> int:
        """The session's journal key; a new one when it has none yet."""
        if journal is not None:
            return journal
        cursor = conn.execute("INSERT INTO journals (session_id) VALUES (?)", (session_id,))
        return int(cursor.lastrowid or 0)

    def _append_in(
        self, conn: sqlite3.Connection, journal: int, last: int, drafts: Sequence[EventDraft]
    ) -> list[Event]:
        events = [
            Event(seq=last + n, kind=d.kind, at=d.at, payload=d.payload)
            for n, d in enumerate(drafts, 1)
        ]
        rows = [(journal, e.seq, codec.encode_event(e)) for e in events]
        if len(rows) == 1:
            conn.execute(_INSERT_EVENT, rows[0])
        else:
            conn.executemany(_INSERT_EVENT, rows)
        return events

    # -- sessions ---------------------------------------------------------

    @_translated
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
            # A registry row lost to damage must not hand its journal's id out again.
            while conn.execute(
                "SELECT 1 FROM journals WHERE session_id = ?", (session_id,)
            ).fetchone():
                number += 1
                session_id = ids.make_session_id(day, number)
            record = draft.model_copy(update={"id": session_id, "last_seq": 1})
            granted = leases.grant(session_id, None, lease, steal=False, expect_token=None)
            payload = leases.creation_payload(record, granted)
            first = Event(seq=1, kind=EventKind.SESSION, at=draft.created, payload=payload)
            self._put_session(conn, record)
            journal = self._journal(conn, session_id, None)
            conn.execute(_INSERT_EVENT, (journal, 1, codec.encode_event(first)))
            self._put_lease(conn, granted)
        return record, granted

    @_translated
    def get_session(self, session_id: str) -> SessionRecord:
        ids.validate_session_id(session_id)
        row = self._one("SELECT CAST(doc AS BLOB) FROM sessions WHERE id = ?", session_id)
        if row is None:
            raise SessionNotFound(
                f"no session {session_id} in {self.url}; `continuity list` shows the sessions"
            )
        return self._entry(session_id, row[0])

    @_translated
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
            return self._document(doc, location, SessionRecord)
        except CorruptRecord as exc:
            record = derive_record(self, session_id)
            self._index_damage.note(
                location,
                "checksum",
                f"{_reason(exc)}; the entry was derived from the journal until a write or "
                "`continuity verify --repair` rebuilds it",
            )
            return record

    @_translated
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
                kept = self._keep(conn, "sessions", record.id, _reason(exc), row[0])
                self._index_damage.note(
                    location,
                    "checksum",
                    f"{_reason(exc)}; its bytes were moved to {kept} and the entry was rewritten",
                )
            self._put_session(conn, record)

    # -- leases -----------------------------------------------------------

    @_translated
    def read_lease(self, session_id: str) -> Lease | None:
        return self._lease(session_id)[0]

    def _lease(self, session_id: str) -> tuple[Lease | None, bytes | None]:
        """The session's lease, and the bytes of its document if they were damaged.

        A damaged or missing lease document of a session with a journal does
        not stop it: the lease is derived from the journal
        (:func:`.leases.from_journal`), never below the token column, which is
        what appends are fenced by.
        """
        ids.validate_session_id(session_id)
        row = self._one(
            "SELECT token, CAST(doc AS BLOB) FROM leases WHERE session_id = ?", session_id
        )
        location = self._loc("leases", session_id)
        problem: CorruptRecord | None = None
        if row is not None:
            try:
                return self._document(row[1], location, Lease), None
            except CorruptRecord as exc:
                problem = exc
        first = self._one(f"SELECT 1 FROM events WHERE journal = {_JOURNAL} LIMIT 1", session_id)
        if first is None:
            return None, None
        floor = row[0] if row is not None and isinstance(row[0], int) else 1
        lease = leases.from_journal(
            session_id, self.read_events(session_id).events, floor_token=floor
        )
        self._index_damage.note(
            location,
            "checksum" if problem is not None else "missing",
            f"{_reason(problem)}; the lease was derived from the journal (token {lease.token}, "
            f"holder {lease.holder}, held until {lease.to_wire()['expires']} unless renewed)",
        )
        return lease, (row[1] if row is not None else b"")

    def _replace_lease(self, conn: sqlite3.Connection, lease: Lease, damaged: bytes | None) -> None:
        """Write ``lease``; damaged bytes it replaces are kept in the quarantine first."""
        if damaged is not None:
            moved = "it was missing"
            if damaged:
                kept = self._keep(conn, "leases", lease.session_id, "damaged lease", damaged)
                moved = f"its bytes were moved to {kept}"
            self._index_damage.note(
                self._loc("leases", lease.session_id),
                "checksum" if damaged else "missing",
                f"{moved}; a new lease was written (token {lease.token}, holder {lease.holder})",
            )
        self._put_lease(conn, lease)

    @_translated
    def acquire_lease(
        self,
        session_id: str,
        request: LeaseRequest,
        *,
        steal: bool = False,
        expect_token: int | None = None,
    ) -> Lease:
        with self._write() as conn:
            self._require(conn, session_id)
            current, damaged = self._lease(session_id)
            _, journal, last = self._one(_HEAD, session_id)
            granted = leases.grant(
                session_id,
                current,
                request,
                steal=steal,
                expect_token=expect_token,
                fence_above=(last or 0) if damaged is not None else 0,
            )
            self._replace_lease(conn, granted, damaged)
            payload = {"token": granted.token, "holder": granted.holder}
            draft = EventDraft(kind=EventKind.LEASE, at=request.now, payload=payload)
            self._append_in(conn, self._journal(conn, session_id, journal), last or 0, [draft])
        return granted

    @_translated
    def renew_lease(self, lease: Lease, request: LeaseRequest) -> Lease:
        with self._write() as conn:
            current, damaged = self._lease(lease.session_id)
            renewed = leases.renewed(current, lease, request)
            self._replace_lease(conn, renewed, damaged)  # a live holder's heartbeat mends it
        return renewed

    @_translated
    def release_lease(self, lease: Lease) -> None:
        with self._write() as conn:
            current, damaged = self._lease(lease.session_id)
            if current is not None and current.token == lease.token:
                # Keep the token so the next holder still gets a higher one.
                kept = lease if damaged is not None else current
                self._replace_lease(
                    conn, kept.model_copy(update={"expires": kept.heartbeat}), damaged
                )

    # -- journal ----------------------------------------------------------

    @_translated
    def append(self, lease: Lease, drafts: Sequence[EventDraft]) -> list[Event]:
        with self._write() as conn:
            token, journal, last = conn.execute(_HEAD, (lease.session_id,)).fetchone()
            if token != lease.token:
                leases.check_current(self._lease(lease.session_id)[0], lease)
                location = self._loc("leases", lease.session_id)
                raise CorruptRecord(
                    f"{location}: the lease row disagrees with its document; "
                    "run `continuity verify --repair`",
                    location,
                )
            journal = self._journal(conn, lease.session_id, journal)
            return self._append_in(conn, journal, last or 0, drafts)

    @_translated
    def read_events(self, session_id: str, after_seq: int = 0) -> JournalRead:
        ids.validate_session_id(session_id)
        conn = self._connection()
        # Every row, as the files store reads every line: damage before a recovery
        # point is still damage, and a point made over it must not hide it.
        rows = conn.execute(
            f"SELECT seq, CAST(line AS BLOB) FROM events WHERE journal = {_JOURNAL} ORDER BY seq",
            (session_id,),
        ).fetchall()
        if not rows:
            self._require(conn, session_id)
        clean = self._read_clean(session_id, rows, after_seq)
        if clean is not None:
            return clean
        result = JournalRead(events=[])
        expected = 1
        for seq, line in rows:
            location = self._loc("events", session_id, seq)
            if seq > expected:
                missing = str(expected) if seq == expected + 1 else f"{expected}-{seq - 1}"
                detail = f"events {missing} of {session_id} are missing from the journal"
                result.damage.append(
                    _damage(self._loc("events", session_id, missing), "gap", detail)
                )
            expected = seq + 1
            try:
                if seq <= after_seq:
                    # Checked (checksum, number) but not decoded, as in the files store.
                    if codec.event_seq(line, location) != seq:
                        detail = f"{location}: row {seq} holds another event"
                        result.damage.append(_damage(location, "decode", detail))
                    else:
                        result.end_seq = seq
                    continue
                event = codec.decode_event(line, location)
            except CorruptRecord as exc:
                result.damage.append(_damage(location, "checksum", str(exc)))
                continue
            if event.seq != seq:
                detail = f"{location}: row {seq} holds event {event.seq}"
                result.damage.append(_damage(location, "decode", detail))
                continue
            result.events.append(event)
            result.end_seq = seq
        return result

    def _read_clean(
        self, session_id: str, rows: list[tuple[int, bytes]], after_seq: int
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
                codec.decode_event(line, self._loc("events", session_id, seq))
                for seq, line in rows[start:]
            ]
        except CorruptRecord:
            return None
        return JournalRead(events=events, end_seq=len(rows))

    # -- recovery points --------------------------------------------------

    @_translated
    def save_point(self, point: RecoveryPoint) -> RecoveryPointInfo:
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
        with self._write() as conn:
            self._require(conn, point.session_id)
            try:
                conn.execute("INSERT INTO points VALUES (?, ?, ?, ?, ?, ?)", (*row, body))
            except sqlite3.IntegrityError:
                raise DuplicateRecord(
                    f"recovery point {point.id} exists already in {self.url}; points are never "
                    "overwritten, save under a new id"
                ) from None
        return RecoveryPointInfo(
            id=point.id,
            session_id=point.session_id,
            seq=point.seq,
            created=point.created,
            trigger=point.trigger,
            location=self._loc("points", point.id),
        )

    @_translated
    def load_point(self, point_id: str) -> RecoveryPoint:
        ids.validate_recovery_id(point_id)
        row = self._one(
            "SELECT session_id, seq, trigger, CAST(body AS BLOB) FROM points WHERE id = ?", point_id
        )
        if row is None:
            raise RecoveryPointNotFound(f"no recovery point {point_id} in {self.url}")
        location = self._loc("points", point_id)
        try:
            point = RecoveryPoint.model_validate(codec.load_compressed(row[3], location))
        except ValidationError as exc:
            raise CorruptRecord(f"{location}: record cannot be decoded ({exc})", location) from None
        # The listing columns sit outside the checksum; a point must agree with them.
        if (point.id, point.session_id, point.seq, point.trigger.value) != (point_id, *row[:3]):
            raise CorruptRecord(f"{location}: listing columns disagree with the point", location)
        return point

    @_translated
    def list_points(self, session_id: str) -> list[RecoveryPointInfo]:
        ids.validate_session_id(session_id)
        rows = self._all(
            "SELECT id, seq, created, trigger FROM points WHERE session_id = ?", session_id
        )
        infos = []
        prefix = f"{self.path}:points/"
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

    @_translated
    def prune_points(self, session_id: str, keep_automatic: int) -> list[str]:
        conn = self._connection()
        if self.durability == "sync":
            # Deleting needs no fsync of its own: the commit is in the WAL (it survives
            # kill -9), the next synced commit makes it durable too, and a power
            # failure before that only brings back old, valid points that the next
            # pruning removes. What is kept is durable already.
            conn.execute("PRAGMA synchronous = NORMAL")
        try:
            with self._write() as conn:
                doomed = retention.prunable(
                    self.list_points(session_id), keep_automatic, self._valid
                )
                conn.executemany("DELETE FROM points WHERE id = ?", [(p.id,) for p in doomed])
        finally:
            if self.durability == "sync":
                with suppress(sqlite3.Error):  # a broken connection is replaced anyway
                    conn.execute("PRAGMA synchronous = FULL")
        return [p.id for p in doomed]

    def _valid(self, info: RecoveryPointInfo) -> bool:
        try:
            self.load_point(info.id)
        except CorruptRecord:
            return False
        return True

    # -- snapshots, emergency backups, log --------------------------------

    @_translated
    def save_context_snapshot(self, snapshot: ContextSnapshot) -> None:
        doc = codec.dump_document(snapshot.to_wire())
        with self._write() as conn:
            self._require(conn, snapshot.session_id)
            conn.execute(
                "INSERT OR REPLACE INTO snapshots (session_id, doc) VALUES (?, ?)",
                (snapshot.session_id, doc),
            )

    @_translated
    def load_context_snapshot(self, session_id: str) -> ContextSnapshot | None:
        return self._load("snapshots", session_id, ContextSnapshot)

    @_translated
    def save_emergency(self, backup: EmergencyBackup) -> None:
        ids.validate_session_id(backup.session_id)
        doc = codec.dump_document(backup.to_wire())
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO emergency (session_id, doc) VALUES (?, ?)",
                (backup.session_id, doc),
            )

    @_translated
    def load_emergency(self, session_id: str) -> EmergencyBackup | None:
        return self._load("emergency", session_id, EmergencyBackup)

    @_translated
    def list_emergency(self) -> tuple[list[EmergencyBackup], list[Damage]]:
        rows = self._all("SELECT session_id, CAST(doc AS BLOB) FROM emergency ORDER BY session_id")
        backups, damage = [], []
        for key, doc in rows:
            try:
                backups.append(self._document(doc, self._loc("emergency", key), EmergencyBackup))
            except CorruptRecord as exc:
                damage.append(_damage(exc.location, "checksum", str(exc)))
        return backups, damage

    @_translated
    def log_recovery(self, entry: dict[str, Any]) -> None:
        doc = codec.dump_document(entry)
        with self._write() as conn:
            conn.execute("INSERT INTO recovery_log (doc) VALUES (?)", (doc,))

    @_translated
    def read_recovery_log(self) -> list[dict[str, Any]]:
        rows = self._all("SELECT id, CAST(doc AS BLOB) FROM recovery_log ORDER BY id")
        entries = []
        for entry_id, doc in rows:
            # Damaged entries are reported by verify(); the rest stay readable.
            with suppress(CorruptRecord):
                entries.append(codec.load_document(doc, self._loc("recovery_log", entry_id)))
        return entries

    # -- maintenance ------------------------------------------------------

    @_translated
    def verify(self, repair: bool = False) -> VerifyReport:
        report = VerifyReport()
        conn = self._connection()
        try:
            problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                report.damage.extend(_damage(str(self.path), "integrity", p) for p in problems)
            journals, misfiled = self._check_journals(conn, report)
            damaged, rebuild, mend = self._check_rows(conn, journals, report)
        except (sqlite3.DatabaseError, CorruptRecord) as exc:
            # SQLite cannot read its own pages: no row-level repair is safe.
            detail = (
                f"{exc}; restore {self.path} from a backup, or salvage what is readable "
                f"with `sqlite3 {self.path} .recover`"
            )
            report.damage.append(_damage(str(self.path), "integrity", detail))
            return report
        if repair and (damaged or rebuild or mend or misfiled):
            with self._write() as conn:
                self._relink(conn, misfiled, report)
                kept = self._quarantine(conn, damaged, report)
                for session_id in sorted(mend):
                    self._close_gaps(conn, session_id, kept.get(session_id, {}), report)
                for session_id in sorted(rebuild):
                    self._rebuild(conn, session_id, report)
        return report

    def index_damage(self) -> list[Damage]:
        return self._index_damage.found()

    def _check_journals(
        self, conn: sqlite3.Connection, report: VerifyReport
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
            report.damage.append(_damage(self._loc("journals", key), "missing", detail))
            misfiled.append((key, named, stored))
        return journals, misfiled

    def _relink(
        self,
        conn: sqlite3.Connection,
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
                kept = self._keep(conn, "journals", str(key), reason, stored.encode())
                report.quarantined.append(kept)
            conn.execute(
                "INSERT OR REPLACE INTO journals (id, session_id) VALUES (?, ?)", (key, named)
            )
            report.repaired.append(f"{self._loc('journals', key)}: filed under {named}")

    def _check_rows(
        self, conn: sqlite3.Connection, journals: set[str], report: VerifyReport
    ) -> tuple[list[tuple[str, tuple[object, ...], Damage]], set[str], set[str]]:
        """Check every row; return the damaged rows (table, key, damage), the
        sessions whose registry entry must be rebuilt from the journal, and
        those whose journal lost events."""
        damaged: list[tuple[str, tuple[object, ...], Damage]] = []
        for table, (key, column) in _DOCUMENTS.items():
            for row_key, data in conn.execute(
                f"SELECT {key}, CAST({column} AS BLOB) FROM {table}"
            ).fetchall():
                report.checked += 1
                try:
                    if table == "points":
                        self.load_point(row_key)  # also checks the listing columns
                    else:
                        codec.load_document(data, self._loc(table, row_key))
                except (CorruptRecord, InvalidIdentifier) as exc:
                    damage = _damage(self._loc(table, row_key), "checksum", str(exc))
                    report.damage.append(damage)
                    damaged.append((table, (row_key,), damage))
        registered = {r[0] for r in conn.execute("SELECT id FROM sessions")}
        mend = set()
        for session_id in sorted(journals):
            read = self.read_events(session_id)
            report.checked += len(read.events)
            report.damage.extend(read.damage)
            if read.damage:
                mend.add(session_id)
            for damage in read.damage:
                if damage.kind != "gap":
                    seq = int(damage.location.rsplit("/", 1)[1])
                    damaged.append(("events", (session_id, seq), damage))
        for sid in sorted(journals - registered):
            detail = f"{sid} has a journal but no registry entry"
            report.damage.append(_damage(self._loc("sessions", sid), "missing", detail))
        for sid in sorted(registered - journals):
            detail = f"{sid} has a registry entry but no journal"
            report.damage.append(_damage(self._loc("events", sid), "missing", detail))
        rebuild = (journals - registered) | {
            str(key[0]) for table, key, _ in damaged if table == "sessions"
        }
        return damaged, rebuild & journals, mend

    def _keep(
        self, conn: sqlite3.Connection, source: str, key: str, reason: str, data: bytes
    ) -> str:
        """Copy damaged bytes to the quarantine table; returns where they are now."""
        cursor = conn.execute(
            "INSERT INTO quarantine (source, key, found, reason, data) VALUES (?, ?, ?, ?, ?)",
            (source, key, utc_now().isoformat(), reason, data),
        )
        return self._loc("quarantine", cursor.lastrowid)

    def _quarantine(
        self,
        conn: sqlite3.Connection,
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
                where, column = f"journal = {_JOURNAL} AND seq = ?2", "line"
            else:
                where, column = f"{_DOCUMENTS[table][0]} = ?", _DOCUMENTS[table][1]
            row = conn.execute(
                f"SELECT CAST({column} AS BLOB) FROM {table} WHERE {where}", key
            ).fetchone()
            if row is None:
                continue
            if table == "leases":
                self._reseal_lease(conn, str(key[0]))
            kept = self._keep(conn, table, "/".join(str(k) for k in key), damage.detail, row[0])
            if table != "leases":
                conn.execute(f"DELETE FROM {table} WHERE {where}", key)
            if table == "events":
                reason = "torn" if codec.cut_short(row[0]) else "checksum"
                events.setdefault(str(key[0]), {})[int(str(key[1]))] = (reason, kept)
            report.quarantined.append(kept)
        return events

    def _close_gaps(
        self, conn: sqlite3.Connection, session_id: str, kept: Lost, report: VerifyReport
    ) -> None:
        """Put a tombstone at every number the journal lost (damaged rows already quarantined)."""
        read = self.read_events(session_id)
        present = [e.seq for e in read.events]
        lost: Lost = {
            seq: kept.get(seq, ("missing", None))
            for seq in lost_numbers(present, max([*present, *kept], default=0))
        }
        stones = tombstones(read.events, lost, utc_now())
        journal = conn.execute(f"SELECT {_JOURNAL}", (session_id,)).fetchone()[0]
        conn.executemany(_INSERT_EVENT, [(journal, e.seq, codec.encode_event(e)) for e in stones])
        if stones:
            numbers = ", ".join(str(e.seq) for e in stones)
            report.repaired.append(
                f"{self._loc('events', session_id)}: closed lost event(s) {numbers} with tombstones"
            )

    def _reseal_lease(self, conn: sqlite3.Connection, session_id: str) -> None:
        """Replace a damaged lease by an expired one that keeps the highest token seen,
        so the next writer still fences out every earlier one."""
        token = self._one("SELECT token FROM leases WHERE session_id = ?", session_id)[0]
        for event in self.read_events(session_id).events:
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
        self._put_lease(conn, sealed)

    def _rebuild(self, conn: sqlite3.Connection, session_id: str, report: VerifyReport) -> None:
        """Rebuild a registry entry from the newest valid point and the journal after it."""
        try:
            record = derive_record(self, session_id)
        except CorruptRecord as exc:
            detail = f"cannot rebuild {session_id}: {exc}"
            report.damage.append(_damage(self._loc("sessions", session_id), "missing", detail))
            return
        self._put_session(conn, record)
        report.repaired.append(self._loc("sessions", session_id))
