"""``continuity analytics --json`` over a store of 10,000 sessions: how long it takes.

Builds a files store and a SQLite store of N sessions (default 10,000) spread
over 90 days, through the public store API: each session is created with two
messages, 30% die (a cause from the usual mix, an ``interruption`` line in the
recovery log) and two in three of those are recovered (a ``recovery`` line),
the rest complete or stay active. Then it times the command as a user runs it
(a fresh process, median of three) and prints one table::

    python benchmarks/analytics.py                 # 10,000 sessions
    python benchmarks/analytics.py --sessions 500  # smaller (the smoke test)

Build time is reported apart: it is the cost of the fixture, not of analytics.
The files store is built smaller (``--files-sessions``, default 2,000): it
rewrites its whole registry document on every session it creates, so building
it through the API grows with the square of its size (1,000 sessions: 30 s;
10,000 would take the better part of an hour).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent_continuity.model import (
    Interruption,
    SessionRecord,
    SessionStatus,
    format_time,
)
from agent_continuity.storage import open_store
from agent_continuity.storage.base import LeaseRequest

#: What the command must take at 10,000 sessions (a fresh process, start-up included).
TARGET_SECONDS = 2.0
CAUSES = (
    "lease-expired",
    "signal: SIGTERM",
    "exception: RuntimeError: tool failed",
    "heartbeat-lost",
    "exit status 1",
)
DECISIONS = (("auto-resume", "restored"), ("prompt", "restored"), ("new-session", "new-session"))


def build(url: str, sessions: int, seed: int = 7) -> None:
    """Write ``sessions`` sessions and their recovery log into the store at ``url``.

    One ``create_session`` per session, its final status already in the draft:
    the files store rewrites its whole registry on each registry write, so a
    second write per session would double the build (see the module notes).
    """
    rng = random.Random(seed)
    # Batched: the fixture needs no fsync per write (it is rebuilt if power fails).
    store = open_store(url, durability="batched", create=True)
    end = datetime(2026, 12, 6, tzinfo=UTC)
    try:
        for n in range(sessions):
            created = end - timedelta(days=90 * (sessions - n) / sessions)
            user = f"user{n % 5}"
            died = created + timedelta(minutes=rng.randint(5, 120))
            roll = rng.random()
            status, interruption, cause = SessionStatus.ACTIVE, None, ""
            if roll < 0.3:
                cause = rng.choice(CAUSES)
                status, interruption = SessionStatus.INTERRUPTED, Interruption(cause=cause, at=died)
            elif roll < 0.9:
                status = SessionStatus.COMPLETED
            recovery: tuple[str, str] | None = None
            if roll < 0.2:
                recovery = rng.choice(DECISIONS)
                restored = recovery[1] == "restored"
                status = SessionStatus.ACTIVE if restored else SessionStatus.ARCHIVED
            draft = SessionRecord(
                id="SESSION-000101-001",
                created=created,
                last_activity=died if status is not SessionStatus.ACTIVE else created,
                user_id=user,
                project_dir="/bench",
                status=status,
                interruption=interruption,
            )
            request = LeaseRequest("bench@host", None, "host", timedelta(minutes=5), created)
            record, _lease = store.create_session(draft, request)
            if cause:
                store.log_recovery(
                    {
                        "event": "interruption",
                        "at": format_time(died),
                        "sessionId": record.id,
                        "userId": user,
                        "cause": cause,
                        "lastAlive": format_time(died),
                        "lastSeq": record.last_seq,
                    }
                )
            if recovery is not None:
                back = died + timedelta(seconds=rng.randint(30, 7200))
                store.log_recovery(
                    {
                        "event": "recovery",
                        "at": format_time(back),
                        "sessionId": record.id,
                        "userId": user,
                        "decision": recovery[0],
                        "outcome": recovery[1],
                        "score": round(rng.uniform(0.3, 1.0), 3),
                    }
                )
    finally:
        store.close()


def timed_command(url: str, folder: Path, runs: int = 3) -> tuple[float, dict[str, object]]:
    """The median wall time of ``continuity analytics --json`` (a fresh process each run)."""
    import json

    times: list[float] = []
    data: dict[str, object] = {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTINUITY_")}
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "agent_continuity.cli", "--store", url, "analytics", "--json"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(time.perf_counter() - started)
        data = json.loads(done.stdout)
    return statistics.median(times), data


def main() -> None:
    """Build the stores, time the command, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000, help="SQLite store size")
    parser.add_argument(
        "--files-sessions",
        type=int,
        default=2_000,
        help="files store size: building it through the API is quadratic (see the docstring)",
    )
    parser.add_argument("--tmp", default=None, help="where to build the stores (deleted after)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="continuity-analytics-", dir=args.tmp))
    rows = []
    try:
        for name, url, size in (
            ("sqlite", f"sqlite:///{folder / 's.db'}", args.sessions),
            ("files", f"files:{folder / 'tracking'}", args.files_sessions),
        ):
            started = time.perf_counter()
            build(url, size)
            built = time.perf_counter() - started
            seconds, data = timed_command(url, folder)
            sessions = data["sessions"]
            assert isinstance(sessions, dict) and sessions["total"] == size, sessions
            rows.append((name, size, built, seconds))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"continuity analytics --json (target < {TARGET_SECONDS:.1f} s at 10,000 sessions; "
        "a fresh process, start-up included, median of 3)"
    )
    print(f"{'store':<8}  {'sessions':>8}  {'build':>9}  {'analytics --json':>16}  {'target':>6}")
    for name, size, built, seconds in rows:
        verdict = ("met" if seconds < TARGET_SECONDS else "MISSED") if size >= 10_000 else "-"
        print(f"{name:<8}  {size:>8,}  {built:>8.1f}s  {seconds:>15.2f}s  {verdict:>6}")


if __name__ == "__main__":
    main()
