"""``postgresql://``: every session of a team or a service in one PostgreSQL database.

This module is PostgreSQL's dialect of the shared SQL store (:mod:`..sql`):
connections from a pool (psycopg_pool), held for the length of one public
call; the write transaction; upserts; the unsynced commit; what each failure
tells the user (:mod:`.errors`); the schema (:mod:`.schema`).

Durability. Every write is one transaction committed before the method
returns. ``durability="sync"`` runs with ``synchronous_commit = on``: the
server acknowledges a commit only once its WAL is flushed to disk, so it
survives ``kill -9`` of the writer, a crash or restart of the server, and
power loss (as far as the server's own ``fsync`` setting allows).
``durability="batched"`` runs with ``synchronous_commit = off``: the server's
WAL writer flushes within three ``wal_writer_delay`` (600 ms by default), so a
server crash or power loss can take back the last such writes, never a kill of
the writer. Automatic recovery points are committed unsynced in both modes
(see :mod:`..sql.points`).

Fencing and ids. A write transaction first takes the store's advisory lock
(:data:`.schema.WRITE_LOCK`, released at commit or rollback), so it runs
alone among writers on every host, as ``BEGIN IMMEDIATE`` does in SQLite: id
allocation and the lease check cannot be overtaken between read and write.
The everyday append is one statement that checks the lease's token and the
journal's end itself; two of them racing for one number meet at the events'
primary key, and the loser takes the locked path, which says why.

A lost connection or a server restart. A pooled connection is checked before
use and replaced if the server closed it; when the server is away, a call
waits up to ``timeout`` seconds for it. A write the server had not confirmed
fails with :class:`~agent_continuity.errors.StoreUnavailable`, which says so;
nothing acknowledged is ever lost.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from agent_continuity.errors import (
    ConfigError,
    ContinuityError,
    StoreError,
    StoreNotFound,
    StoreUnavailable,
)

from ..base import DURABILITY_MODES
from ..encryption import attach
from ..sql.connection import SqlConnection, translated
from ..sql.statements import UPSERTED
from ..sql.store import SqlStore
from . import schema
from .connection import PgConnection, check
from .errors import translate

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

    from .search import PostgresSearchIndex

TIMEOUT = 30.0
POOL_SIZE = 10


def _upsert(table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    update = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        f" ON CONFLICT ({', '.join(key)}) DO " + (f"UPDATE SET {update}" if update else "NOTHING")
    )


def _driver_errors() -> tuple[type[BaseException], ...]:
    try:
        import psycopg
    except ImportError:
        return ()
    return (psycopg.Error,)


class _Call:
    """Holds one pooled connection for the length of a public call (nested calls share it)."""

    __slots__ = ("store",)

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def __enter__(self) -> None:
        local = self.store._local
        local.depth = getattr(local, "depth", 0) + 1

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        local = self.store._local
        local.depth -= 1
        if local.depth == 0:
            self.store._give_back()


class PostgresStore(SqlStore):
    """A store in one PostgreSQL database, shared safely by processes on many hosts.

    Args:
        url: ``postgresql://USER:PASSWORD@HOST:PORT/DATABASE`` (any libpq URL or
            key=value string); the database must exist.
        durability: ``"sync"`` or ``"batched"`` (see the module docstring).
        create: Create the store's tables when the database has none yet.
        timeout: Seconds to wait for the server, a pooled connection or the write lock.
        pool_size: Connections kept at most (one per call in flight).

    Raises:
        ConfigError: If ``durability`` is not a known mode.
        StoreUnavailable: If psycopg is not installed or the server cannot be reached.
        StoreNotFound: If ``create`` is False and the database holds no store.
        StoreError: If the schema cannot be created or is newer than this code.
    """

    driver_errors: ClassVar[tuple[type[BaseException], ...]] = _driver_errors()
    upserts: ClassVar[dict[str, str]] = {
        table: _upsert(table, columns, key) for table, (columns, key) in UPSERTED.items()
    }

    def __init__(
        self,
        url: str,
        *,
        durability: str = "sync",
        create: bool = True,
        timeout: float = TIMEOUT,
        pool_size: int = POOL_SIZE,
    ) -> None:
        if durability not in DURABILITY_MODES:
            raise ConfigError(
                f"durability must be one of {', '.join(DURABILITY_MODES)}, not {durability!r}"
            )
        if not self.driver_errors:
            raise StoreUnavailable(
                "postgresql:// stores need psycopg 3: pip install 'agent-continuity[postgres]'"
            )
        self.url = url
        self.durability = durability
        self.timeout = timeout
        self.pool_size = pool_size
        self.where = _where(url)
        self._scope = _Call(self)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._closed = False
        self._pid = os.getpid()
        self._pool: ConnectionPool[Any] | None = None
        self._stale = False  # the pool gave up waiting for the server: replace it
        self._inherited: list[ConnectionPool[Any]] = []
        self._start()
        try:
            self._open(create)
            attach(self)
        except BaseException:
            self.close()
            raise

    # -- connections and transactions ------------------------------------

    def _settings(self) -> dict[str, Any]:
        sync = "on" if self.durability == "sync" else "off"
        return {
            "autocommit": True,  # explicit transactions only
            "connect_timeout": max(1, round(self.timeout)),
            "options": f"-c synchronous_commit={sync} -c lock_timeout={round(self.timeout * 1000)}",
        }

    @translated
    def _open(self, create: bool) -> None:
        import psycopg

        # One connection first, so a wrong URL or password says so at once (a pool
        # would only keep retrying), and the schema is made or checked.
        try:
            conn = psycopg.connect(self.url, **self._settings())
        except psycopg.OperationalError as exc:
            if not create and 'database "' in str(exc) and "does not exist" in str(exc):
                raise StoreNotFound(
                    f"there is no database {self.where} yet, so nothing to read; create it "
                    "(`createdb`) and run `continuity start`, or --store names the store you meant"
                ) from None
            raise StoreUnavailable(
                f"cannot connect to PostgreSQL at {self.where}: {str(exc).strip()}; check the "
                "store URL (host, port, database, user, password) and that the server is running"
            ) from None
        with conn:
            if not create and schema.version(conn) is None:
                raise StoreNotFound(
                    f"there is no store in {self.where} yet, so nothing to read; "
                    "`continuity start` creates it, or --store names the store you meant"
                )
            schema.migrate(conn, self.where)
        self._pool = self._new_pool()

    def _new_pool(self) -> ConnectionPool[Any]:
        from psycopg_pool import ConnectionPool

        pool: ConnectionPool[Any] = ConnectionPool(
            self.url,
            kwargs=self._settings(),
            min_size=1,
            max_size=self.pool_size,
            timeout=self.timeout,
            check=check,
            name=f"continuity:{self.where}",
            open=False,
        )
        pool.open(wait=False)
        return pool

    def _connection(self) -> PgConnection:
        if os.getpid() != self._pid:
            # Connections must not cross fork(): the parent's pool is kept referenced
            # but unused, since closing its sockets here would end the parent's sessions.
            self._pid = os.getpid()
            self._local.conn = None
            if self._pool is not None and not self._closed:
                self._inherited.append(self._pool)
                self._pool = self._new_pool()
        held: PgConnection | None = getattr(self._local, "conn", None)
        if held is not None:
            return held
        if self._closed or self._pool is None:
            raise StoreError(f"the store {self.where} is closed; open it again")
        from psycopg_pool import PoolTimeout

        if self._stale:
            self._renew_pool()
        try:
            raw = self._pool.getconn()
        except PoolTimeout:
            # The pool now backs off before each new attempt; a fresh one tries at
            # once, so the next call connects as soon as the server is back.
            self._stale = True
            raise
        held = self._local.conn = PgConnection(raw)
        return held

    def _renew_pool(self) -> None:
        with self._lock:
            if not self._stale or self._pool is None:
                return
            old, self._pool = self._pool, self._new_pool()
            self._stale = False
        threading.Thread(target=old.close, kwargs={"timeout": 0}, daemon=True).start()

    def _give_back(self) -> None:
        """Return this thread's connection to the pool at the end of a call."""
        held: PgConnection | None = getattr(self._local, "conn", None)
        if held is None:
            return
        self._local.conn = None
        pool = self._pool
        if pool is None or self._closed:
            with suppress(Exception):
                held.raw.close()
            return
        with suppress(Exception):  # a broken connection is dropped by the pool
            pool.putconn(held.raw)

    @contextmanager
    def _write(self) -> Iterator[PgConnection]:
        """One write transaction holding the store's advisory lock, committed before it exits."""
        conn = self._connection()
        conn.raw.execute("BEGIN")
        try:
            conn.raw.execute("SELECT pg_advisory_xact_lock(%s)", (schema.WRITE_LOCK,))
            yield conn
            conn.raw.execute("COMMIT")
        except BaseException:
            self._roll_back(conn)
            raise

    def _write_one(self, sql: str, params: Sequence[object]) -> psycopg.Cursor[Any]:
        # In autocommit mode one statement is one transaction, committed before it returns.
        return self._connection().execute(sql, params)

    @contextmanager
    def _unsynced(self, when: bool = True) -> Iterator[None]:
        if not (when and self.durability == "sync"):
            yield
            return
        conn = self._connection()
        conn.raw.execute("SET synchronous_commit = off")
        try:
            yield
        finally:
            try:
                conn.raw.execute("SET synchronous_commit = on")
            except self.driver_errors:
                # Never hand on a connection that would acknowledge appends unsynced.
                with suppress(Exception):
                    conn.raw.close()

    def _insert_id(self, conn: SqlConnection, sql: str, params: Sequence[object]) -> int:
        return int(conn.execute(sql + " RETURNING id", params).fetchone()[0])

    def _roll_back(self, conn: PgConnection) -> None:
        import psycopg

        if conn.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            try:
                conn.raw.execute("ROLLBACK")
            except psycopg.Error:
                with suppress(Exception):
                    conn.raw.close()  # the pool drops it

    def _translate(self, exc: BaseException) -> ContinuityError:
        return translate(exc, self.where, self.timeout)

    def _is_unique_violation(self, exc: BaseException) -> bool:
        return getattr(exc, "sqlstate", None) == "23505"

    def _integrity_problems(self, conn: SqlConnection) -> list[str]:
        return []  # the server checks its own pages (data checksums) as it reads them

    def _salvage_advice(self) -> str:
        return (
            f"restore {self.where} from a backup (pg_dump or point-in-time recovery); "
            "`pg_amcheck` tells what is readable"
        )

    # -- what encryption and search ask of a store -----------------------

    @translated
    def load_marker(self) -> bytes | None:
        """The encryption marker (a row of ``settings``), or None when not encrypted.

        A file beside the store, as files and SQLite stores keep, would be seen
        by one host only: in the database, every client opening the store sees it.
        """
        row = self._one("SELECT CAST(doc AS BLOB) FROM settings WHERE name = ?", schema.MARKER_ROW)
        return None if row is None else bytes(row[0])

    @translated
    def save_marker(self, data: bytes) -> None:
        """Replace the encryption marker with ``data`` (one transaction)."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO settings (name, doc) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET doc = EXCLUDED.doc",
                (schema.MARKER_ROW, data),
            )

    @contextmanager
    def session_lock(self, session_id: str) -> Iterator[None]:
        """Hold the lock of one session across processes and hosts for the block.

        What ``continuity serve --workers N`` writes a session under, as one
        process does under a thread lock: a registry entry written from an older
        view never lands after a newer one's. A session-level advisory lock on
        this thread's connection, which the block's store calls share; the
        server releases it if the connection is lost.

        Raises:
            StoreUnavailable: If the lock was not granted within ``timeout``.
        """
        key = (schema.SESSION_LOCKS, session_id)
        with self._scope:
            conn = self._connection()
            try:
                conn.raw.execute("SELECT pg_advisory_lock(%s::int, hashtext(%s))", key)
            except self.driver_errors as exc:
                raise self._translate(exc) from exc
            try:
                yield
            finally:
                try:
                    conn.raw.execute("SELECT pg_advisory_unlock(%s::int, hashtext(%s))", key)
                except self.driver_errors:
                    with suppress(Exception):
                        conn.raw.close()  # the server releases it with the connection

    @translated
    def load_setting(self, name: str) -> bytes | None:
        """The document of the ``settings`` row ``name``, or None.

        Settings are what every host serving the store must see alike (the
        service's users, see :mod:`agent_continuity.users`); a file beside the
        store would be seen by one host only.
        """
        row = self._one("SELECT CAST(doc AS BLOB) FROM settings WHERE name = ?", name)
        return None if row is None else bytes(row[0])

    @translated
    def change_setting(self, name: str, change: Callable[[bytes | None], bytes]) -> None:
        """Replace the ``settings`` row ``name`` with ``change(its document or None)``.

        One transaction under the store's write lock: two hosts changing the
        row at once never lose each other's change.
        """
        with self._write() as conn:
            row = conn.execute(
                "SELECT CAST(doc AS BLOB) FROM settings WHERE name = ?", (name,)
            ).fetchone()
            conn.execute(
                "INSERT INTO settings (name, doc) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET doc = EXCLUDED.doc",
                (name, change(None if row is None else bytes(row[0]))),
            )

    def marker_location(self) -> str:
        """Where the encryption marker is, for messages."""
        return f"{self.where} (table settings, row {schema.MARKER_ROW!r})"

    @translated
    def journal_heads(self) -> dict[str, int]:
        """Every journal's highest sequence number, by session id, in one query.

        What lets search (:mod:`agent_continuity.search.heads`) see which
        journals moved without reading them.
        """
        rows = self._all(
            "SELECT j.session_id, (SELECT max(seq) FROM events WHERE journal = j.id)"
            " FROM journals AS j"
        )
        return {str(sid): int(seq or 0) for sid, seq in rows}

    def search_index(self) -> PostgresSearchIndex:
        """The store's search index: a tsvector table in its own database (:mod:`.search`).

        Never used for an encrypted store: it would hold the words the
        encryption protects readable in the database (the catalog keeps that
        store's index in memory instead, and empties this one).
        """
        from .search import PostgresSearchIndex

        return PostgresSearchIndex(self)

    def close(self) -> None:
        """Close the pool and every connection. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None and os.getpid() == self._pid:
            with suppress(Exception):
                pool.close(timeout=self.timeout)


def _where(url: str) -> str:
    """The store's address for messages: ``HOST:PORT/DATABASE``, never the password."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(url)
    except Exception:
        return "postgresql://?"
    host = str(parts.get("host") or "localhost")
    if host.startswith("/"):
        host = "[" + host + "]"
    port = parts.get("port") or "5432"
    return f"{host}:{port}/{parts.get('dbname') or parts.get('user') or ''}"
