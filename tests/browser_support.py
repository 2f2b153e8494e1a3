"""Real Chromium for the web app's tests: a process of its own that a test can SIGKILL.

Chromium comes from Debian (``apt-get install -y chromium``, run here when
``/usr/bin/chromium`` is missing); Playwright for Python drives it over the
DevTools protocol (``connect_over_cdp``), so no browser is ever downloaded
(never ``playwright install``). Each :class:`Chromium` is one browser process
group on a free loopback port with its own profile folder: killing the group
is a real browser crash, with no chance to send a last request.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
STARTUP_SECONDS = 30.0


def ensure_chromium() -> Path:
    """The Debian Chromium, installed with apt-get if it is missing (the tests run as root)."""
    if not CHROMIUM.exists():
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
    if not CHROMIUM.exists():
        raise RuntimeError("apt-get install chromium did not provide /usr/bin/chromium")
    return CHROMIUM


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_http(url: str, timeout: float = STARTUP_SECONDS) -> Any:
    """GET ``url`` until it answers 2xx; its JSON body (or None)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                body = answer.read()
                return json.loads(body) if body.strip().startswith(b"{") else None
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class Chromium:
    """One headless Chromium process group, reachable over CDP on a loopback port.

    Args:
        profile: The browser's user-data folder (kept across a crash and relaunch,
            like a real user's profile).
        width: Window width in CSS pixels.
        height: Window height in CSS pixels.
    """

    def __init__(self, profile: Path, *, width: int = 1280, height: int = 860) -> None:
        self.profile = profile
        self.port = free_port()
        self.width = width
        self.height = height
        self.process: subprocess.Popen[bytes] | None = None

    def launch(self) -> str:
        """Start the browser; returns its CDP endpoint URL."""
        binary = ensure_chromium()
        self.profile.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                str(binary),
                "--headless=new",
                "--no-sandbox",  # root in a container: the sandbox cannot start
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-breakpad",
                "--hide-scrollbars",
                "--force-color-profile=srgb",
                f"--window-size={self.width},{self.height}",
                "--remote-debugging-address=127.0.0.1",
                f"--remote-debugging-port={self.port}",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: one kill takes every child
        )
        endpoint = f"http://127.0.0.1:{self.port}"
        wait_for_http(f"{endpoint}/json/version")
        return endpoint

    def kill(self) -> None:
        """SIGKILL the whole browser (every renderer and helper): a crash, no unload."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> Chromium:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()


def remove_tree(path: Path) -> None:
    """Remove a profile folder, ignoring what a killed browser left half-written."""
    shutil.rmtree(path, ignore_errors=True)
