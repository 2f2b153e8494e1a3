"""Build status: run the project's configured build or test command."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
from enum import StrEnum
from pathlib import Path

log = logging.getLogger(__name__)


class BuildStatus(StrEnum):
    """The outcome of the build command, as ``CodeContext.build_status`` records it."""

    PASSING = "passing"
    FAILING = "failing"
    TIMEOUT = "timeout"
    UNKNOWN = "unknown"  # no command configured, or it could not be started


def run_build(command: str, cwd: Path, timeout: float = 60.0) -> BuildStatus:
    """Run ``command`` in ``cwd`` and report whether it passed.

    The command is split with :func:`shlex.split` and run without a shell.
    Its output is discarded: only the exit status matters here, and a pipe
    nobody reads would block a chatty build. On timeout the whole process
    group is killed, so a ``make`` does not leave its compilers running.

    Args:
        command: The command line, e.g. ``"pytest -q"``.
        cwd: The folder to run it in (the project root).
        timeout: Seconds before it counts as ``timeout``.

    Returns:
        ``passing`` on exit status 0, ``failing`` on any other, ``timeout``
        when it ran out of time, ``unknown`` when it could not be started.
    """
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        log.warning("build command %r cannot be parsed: %s", command, exc)
        return BuildStatus.UNKNOWN
    if not argv:
        return BuildStatus.UNKNOWN
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        log.warning("build command %r cannot be started: %s", command, exc)
        return BuildStatus.UNKNOWN
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return BuildStatus.TIMEOUT
    return BuildStatus.PASSING if code == 0 else BuildStatus.FAILING


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (OSError, AttributeError):  # Windows has no process groups
        proc.kill()
    proc.wait()
