"""The test session's throwaway PostgreSQL server: no manual step.

The server itself is :class:`agent_continuity.testing.postgres.PostgresServer`
(initdb as ``postgres`` in a ``mkdtemp`` folder outside pytest's temp folders,
a free loopback port, its socket in that folder, stopped by pid). It starts on
first use, so a run without PostgreSQL tests pays nothing, and the session
fixture below (used from conftest.py) stops it at the end.

Each test gets a database of its own (:meth:`PostgresServer.new_database`), so
tests never share state.
"""

from __future__ import annotations

import atexit
from collections.abc import Iterator

import pytest

from agent_continuity.testing.postgres import PostgresServer

_shared: PostgresServer | None = None


def server() -> PostgresServer:
    """The test session's server, started on first use (a run without PostgreSQL pays nothing)."""
    global _shared
    if _shared is None:
        _shared = PostgresServer()
        atexit.register(_shared.stop)  # also stopped if the session ends abnormally
    return _shared


@pytest.fixture(scope="session", autouse=True)
def postgres_server() -> Iterator[None]:
    """Stops the test session's server (if a test started one) by its pid at the end."""
    yield
    if _shared is not None:
        _shared.stop()
