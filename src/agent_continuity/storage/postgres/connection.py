"""PostgreSQL connections for the shared SQL layer: its statements in psycopg's style.

The shared statements take ``?`` (in order) and ``?N`` (the Nth, reusable)
parameters and read byte columns as ``CAST(x AS BLOB)``, as SQLite does;
:func:`convert` rewrites each statement once into psycopg's ``%s`` and the
order its parameters go in. A pooled connection is checked before it is
handed out (:func:`check`), so a server that restarted since costs the next
call a reconnect, not an error.
"""

from __future__ import annotations

import re
import select
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

_PARAMETER = re.compile(r"\?(\d*)")
_BLOB = re.compile(r"CAST\(([\w.]+) AS BLOB\)")


@lru_cache(maxsize=1024)
def convert(sql: str) -> tuple[str, tuple[int, ...] | None]:
    """``sql`` in psycopg's style, and the index of the parameter each ``%s`` takes.

    The order is None when the parameters go in as given.
    """
    order: list[int] = []

    def placeholder(match: re.Match[str]) -> str:
        number = match.group(1)
        order.append(int(number) - 1 if number else len(order))
        return "%s"

    text = _PARAMETER.sub(placeholder, _BLOB.sub(r"\1", sql).replace("%", "%%"))
    return text, None if order == list(range(len(order))) else tuple(order)


class PgConnection:
    """A psycopg connection that runs the shared layer's statements (see :func:`convert`)."""

    __slots__ = ("raw",)

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        """Run one statement; its cursor holds the rows."""
        text, order = convert(sql)
        if order is not None:
            parameters = [parameters[i] for i in order]
        return self.raw.execute(text, parameters)

    def executemany(self, sql: str, parameters: Sequence[Sequence[Any]], /) -> psycopg.Cursor[Any]:
        """Run one statement for each set of parameters."""
        text, order = convert(sql)
        if order is not None:
            parameters = [[row[i] for i in order] for row in parameters]
        cursor = self.raw.cursor()
        cursor.executemany(text, parameters)
        return cursor


def check(conn: psycopg.Connection[Any]) -> None:
    """Refuse a pooled connection the server has closed since it was last used.

    An idle connection has nothing to read: anything readable is the server
    saying goodbye (a restart, a terminated backend) or the end of the
    stream. Looking costs no round trip, unlike a ``SELECT 1``.

    Raises:
        psycopg.OperationalError: If the connection is closed or broken.
    """
    import psycopg

    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        # Closed here, so the pool drops it (it would take an open one back).
        conn.close()
        raise psycopg.OperationalError("the server closed the connection")
