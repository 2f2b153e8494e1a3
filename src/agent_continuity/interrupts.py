"""Notice every way a process can stop without ending its sessions.

An unhandled exception, SIGTERM / SIGHUP / SIGINT, or a normal exit without
``end()`` each mark the process's live sessions ``interrupted`` with a cause
that names what happened. ``kill -9`` cannot be caught; the lease expiry in
:mod:`agent_continuity.liveness` covers it.
"""

from __future__ import annotations

import atexit
import signal
import sys
import threading
import weakref
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any, Protocol


class Interruptible(Protocol):
    """What the watcher needs from a live session."""

    def interrupt(self, cause: str) -> None:
        """Mark the session interrupted with ``cause`` and save its final state."""


class Terminated(SystemExit):
    """Raised in the main thread when a termination signal arrives."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum
        self.cause = f"signal: {signal.Signals(signum).name}"


def cause_of(exc: BaseException | None) -> str | None:
    """The interruption cause an exception stands for, or None for a clean exit."""
    if exc is None:
        return None
    if isinstance(exc, Terminated):
        return exc.cause
    if isinstance(exc, KeyboardInterrupt):
        return "signal: SIGINT"
    if isinstance(exc, SystemExit):
        return None if exc.code in (0, None) else f"exit status {exc.code}"
    detail = str(exc)
    name = type(exc).__name__
    return f"exception: {name}: {detail}" if detail else f"exception: {name}"


class _Watcher:
    def __init__(self) -> None:
        self._sessions: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._installed = False
        self._last_cause: str | None = None
        self._previous_hook: Callable[..., Any] = sys.excepthook
        self._previous_handlers: dict[int, Any] = {}

    def register(self, session: Interruptible) -> None:
        with self._lock:
            self._sessions.add(session)
            if not self._installed:
                self._install()

    def unregister(self, session: Interruptible) -> None:
        with self._lock:
            self._sessions.discard(session)

    def _install(self) -> None:
        self._installed = True
        atexit.register(self._at_exit)
        self._previous_hook = sys.excepthook
        sys.excepthook = self._excepthook
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGHUP):
                try:
                    self._previous_handlers[signum] = signal.signal(signum, self._on_signal)
                except (ValueError, OSError):  # not allowed here (embedded interpreter)
                    continue

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Unwind the main thread like an exception, so `with` blocks and
        # finally clauses run and the store is never written from inside a
        # signal handler while the interrupted code holds its locks.
        self._last_cause = f"signal: {signal.Signals(signum).name}"
        raise Terminated(signum)

    def _excepthook(
        self, kind: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        self._last_cause = cause_of(value)
        self._previous_hook(kind, value, tb)

    def _at_exit(self) -> None:
        with self._lock:
            sessions = list(self._sessions)
        cause = self._last_cause or "exit-without-end"
        for session in sessions:
            try:
                session.interrupt(cause)
            except Exception as exc:  # the process is exiting; say so and go on
                print(f"continuity: could not mark a session interrupted: {exc}", file=sys.stderr)


_watcher = _Watcher()


def watch(session: Interruptible) -> None:
    """Mark ``session`` interrupted if this process stops before it ends."""
    _watcher.register(session)


def unwatch(session: Interruptible) -> None:
    """Stop watching a session that ended or was interrupted."""
    _watcher.unregister(session)
