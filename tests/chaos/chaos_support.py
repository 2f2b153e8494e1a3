"""Shared pieces of the durability suites: stores, writers, the command line, the figures.

The suites under ``tests/chaos/`` try hard to lose a session: they kill
writers with SIGKILL, damage every kind of record, race processes and feed
the API hostile input. Everything here is deliberately plain so a failure
points at the product, not at the harness.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_continuity import SessionManager
from agent_continuity.config import Config

HERE = Path(__file__).resolve().parent
SRC = HERE.parent.parent / "src"
STORE_KINDS = ("files", "sqlite")
#: The stores the process-level suites (kills, concurrent writers) also run on a server.
SHARED_KINDS = (*STORE_KINDS, "postgres")
USER = "chaos"

#: Figures of this run, printed by ``pytest_terminal_summary`` in conftest.py.
FIGURES: Counter[str] = Counter()


def env_count(name: str, default: int) -> int:
    """A positive count from the environment (for long local runs), else ``default``."""
    raw = os.environ.get(name, "")
    return max(default, int(raw)) if raw.strip() else default


def store_url(kind: str, base: Path) -> str:
    """The URL of a fresh store of ``kind`` under ``base``."""
    if kind == "files":
        return f"files:{base / 'tracking'}"
    if kind == "sqlite":
        return f"sqlite:///{base / 'continuity.db'}"
    if kind == "postgres":
        from postgres_support import server

        return server().new_database()  # a database of its own on the test server
    raise ValueError(kind)


def chaos_config(**changes: Any) -> Config:
    """Settings that make the background saver busy: every interval is tiny."""
    values: dict[str, Any] = {
        "user": USER,
        "context_interval": 0.02,
        "conversation_interval": 0.03,
        "project_state_interval": 0.05,
        "full_snapshot_interval": 0.04,
        "heartbeat_interval": 0.05,
        "backup_count": 2,
    }
    values.update(changes)
    return Config(**values)


def manager(url: str, project: Path, **config: Any) -> SessionManager:
    """A manager on ``url`` as a second process would open it (nothing observed)."""
    return SessionManager(
        store=url, project_dir=project, user_id=USER, config=chaos_config(**config), observer=False
    )


def message_text(token: str, size: int) -> str:
    """The exact text a writer records for ``token``: awkward characters, varied length."""
    filler = "é\u2028✓\tx\x00\"\\'" * (size // 9 + 1)
    return f"{token}|{filler[:size]}"


def subprocess_env() -> dict[str, str]:
    """The environment for child processes: the package importable, the user fixed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(HERE), env.get("PYTHONPATH", "")])
    env["CONTINUITY_USER"] = USER
    env.pop("CONTINUITY_STORE", None)
    env.pop("CONTINUITY_DEBUG", None)
    return env


@dataclass
class CliResult:
    """What a ``continuity`` command did."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        """stdout as the one JSON object a ``--json`` command prints."""
        data = json.loads(self.stdout)
        assert isinstance(data, dict)
        return data


def run_cli(args: Sequence[str], cwd: Path, *, stdin: str | None = None) -> CliResult:
    """Run ``python -m agent_continuity.cli ARGS`` as a real process."""
    proc = subprocess.run(
        [sys.executable, "-m", "agent_continuity.cli", *args],
        cwd=cwd,
        env=subprocess_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    FIGURES["cli processes run"] += 1
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@contextlib.contextmanager
def _inside(cwd: Path) -> Iterator[None]:
    previous = os.getcwd()
    saved = os.environ.get("CONTINUITY_USER")
    os.chdir(cwd)
    os.environ["CONTINUITY_USER"] = USER
    try:
        yield
    finally:
        os.chdir(previous)
        if saved is None:
            os.environ.pop("CONTINUITY_USER", None)
        else:
            os.environ["CONTINUITY_USER"] = saved


def cli_in_process(args: Sequence[str], cwd: Path) -> CliResult:
    """Run the ``continuity`` command's code in this process (same path as ``main``).

    Much cheaper than a process; the suites still start real ones now and then.
    """
    from agent_continuity.cli.errors import run
    from agent_continuity.cli.main import cli

    out, err = io.StringIO(), io.StringIO()
    with _inside(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(cli, list(args))
    return CliResult(code, out.getvalue(), err.getvalue())


def assert_one_clear_error_line(result: CliResult) -> None:
    """Exit 1, one line on stderr starting ``continuity: error [CODE]:``, no traceback."""
    assert result.code == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.match(r"continuity: error \[[a-z-]+\]: ", lines[0]), result.stderr
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr, result.stderr
