"""Build status: run the project's configured build or test command.

The command runs through the shell (``make check && pytest`` means what it
means in a terminal), in the project root, bounded by a timeout. A
project-state save must never wait for it: :class:`BuildMonitor` starts the
build in a detached runner process (``python -m agent_continuity.capture.build``)
that outlives a short command-line call, and the runner writes the result to a
small state file that every later save, ``show`` and ``recover`` reads.

This module imports only the standard library: ``continuity show`` reads the
state file without loading the observer, and the runner starts quickly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class BuildStatus(StrEnum):
    """The outcome of the build command, as ``CodeContext.build_status`` records it."""

    PASSING = "passing"
    FAILING = "failing"
    TIMEOUT = "timeout"
    UNKNOWN = "unknown"  # no command configured, never run yet, or it could not be started


@dataclass(frozen=True, slots=True)
class BuildRun:
    """One finished run of the build command (the wire form of ``CodeContext.build``)."""

    command: str
    status: BuildStatus
    exit_code: int | None
    started: str
    finished: str
    fingerprint: str = ""

    def to_wire(self) -> dict[str, Any]:
        """The JSON form, camelCase keys, times as ISO 8601 UTC with ``Z``."""
        return {
            "command": self.command,
            "status": self.status.value,
            "exitCode": self.exit_code,
            "started": self.started,
            "finished": self.finished,
            "fingerprint": self.fingerprint,
        }


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run_build(command: str, cwd: Path, timeout: float = 60.0) -> BuildStatus:
    """Run ``command`` through the shell in ``cwd`` now and report whether it passed.

    See :func:`build_once`, which also says when it ran and its exit status.
    """
    return build_once(command, cwd, timeout).status


def build_once(command: str, cwd: Path, timeout: float = 60.0, fingerprint: str = "") -> BuildRun:
    """Run ``command`` through the shell in ``cwd`` and report whether it passed.

    Its output is discarded: only the exit status matters here, and a pipe
    nobody reads would block a chatty build. On timeout the whole process
    group is killed, so a ``make`` does not leave its compilers running.

    Args:
        command: The command line, e.g. ``"make check && pytest -q"``.
        cwd: The folder to run it in (the project root).
        timeout: Seconds before it counts as ``timeout``.
        fingerprint: What the project looked like when the build was asked for.

    Returns:
        The run: ``passing`` on exit status 0, ``failing`` on any other
        (a shell's 127 when the command is not found), ``timeout`` when it
        ran out of time, ``unknown`` when it could not be started.
    """
    started = _stamp()
    if not command.strip():
        return BuildRun(command, BuildStatus.UNKNOWN, None, started, started, fingerprint)
    try:
        proc = subprocess.Popen(
            command,
            shell=True,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        log.warning("build command %r cannot be started: %s", command, exc)
        return BuildRun(command, BuildStatus.UNKNOWN, None, started, _stamp(), fingerprint)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return BuildRun(command, BuildStatus.TIMEOUT, None, started, _stamp(), fingerprint)
    status = BuildStatus.PASSING if code == 0 else BuildStatus.FAILING
    return BuildRun(command, status, code, started, _stamp(), fingerprint)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (OSError, AttributeError):  # Windows has no process groups
        proc.kill()
    proc.wait()


def default_state_file(project_root: Path) -> Path:
    """Where the latest build result of a project is kept (the user's cache folder).

    Outside the project, so recording a build never shows up as a project change.
    """
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    key = hashlib.sha256(str(Path(project_root).resolve()).encode()).hexdigest()[:16]
    return Path(base) / "agent-continuity" / "builds" / f"{key}.json"


def read_result(state_file: Path, command: str) -> BuildRun | None:
    """The latest finished run of ``command`` recorded in ``state_file``, or None."""
    try:
        data = json.loads(state_file.read_text(encoding="utf-8"))
        if data["command"] != command:
            return None  # another command's result says nothing about this one
        code = data.get("exitCode")
        return BuildRun(
            command=command,
            status=BuildStatus(data["status"]),
            exit_code=code if isinstance(code, int) else None,
            started=str(data["started"]),
            finished=str(data["finished"]),
            fingerprint=str(data.get("fingerprint", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_result(state_file: Path, run: BuildRun) -> None:
    """Replace the recorded result atomically (a reader never sees half of one)."""
    state_file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".build-", dir=state_file.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(run.to_wire(), handle)
        os.replace(tmp, state_file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class BuildMonitor:
    """Runs a project's build in the background and knows its latest result.

    Args:
        command: The build command (run through the shell).
        root: The project root, where it runs.
        timeout: Seconds before a run counts as ``timeout``.
        state_file: Where the latest result is kept (default: :func:`default_state_file`).
    """

    def __init__(
        self, command: str, root: Path, timeout: float, state_file: Path | None = None
    ) -> None:
        self.command = command
        self.root = Path(root)
        self.timeout = timeout
        self.state_file = state_file or default_state_file(self.root)
        self._runner: subprocess.Popen[bytes] | None = None

    def latest(self) -> BuildRun | None:
        """The latest finished run, from any process; None before the first one."""
        return read_result(self.state_file, self.command)

    def request(self, fingerprint: str) -> None:
        """Start a build of the project as ``fingerprint`` describes it; never waits for it.

        Nothing starts when the latest run already built this fingerprint or
        when a run of this process is still going; a run started by another
        process is left alone by the runner itself (it holds a lock).
        """
        latest = self.latest()
        if latest is not None and latest.fingerprint == fingerprint:
            return
        if self._runner is not None and self._runner.poll() is None:
            return
        argv = [sys.executable, "-m", __name__, str(self.state_file), str(self.timeout)]
        try:
            self._runner = subprocess.Popen(
                [*argv, fingerprint, self.command],
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # survives the command that asked for it
            )
        except OSError as exc:
            log.warning("cannot start the build runner: %s", exc)

    def wait(self, timeout: float | None = None) -> BuildRun | None:
        """Wait for this process's build run to finish; its result (for tests and scripts)."""
        if self._runner is not None:
            self._runner.wait(timeout=timeout)
        return self.latest()


def _main(argv: list[str]) -> int:
    """The detached runner: ``STATE-FILE TIMEOUT FINGERPRINT COMMAND``."""
    state_file, timeout, fingerprint, command = Path(argv[0]), float(argv[1]), argv[2], argv[3]
    state_file.parent.mkdir(parents=True, exist_ok=True)
    with open(state_file.with_suffix(".lock"), "a+b") as lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:
            pass  # no advisory locks here: two runs may overlap, the later result wins
        except OSError:
            return 0  # another process's run is building this project now
        write_result(state_file, build_once(command, Path.cwd(), timeout, fingerprint))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
