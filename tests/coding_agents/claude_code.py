"""Running the real Claude Code, offline, against :mod:`tests.agents.fake_anthropic`.

Claude Code is the binary bundled in the ``claude-agent-sdk`` wheel (the
``dev`` extra installs it). Every run gets a HOME of its own, the fake API's
URL and a dummy key, and the switches that stop it calling anywhere else.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def claude_binary() -> Path:
    """The Claude Code executable bundled in the installed ``claude-agent-sdk``."""
    import claude_agent_sdk

    found = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    assert found.is_file(), f"no bundled Claude Code at {found}; reinstall claude-agent-sdk"
    return found


@dataclass
class ClaudeCode:
    """Runs ``claude -p`` in ``project``, HOME ``home``, against the fake API at ``api_url``."""

    project: Path
    home: Path
    api_url: str
    extra_env: Mapping[str, str] | None = None

    def env(self) -> dict[str, str]:
        """The environment of a run: offline, and nothing of the real user's."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ANTHROPIC_", "CLAUDE_", "CONTINUITY_"))
        }
        env.update(
            {
                "HOME": str(self.home),
                "ANTHROPIC_BASE_URL": self.api_url,
                "ANTHROPIC_API_KEY": "sk-ant-fake-key-for-tests",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                "DISABLE_AUTOUPDATER": "1",
                "DISABLE_TELEMETRY": "1",
                "DISABLE_ERROR_REPORTING": "1",
                "DISABLE_BUG_COMMAND": "1",
                "CLAUDE_CODE_USE_BEDROCK": "",
                "NO_PROXY": "127.0.0.1,localhost",
            }
        )
        env.update(self.extra_env or {})
        return env

    def command(self, prompt: str, *, resume: str | None = None) -> list[str]:
        """The ``claude -p`` command line for ``prompt``."""
        args = [str(claude_binary()), "-p", prompt, "--output-format", "json"]
        args += ["--allowedTools", "Bash", "Write", "Edit", "--model", "claude-sonnet-4-5"]
        if resume:
            args += ["--resume", resume]
        return args

    def run(self, prompt: str, *, resume: str | None = None, timeout: float = 90) -> dict[str, Any]:
        """Run one prompt to the end; Claude Code's JSON result (``session_id``, ``result``...)."""
        done = subprocess.run(
            self.command(prompt, resume=resume),
            cwd=self.project,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, (
            f"claude failed ({done.returncode}): {done.stderr}\n{done.stdout}"
        )
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result

    def start(self, prompt: str, *, resume: str | None = None) -> subprocess.Popen[str]:
        """Start a run and return at once (to kill it mid-turn)."""
        return subprocess.Popen(
            self.command(prompt, resume=resume),
            cwd=self.project,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def transcripts(self) -> list[Path]:
        """The transcript files Claude Code wrote under this HOME (``~/.claude/projects``)."""
        return sorted((self.home / ".claude" / "projects").rglob("*.jsonl"))


def kill_hard(process: subprocess.Popen[str]) -> None:
    """``kill -9`` the agent alone (its children, such as a running tool, are left)."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def wait_for(condition: Any, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``condition()`` until it is true, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def wait_until_ingested(state: Path, timeout: float = 60.0) -> None:
    """Wait until the detached ingesters wrote every spool file under the hooks' ``state``."""
    from agent_continuity.hooks.spool import done_offset

    def done() -> bool:
        return all(
            done_offset(path) >= path.stat().st_size for path in (state / "spool").rglob("*.jsonl")
        )

    wait_for(done, timeout, "the hooks' spool to be ingested")
