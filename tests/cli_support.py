"""Running `continuity --store URL ...` in a project as a user would, for the CLI suites."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def cli(root: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command line in ``root`` on the store ``url`` as user alice."""
    return subprocess.run(
        [sys.executable, "-m", "agent_continuity.cli", "--store", url, *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CONTINUITY_USER": "alice"},
    )


def cli_json(root: Path, url: str, *args: str) -> dict[str, Any]:
    """The JSON object a successful ``--json`` command prints."""
    result = cli(root, url, *args, "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data
