"""A SQLite store's connections: one per thread, and driver errors turned into the package's own."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import suppress
from functools import wraps
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from agent_continuity.errors import ContinuityError


class Translates(Protocol):
    """A store that says what a driver error means for its user."""

    def _translate(self, exc: sqlite3.Error) -> ContinuityError: ...


_P = ParamSpec("_P")
_R = TypeVar("_R")
_S = TypeVar("_S", bound=Translates)


def translated(
    method: Callable[Concatenate[_S, _P], _R],
) -> Callable[Concatenate[_S, _P], _R]:
    """Turn driver errors escaping a public method into the package's own errors."""

    @wraps(method)
    def wrapper(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    return wrapper


class ThreadConnection:
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
