"""Fixtures around the real Claude Code: a hooked project, and the transcripts real runs wrote.

``claude_project`` gives a fresh git project with the hooks installed, its
own HOME and hooks state, and the fake API; ``claude_transcripts`` runs a
small real session once per test run (a prompt, a Bash call, a Write, a
reply) and gives the ``~/.claude/projects/*/*.jsonl`` files it wrote, for
the transcript importer's tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from coding_agents.claude_code import ClaudeCode
from coding_agents.fake_anthropic import FakeAnthropic


@dataclass
class ClaudeProject:
    """A git project with the hooks installed, and Claude Code to run in it."""

    root: Path
    home: Path
    state: Path
    api: FakeAnthropic
    claude: ClaudeCode

    def continuity(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``continuity ARGS`` in the project, with the hooks' state of this project."""
        return subprocess.run(
            [sys.executable, "-m", "agent_continuity.cli", *args],
            cwd=self.root,
            env={**os.environ, **self.env()},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def env(self) -> dict[str, str]:
        """What the hooks and the commands need to find this project's state."""
        return {"CONTINUITY_STATE_DIR": str(self.state), "HOME": str(self.home)}


def make_project(base: Path, api: FakeAnthropic) -> ClaudeProject:
    """A fresh hooked project under ``base``."""
    root, home, state = base / "project", base / "home", base / "state"
    for folder in (root, home, state):
        folder.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    claude = ClaudeCode(root, home, api.url, {"CONTINUITY_STATE_DIR": str(state)})
    project = ClaudeProject(root, home, state, api, claude)
    done = project.continuity("hooks", "install", "claude")
    assert done.returncode == 0, done.stderr
    return project


@pytest.fixture
def claude_project(tmp_path: Path) -> Iterator[ClaudeProject]:
    """A hooked project and the fake API, for one test."""
    with FakeAnthropic() as api:
        yield make_project(tmp_path, api)


@pytest.fixture(scope="session")
def claude_transcripts(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The transcript files of one real Claude Code session (prompt, Bash, Write, replies)."""
    with FakeAnthropic() as api:
        project = make_project(tmp_path_factory.mktemp("claude-transcripts"), api)
        first = project.claude.run("List the files\nRUN: ls -a")
        project.claude.run("Write the notes\nWRITE: notes.txt hello", resume=first["session_id"])
    found = project.claude.transcripts()
    assert found, "Claude Code wrote no transcript"
    return found
