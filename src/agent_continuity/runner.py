"""``continuity run``: run any agent command inside a session this process owns.

The runner holds the lease and heartbeats it, auto-saves on the intervals,
records file changes in the project (debounced) with a recovery point per
burst, and turns the command's fate into the session's: exit 0 completes it;
a non-zero exit or a signal marks it interrupted with that cause. A command
that never started is no session at all: it is refused before one is
created, and the rare one that passes that check but still fails to start
(a script whose interpreter is missing) has its fresh session archived, never
left interrupted for the next ``recover`` to offer.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from agent_continuity import interrupts, lifecycle
from agent_continuity.errors import CommandNotStarted, InvalidInput
from agent_continuity.model import EventKind, Trigger

if TYPE_CHECKING:
    from agent_continuity.live import LiveSession
    from agent_continuity.runtime import Runtime


@dataclass(frozen=True)
class RunOutcome:
    """How the command ended and what became of the session."""

    session_id: str
    exit_status: int
    status: str
    cause: str | None


def _exit_cause(returncode: int) -> str | None:
    if returncode == 0:
        return None
    if returncode < 0:
        try:
            return f"signal: {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal: {-returncode}"
    return f"exit status {returncode}"


def run_command(
    rt: Runtime,
    argv: Sequence[str],
    *,
    session_id: str | None = None,
    notify: Callable[[str], None] = print,
) -> RunOutcome:
    """Run ``argv`` inside a session and wait for it.

    Args:
        rt: The project's runtime.
        argv: The command and its arguments.
        session_id: Continue this active session instead of starting one.
        notify: Receives the lines meant for the user (stderr in the CLI).

    Raises:
        InvalidInput: If ``argv`` is empty.
        CommandNotStarted: If the command cannot be started; no session is left
            behind (a session given with ``session_id`` is marked interrupted).
    """
    if not argv:
        raise InvalidInput("give the command to run after --, e.g. continuity run -- my-agent")
    _check_runnable(argv[0])
    lifecycle.detect_interruptions(rt)
    for record in lifecycle.sessions(rt, "interrupted", rt.user_id, this_project=True):
        why = record.interruption.cause if record.interruption else "unknown"
        notify(
            f"continuity: {record.id} was interrupted ({why}); "
            f"`continuity recover {record.id}` continues it"
        )
    session = (
        lifecycle.adopt(rt, session_id) if session_id else lifecycle.start(rt, type="agent-run")
    )
    notify(f"continuity: running {argv[0]} in {session.id}")
    env = dict(os.environ)
    env["CONTINUITY_SESSION"] = session.id
    # The agent's own `continuity` commands must reach the same store.
    env["CONTINUITY_STORE"] = rt.store.url
    env["CONTINUITY_LEASE"] = session.share_lease()
    watcher = _watch(rt, session)
    try:
        try:
            child = subprocess.Popen(list(argv), env=env, cwd=os.getcwd())
        except OSError as exc:
            why = exc.strerror or str(exc)
            if isinstance(exc, FileNotFoundError) and shutil.which(argv[0]):
                why = "its interpreter (the #! line) was not found"
            if session_id:
                session.interrupt(f"could not start {argv[0]}: {why}")
            else:
                # Nothing ran: this session holds no work, so it is set aside,
                # not left interrupted for the next `recover` to prefer.
                session.archive()
            raise CommandNotStarted(
                f"cannot run {argv[0]!r}: {why}; {session.id} was "
                f"{session.record.status.value}. Check the command and its interpreter"
            ) from None
        returncode = _wait(child, session)
    finally:
        if watcher is not None:
            watcher.stop()
    cause = _exit_cause(returncode)
    if cause is None:
        session.end()
    else:
        session.interrupt(cause)
    return RunOutcome(session.id, returncode, session.record.status.value, cause)


def _check_runnable(command: str) -> None:
    """Refuse, before any session exists, a command that is not there or not executable."""
    if shutil.which(command) is not None:
        return
    if os.sep in command and os.path.exists(command):
        why = "permission denied (not an executable file)"
    else:
        why = "command not found"
    raise CommandNotStarted(
        f"cannot run {command!r}: {why}; no session was started. "
        "Check its name, PATH and permissions"
    )


def _wait(child: subprocess.Popen[bytes], session: LiveSession) -> int:
    try:
        return child.wait()
    except (interrupts.Terminated, KeyboardInterrupt) as exc:
        # We were told to stop: pass it on to the agent, give it a moment to
        # save its own work, then record why the session ended.
        signum = exc.signum if isinstance(exc, interrupts.Terminated) else signal.SIGINT
        try:
            child.send_signal(signum)
            child.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            child.kill()
            child.wait()
        session.interrupt(interrupts.cause_of(exc) or "signal")
        raise


def _watch(rt: Runtime, session: LiveSession) -> _Stoppable | None:
    if "file-modification" not in rt.config.triggers:
        return None
    from agent_continuity.capture.watch import ProjectWatcher

    def on_change(paths: list[str]) -> None:
        if session.closed or not paths:
            return
        drafts = [
            session.draft(EventKind.FILE, {"path": path, "change": _change_of(rt, path)})
            for path in paths
        ]
        session.append_group(drafts, Trigger.FILE_MODIFICATION)

    watcher = ProjectWatcher(
        rt.project_root,
        on_change,
        ignore=rt.observer_ignores(),
        debounce=rt.config.watch_debounce,
    )
    watcher.start()
    return watcher


class _Stoppable(Protocol):
    def stop(self) -> None: ...


def _change_of(rt: Runtime, path: str) -> str:
    return "modified" if (rt.project_root / path).exists() else "deleted"
