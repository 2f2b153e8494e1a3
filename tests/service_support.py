"""A real ``continuity serve`` for the service suites: started on a free port, stopped by pid.

The server runs as a user runs it (``python -m agent_continuity.cli serve``) in
a git project of its own; its output goes to a file the tests can read (the
login URL is on it). Users are added with ``continuity users add --json``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    """A TCP port nobody listens on right now, on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Served:
    """One ``continuity serve`` process and the project it serves.

    Args:
        root: The project folder (made a git project here).
        env: Extra environment (``CONTINUITY_BROWSER_LEASE_TTL``...).
        store: ``--store`` (default: the service's SQLite default).
    """

    def __init__(self, root: Path, env: dict[str, str] | None = None, store: str = "") -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / ".git").mkdir(exist_ok=True)
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "CONTINUITY_USER": "owner",
            "CONTINUITY_RESPONDER_URL": "",
            **(env or {}),
        }
        self.store = store
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``continuity ARGS`` in the project (with this server's store)."""
        store = ("--store", self.store) if self.store else ()
        return subprocess.run(
            [sys.executable, "-m", "agent_continuity.cli", *store, *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            env=self.env,
        )

    def add_user(self, name: str) -> str:
        """``continuity users add NAME --json``; the token."""
        done = self.cli("users", "add", name, "--json")
        assert done.returncode == 0, done.stderr
        data: dict[str, Any] = json.loads(done.stdout)
        assert data["user"] == name
        return str(data["token"])

    def start(self, *extra: str) -> Served:
        """Start the server and wait until it answers."""
        store = ["--store", self.store] if self.store else []
        command = [sys.executable, "-m", "agent_continuity.cli", *store, "serve"]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port), *extra],
                cwd=self.root,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited: {self.log.read_text()}")
            try:
                httpx.get(self.url + "/api/me", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError(f"serve did not answer in 30 s: {self.log.read_text()}")

    def login_url(self) -> str:
        """The login URL ``serve`` printed."""
        found = re.search(r"http://\S+/login\?token=\S+", self.log.read_text())
        assert found, self.log.read_text()
        return found.group(0)

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client of the server, with a bearer token if given."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def stop(self) -> None:
        """Stop the server by its pid: SIGTERM, then SIGKILL after 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
