"""Encryption at rest: what it adds to a durable append and to recovery, on against off.

    python benchmarks/encryption.py               # 2,000 appends, a 2,000-event session
    python benchmarks/encryption.py --quick       # small sizes (CI)

For each store (files, SQLite), two stores side by side, one encrypted
(AES-256-GCM, the key in ``CONTINUITY_KEY``) and one not, fed the same text:

- append: ``add_message`` with ``durability="sync"``, in process, the two
  sessions taking turns (each goes first half the time), so a slow moment of
  the shared disk hurts both;
- recovery: a fresh ``SessionManager`` opening the store and loading the
  session (newest recovery point, then the journal after it), and a full read
  of the journal (every record checked, as ``verify`` and a replay from the
  start do), alternating encrypted and plain.

Target: encrypted / plain ≤ 1.3x for each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import conversation

from agent_continuity import SessionManager
from agent_continuity.config import Config
from agent_continuity.storage.envelope import KEY_ENV
from agent_continuity.testing.encrypted import encrypt_at

TARGET = 1.3
KINDS = ("files", "sqlite")


def _url(kind: str, root: Path) -> str:
    return f"files:{root / 'tracking'}" if kind == "files" else f"sqlite:///{root / 'c.db'}"


def _marker(kind: str, root: Path) -> Path:
    if kind == "files":
        return root / "tracking" / "encryption.json"
    return root / "c.db.encryption.json"


def _manager(url: str, project: Path) -> SessionManager:
    config = Config(durability="sync", redact=False)
    return SessionManager(url, project, "bench", config=config, observer=False)


def _stores(kind: str, tmp: Path) -> dict[bool, str]:
    """The URLs of a plain and an encrypted store of ``kind`` (its key put in the environment)."""
    urls = {}
    keys = []
    for encrypted in (False, True):
        root = tmp / f"{kind}-{'on' if encrypted else 'off'}"
        root.mkdir()
        if encrypted:
            keys.append(encrypt_at(_marker(kind, root)))
        urls[encrypted] = _url(kind, root)
    existing = os.environ.get(KEY_ENV, "")
    os.environ[KEY_ENV] = ",".join(filter(None, [existing, *keys]))
    return urls


def append_cost(kind: str, urls: dict[bool, str], texts: list[str], tmp: Path) -> tuple[str, ...]:
    """Median durable append, plain and encrypted; leaves each session for the recovery measure."""
    times: dict[bool, list[float]] = {False: [], True: []}
    with ExitStack() as stack:
        sessions = {}
        for encrypted, url in urls.items():
            mgr = stack.enter_context(_manager(url, tmp))
            sessions[encrypted] = stack.enter_context(mgr.start(auto_save=False))
            for text in texts[:20]:  # warm up: imports, first files
                sessions[encrypted].add_message("user", text)
        for i, text in enumerate(texts):
            for encrypted in (False, True) if i % 2 else (True, False):
                begin = time.perf_counter()
                sessions[encrypted].add_message("user", text)
                times[encrypted].append(time.perf_counter() - begin)
                if i % 100 == 99:
                    sessions[encrypted].checkpoint(observe=False)
    off, on = statistics.median(times[False]), statistics.median(times[True])
    return ("durable append (add_message, sync)", kind, _us(off), _us(on), f"x{on / off:.2f}")


def _timed(runs: int, work: dict[bool, Callable[[], object]]) -> dict[bool, float]:
    """Median of ``runs`` alternating runs of each side's work."""
    times: dict[bool, list[float]] = {False: [], True: []}
    for i in range(runs):
        for encrypted in (False, True) if i % 2 else (True, False):
            begin = time.perf_counter()
            work[encrypted]()
            times[encrypted].append(time.perf_counter() - begin)
    return {side: statistics.median(values) for side, values in times.items()}


def recovery_cost(kind: str, urls: dict[bool, str], runs: int, tmp: Path) -> list[tuple[str, ...]]:
    """Opening the store and loading the session; a full read of its journal."""

    def load(url: str) -> Callable[[], object]:
        def run() -> object:
            with _manager(url, tmp) as mgr:
                (record,) = mgr.store.list_sessions()
                return mgr.load(record.id)

        return run

    def read_all(url: str) -> Callable[[], object]:
        mgr = _manager(url, tmp)
        (record,) = mgr.store.list_sessions()

        def run() -> object:
            return mgr.store.read_events(record.id)

        return run

    size = len(_manager(urls[False], tmp).store.read_events(_only(urls[False], tmp)).events)
    rows = []
    for what, make in (
        ("open the store and load the session (point + tail)", load),
        (f"read the whole journal ({size:,} events, every record checked)", read_all),
    ):
        median = _timed(runs, {side: make(url) for side, url in urls.items()})
        off, on = median[False], median[True]
        rows.append((what, kind, _us(off), _us(on), f"x{on / off:.2f}"))
    return rows


def _only(url: str, tmp: Path) -> str:
    (record,) = _manager(url, tmp).store.list_sessions()
    return record.id


def _us(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.0f} µs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--tmp", type=Path, help="where the temporary stores go")
    args = parser.parse_args()
    appends, runs = (100, 5) if args.quick else (2000, 40)
    texts = [text for pair in conversation(appends) for text in pair][:appends]
    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory(dir=args.tmp) as name:
        tmp = Path(name)
        for kind in KINDS:
            urls = _stores(kind, tmp)
            rows.append(append_cost(kind, urls, texts, tmp))
            rows += recovery_cost(kind, urls, runs, tmp)
    print(f"| measure | store | plain | encrypted | ratio (target ≤ {TARGET}x) | met |")
    print("|---|---|---:|---:|---:|---|")
    for row in rows:
        ratio = float(row[-1][1:])
        print("| " + " | ".join(row) + f" | {'met' if ratio <= TARGET else '**MISSED**'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
