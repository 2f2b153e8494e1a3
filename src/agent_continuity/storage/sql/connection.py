"""What the shared SQL layer needs of a dialect's connections; driver errors in our terms."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from functools import wraps
from typing import Any, ClassVar, Concatenate, ParamSpec, Protocol, TypeVar

from agent_continuity.errors import ContinuityError


class SqlCursor(Protocol):
    """The part of a DB-API cursor the shared layer uses."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class SqlConnection(Protocol):
    """A connection that runs one statement (``?`` or ``?N`` parameters) and returns its cursor.

    ``sqlite3.Connection`` is one as it is; other dialects wrap theirs.
    """

    def execute(self, sql: str, parameters: Any = ..., /) -> SqlCursor: ...

    def executemany(self, sql: str, parameters: Any, /) -> SqlCursor: ...


class Translates(Protocol):
    """A store that says what a driver error means for its user."""

    #: The driver's error classes: what :func:`translated` turns into the package's own.
    driver_errors: ClassVar[tuple[type[BaseException], ...]]
    #: Entered around every public call (a pooled dialect holds its connection for it).
    _scope: AbstractContextManager[object]

    def _translate(self, exc: BaseException) -> ContinuityError: ...


_P = ParamSpec("_P")
_R = TypeVar("_R")
_S = TypeVar("_S", bound=Translates)


def translated(
    method: Callable[Concatenate[_S, _P], _R],
) -> Callable[Concatenate[_S, _P], _R]:
    """Turn driver errors escaping a public method into the package's own errors."""

    @wraps(method)
    def wrapper(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._scope:
            try:
                return method(self, *args, **kwargs)
            except self.driver_errors as exc:
                raise self._translate(exc) from exc

    return wrapper
