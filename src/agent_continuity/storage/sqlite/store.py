"""``sqlite:///PATH``: every session of a project in one SQLite database.

This module is SQLite's dialect of the shared SQL store (:mod:`..sql`): its
connections, its write transaction, its upserts and its unsynced commit. The
tables and their migrations are in :mod:`.schema`; batched mode's flusher
thread in :mod:`.flusher`; what each SQLite failure tells the user in
:mod:`.errors`.

Durability. The database runs in WAL mode and every write is one transaction
(``BEGIN IMMEDIATE``, or a single statement, which SQLite runs as one) that is
committed before the method returns.
A committed transaction is in the WAL file, so it survives ``kill -9`` in both
modes. ``durability="sync"`` adds ``synchronous=FULL``: each commit fsyncs the
WAL, so it also survives power loss (automatic recovery points excepted: they
are durable with the next synced commit, see :mod:`..sql.points`).
``durability="batched"`` uses
``synchronous=NORMAL`` and a flusher thread that fsyncs the WAL at most
``batch_interval`` seconds after a commit: power loss (or a kernel crash) can
lose the writes of the last ``batch_interval`` seconds, never a process kill.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import ClassVar

from agent_continuity.errors import ConfigError, ContinuityError, CorruptRecord, StoreError

from ..base import DURABILITY_MODES
from ..encryption import attach
from ..sql.connection import SqlConnection, translated
from ..sql.statements import UPSERTED
from ..sql.store import SqlStore
from .connection import ThreadConnection
from .errors import translate
from .flusher import WalFlusher
from .schema import create_database, make_database_private, migrate

BUSY_TIMEOUT = 30.0
BATCH_INTERVAL = 1.0


class SqliteStore(SqlStore):
    """A store in one SQLite database file, shared safely by many processes.

    One connection per thread (and per process: a store used after ``fork``
    opens fresh ones). See :class:`~..base.Store` for the method contracts.

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

    driver_errors: ClassVar[tuple[type[BaseException], ...]] = (sqlite3.Error,)
    upserts: ClassVar[dict[str, str]] = {
        table: f"INSERT OR REPLACE INTO {table} ({', '.join(columns)})"
        f" VALUES ({', '.join('?' * len(columns))})"
        for table, (columns, _) in UPSERTED.items()
    }

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
        self.where = str(self.path)
        self.url = url if url is not None else f"sqlite:///{self.path}"
        self.durability = durability
        self.busy_timeout = busy_timeout
        self.batch_interval = batch_interval
        self._scope = nullcontext()  # a connection per thread: nothing to hold per call
        self._lock = threading.Lock()
        self._closed = False
        self._pid = os.getpid()
        self._local = threading.local()
        self._connections: weakref.WeakSet[ThreadConnection] = weakref.WeakSet()
        self._inherited: list[ThreadConnection] = []
        self._flusher = self._new_flusher()
        self._start()
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

    @contextmanager
    def _unsynced(self, when: bool = True) -> Iterator[None]:
        """Commit without an fsync of its own (``synchronous=NORMAL``) in sync mode.

        The commit is in the WAL when it returns (it survives ``kill -9``); the next
        synced commit, or a WAL checkpoint, makes it survive power loss too.
        """
        if not (when and self.durability == "sync"):
            yield
            return
        conn = self._connection()
        conn.execute("PRAGMA synchronous = NORMAL")
        try:
            yield
        finally:
            try:
                conn.execute("PRAGMA synchronous = FULL")
            except sqlite3.Error:
                # Never keep a connection that would acknowledge appends without an
                # fsync: this thread's next call opens a fresh one.
                self._local.held = None
                with suppress(sqlite3.Error):
                    conn.close()

    def _insert_id(self, conn: SqlConnection, sql: str, params: Sequence[object]) -> int:
        assert isinstance(conn, sqlite3.Connection)
        return int(conn.execute(sql, params).lastrowid or 0)

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

    def _translate(self, exc: BaseException) -> ContinuityError:
        assert isinstance(exc, sqlite3.Error)
        return translate(exc, self.path, self.busy_timeout)

    def _is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError)

    def _integrity_problems(self, conn: SqlConnection) -> list[str]:
        problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check")]
        return [] if problems == ["ok"] else problems

    def _salvage_advice(self) -> str:
        return (
            f"restore {self.path} from a backup, or salvage what is readable "
            f"with `sqlite3 {self.path} .recover`"
        )

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
