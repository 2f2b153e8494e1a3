"""Load on ``continuity serve``: 16 clients over HTTP, beside the same appends in process.

Each client owns one session (as a browser tab does) and posts messages one
after another; a message counts once the server answered 200, which it does
only after the append is durable (``durability="sync"``). Printed, per store:

* ``in-process add_message``: 16 threads, each appending to its own session
  through the library (``LiveSession.add_message``), no HTTP;
* ``in-process UserSessions.message``: the service's own path (ownership
  check, lease, append, registry entry), 16 threads, no HTTP;
* ``HTTP POST /messages``: 16 clients against one ``continuity serve``;
  on PostgreSQL also with ``--workers 2`` (two processes, each its own pool).

Usage::

    python benchmarks/service_load.py                     # SQLite, 16 clients x 200 messages
    python benchmarks/service_load.py --messages 20       # quicker
    python benchmarks/service_load.py --postgres          # also PostgreSQL (SERVICE_LOAD.md)
    python benchmarks/service_load.py --store postgresql://...   # an existing (empty) database

``--postgres`` starts its own PostgreSQL (``fsync`` on, loopback TCP) like
``benchmarks/postgres.py`` does, gives each row a database of its own, and
stops it by its pid at the end.

Nothing is left behind: everything runs in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from agent_continuity import Config, SessionManager, UserSessions


@dataclass
class Result:
    """One row of the table."""

    store: str
    path: str
    clients: int
    messages: int
    seconds: float
    latencies: list[float]

    def line(self) -> str:
        ordered = sorted(self.latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        rate = self.messages / self.seconds
        return (
            f"| {self.store:<8} | {self.path:<34} | {self.clients:>7} | {self.messages:>8} "
            f"| {rate:>10.0f} | {p50:>8.2f} | {p99:>8.2f} |"
        )


PATHS = ("library", "service", "http")

HEADER = (
    "| store    | path                               | clients | messages | messages/s "
    "| p50 (ms) | p99 (ms) |\n"
    "|----------|------------------------------------|---------|----------|------------"
    "|----------|----------|"
)


def _run_clients(
    clients: int, work: Callable[[int, list[float]], None]
) -> tuple[float, list[float]]:
    """Run ``work(client_number, latencies)`` in ``clients`` threads at once; wall time."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    gate = threading.Barrier(clients + 1)

    def run(number: int) -> None:
        try:
            gate.wait()
            work(number, latencies[number])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    gate.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    return elapsed, [x for each in latencies for x in each]


def in_process(url: str, root: Path, clients: int, messages: int, service_path: bool) -> Result:
    """The same appends without HTTP: the library's, or the service's own path."""
    config = Config(store=url, user="bench", browser_lease_ttl=3600.0)
    mgr = SessionManager(store=url, project_dir=root, config=config, observer=False)
    mine = UserSessions(mgr)
    if service_path:
        ids = [mine.start()["id"] for _ in range(clients)]
    else:
        live = [mgr.start(auto_save=False) for _ in range(clients)]

    def work(number: int, latencies: list[float]) -> None:
        for i in range(messages):
            began = time.perf_counter()
            if service_path:
                mine.message(ids[number], "user", f"message {i} from client {number}")
            else:
                live[number].add_message("user", f"message {i} from client {number}")
            latencies.append(time.perf_counter() - began)

    elapsed, latencies = _run_clients(clients, work)
    if not service_path:
        for session in live:
            session.end()
    mgr.close()
    name = "in-process UserSessions.message" if service_path else "in-process add_message"
    return Result(_label(url), name, clients, clients * messages, elapsed, latencies)


def _label(url: str) -> str:
    scheme = url.split(":")[0]
    return "postgres" if scheme.startswith("postgres") else scheme


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def over_http(url: str, root: Path, clients: int, messages: int, workers: int = 1) -> Result:
    """16 clients against one ``continuity serve`` (``workers`` processes), each its own session."""
    env = {
        **os.environ,
        "CONTINUITY_BROWSER_LEASE_TTL": "3600",
        "CONTINUITY_USER": "bench",
        "PYTHONUNBUFFERED": "1",
    }
    cli = [sys.executable, "-m", "agent_continuity.cli", "--store", url]
    added = subprocess.run(
        [*cli, "users", "add", "bench", "--json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    token = json.loads(added.stdout)["token"]
    port = _free_port()
    log = (root / "serve.log").open("wb")
    server = subprocess.Popen(
        [*cli, "serve", "--port", str(port), "--workers", str(workers)],
        cwd=root,
        env=env,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "/api/me", timeout=1)
                break
            except httpx.TransportError as exc:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(
                        "the server did not start: " + (root / "serve.log").read_text()
                    ) from exc
                time.sleep(0.05)
        headers = {"Authorization": f"Bearer {token}"}
        sessions = []
        with httpx.Client(base_url=base, headers=headers) as client:
            for _ in range(clients):
                sessions.append(client.post("/api/sessions", json={}).json()["id"])

        def work(number: int, latencies: list[float]) -> None:
            sid = sessions[number]
            with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                for i in range(messages):
                    body = {"role": "user", "text": f"message {i} from client {number}"}
                    began = time.perf_counter()
                    answer = client.post(f"/api/sessions/{sid}/messages", json=body)
                    latencies.append(time.perf_counter() - began)
                    if answer.status_code != 200:
                        raise SystemExit(f"the server answered {answer.status_code}: {answer.text}")

        elapsed, latencies = _run_clients(clients, work)
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    name = "HTTP POST /messages" + (f" ({workers} workers)" if workers > 1 else "")
    return Result(_label(url), name, clients, clients * messages, elapsed, latencies)


def main(argv: list[str] | None = None) -> None:
    """Run the three paths on each store and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--messages", type=int, default=200, help="per client")
    parser.add_argument(
        "--store", action="append", default=[], help="store URL (repeatable; default: SQLite)"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="also PostgreSQL, on a throwaway server the benchmark starts and stops",
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="continuity-load-"))
    server: Any = None
    try:
        rows = []
        stores = args.store or [f"sqlite:///{work / 'service.db'}"]
        if args.postgres:
            from agent_continuity.testing.postgres import PostgresServer

            server = PostgresServer(durable=True)
            stores.append(server.url())
        for number, url in enumerate(stores):
            shared = url.startswith(("postgresql:", "postgres:"))
            paths = ("library", "service", "http", "http-2") if shared else PATHS
            for path in paths:
                root = work / f"{number}-{path}"
                (root / ".git").mkdir(parents=True)
                # A fresh database per row, so that no row pays for another's sessions.
                if server is not None and url == server.url():
                    fresh = server.new_database(empty=True)
                else:
                    fresh = url.replace("service.db", f"{number}-{path}.db")
                if path.startswith("http"):
                    workers = 2 if path == "http-2" else 1
                    rows.append(over_http(fresh, root, args.clients, args.messages, workers))
                else:
                    rows.append(
                        in_process(fresh, root, args.clients, args.messages, path == "service")
                    )
        print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}")
        print("durable messages: each acknowledged only once it survives kill -9 (sync)\n")
        print(HEADER)
        for row in rows:
            print(row.line())
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
