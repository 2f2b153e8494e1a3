"""Running `continuity ...` in a git project as a user would, for the CLI suites."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def cli(root: Path, url: str, *args: str, user: str = "alice") -> subprocess.CompletedProcess[str]:
    """Run the command line in ``root`` on the store ``url`` as ``user``."""
    return subprocess.run(
        [sys.executable, "-m", "agent_continuity.cli", "--store", url, *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CONTINUITY_USER": user},
    )


def cli_json(root: Path, url: str, *args: str) -> dict[str, Any]:
    """The JSON object a successful ``--json`` command prints."""
    result = cli(root, url, *args, "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def continuity(root: Path, *args: str, user: str = "alice") -> subprocess.CompletedProcess[str]:
    """Run the command line in ``root`` on the project's configured store as ``user``."""
    return subprocess.run(
        [sys.executable, "-m", "agent_continuity.cli", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CONTINUITY_USER": user},
    )


def git(root: Path, *args: str) -> None:
    """Run git in ``root`` with a throwaway identity."""
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def git_project(root: Path) -> Path:
    """A one-commit git project at ``root`` (``app.py``), its store folder ignored."""
    root.mkdir()
    (root / ".gitignore").write_text("projectDocs/\n")
    (root / "app.py").write_text("print('hi')\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    return root
