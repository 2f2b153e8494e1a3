"""The real coding-agent CLIs from npm, and the fake model APIs they talk to, for the suites.

A CLI is installed once per version with npm under
``~/.cache/agent-continuity/npm/<name>-<version>`` (a lock file keeps two
test processes from installing it at once); later runs find it there. A fake
API (``tests/coding_agents/fake_*.py``) runs as its own process on 127.0.0.1 on a
free port and is stopped by its pid.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

AGENTS_DIR = Path(__file__).resolve().parent / "coding_agents"
NPM_CACHE = Path.home() / ".cache" / "agent-continuity" / "npm"

# Pinned: the transcript formats the importer reads are those of these versions.
CODEX = ("@openai/codex", "0.171.0", "codex")
GEMINI = ("@google/gemini-cli", "0.61.0", "gemini")


def npm_cli(package: str, version: str, binary: str) -> Path:
    """The path of ``binary`` from ``package@version``, installed with npm on first use."""
    home = NPM_CACHE / f"{binary}-{version}"
    found = home / "node_modules" / ".bin" / binary
    done = home / ".installed"
    if done.exists() and found.exists():
        return found
    npm = shutil.which("npm")
    assert npm is not None, "npm is needed to install the real agent CLIs (node 20 or newer)"
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (done.exists() and found.exists()):
            result = subprocess.run(
                [
                    npm,
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--prefix",
                    str(home),
                    f"{package}@{version}",
                ],
                capture_output=True,
                text=True,
                timeout=900,
            )
            assert result.returncode == 0, f"npm install {package}@{version}:\n{result.stderr}"
            done.write_text(f"{package}@{version}\n")
    assert found.exists(), f"{package}@{version} installed no {binary}"
    return found


@contextmanager
def fake_api(script: str, log: Path) -> Iterator[int]:
    """Run ``tests/coding_agents/<script>`` logging requests to ``log``; yields its port."""
    process = subprocess.Popen(
        [sys.executable, str(AGENTS_DIR / script), str(log)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield port
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


def agent_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of an agent run: a throwaway HOME, no real keys, no proxies."""
    keep = ("PATH", "LANG", "LC_ALL", "TERM", "TMPDIR", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(HOME=str(home), NO_COLOR="1", CI="1", **extra)
    return env
