"""PostgreSQL's failures in the package's terms: each error says what happened and what to do.

No driver traceback reaches a user: every psycopg error escaping a store
method becomes one of these (see :func:`..sql.connection.translated`).
"""

from __future__ import annotations

from agent_continuity.errors import ContinuityError, CorruptRecord, StoreError, StoreUnavailable

# SQLSTATE classes and codes by what the user should do about them.
_LOST = ("08", "57P01", "57P02", "57P03")  # connection lost, server shut down or starting
_LOCKED = ("55P03", "57014", "40P01", "40001")  # lock timeout, cancelled, deadlock, serialization
_FULL = ("53",)  # insufficient resources: disk full, out of memory, too many connections
_DENIED = ("42501", "28")  # privileges, authentication
_DAMAGED = ("XX001", "XX002")  # data or index corrupted


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def translate(exc: BaseException, where: str, timeout: float) -> ContinuityError:
    """The package's error for a psycopg error on the store at ``where``."""
    from psycopg import Error as DriverError
    from psycopg import OperationalError
    from psycopg_pool import PoolClosed, PoolTimeout

    said = _first_line(exc)
    if isinstance(exc, PoolTimeout):
        return StoreUnavailable(
            f"no connection to PostgreSQL at {where} within {timeout:g} s ({said}); check that "
            "the server is running and reachable, then run the command again"
        )
    if isinstance(exc, PoolClosed):
        return StoreError(f"the store {where} is closed; open it again")
    state = (exc.sqlstate or "") if isinstance(exc, DriverError) else ""
    # psycopg's own word that the socket failed carries no SQLSTATE.
    broken = isinstance(exc, OperationalError) and exc.sqlstate is None
    if state.startswith(_LOST) or broken:
        return StoreUnavailable(
            f"lost the connection to PostgreSQL at {where} ({said}). The write in progress was "
            "not acknowledged, so it may or may not have been saved: read it back (for example "
            "`continuity show`) before repeating it. Everything acknowledged before is kept; "
            "the next command reconnects"
        )
    if state.startswith(_LOCKED):
        return StoreError(
            f"{where} stayed locked by another writer for {timeout:g} s ({said}); nothing was "
            "written. Run the command again, or stop the process holding it"
        )
    if state.startswith(_FULL):
        return StoreError(
            f"the PostgreSQL server of {where} is out of resources ({said}); nothing was written. "
            "Free disk space or connections on the server and run the command again"
        )
    if state.startswith(_DENIED):
        return StoreError(
            f"PostgreSQL refused {where} ({said}); check the user and password in the store "
            "URL and the user's privileges on the database"
        )
    if state.startswith(_DAMAGED):
        return CorruptRecord(
            f"PostgreSQL reports damage in {where} ({said}); restore the database from a "
            "backup (pg_dump or point-in-time recovery)",
            where,
        )
    return StoreError(f"PostgreSQL failed on {where} ({said}); nothing was written")
