"""``ContinuitySession`` beside the OpenAI Agents SDK's own ``SQLiteSession``, in one run.

Each turn is what ``Runner.run`` does with a session: read the history
(``get_items``), then save the turn (``add_items`` for the user's message, then
for the assistant's). The same generated conversation (benchmarks/workload.py)
feeds every system, interleaved turn by turn in rotating order, the disk
flushed (untimed) before each one's turn. Prints one table::

    python benchmarks/openai_session.py               # 1,000 turns
    python benchmarks/openai_session.py --turns 50    # the smoke test's size

Targets (ours): saving a turn stays flat (last hundred ≤ 1.2x the first) and
the store holds ≤ 2x the raw JSON-lines transcript. Reading the history grows
with it for every system (it returns all of it); the table shows the ratio to
``SQLiteSession`` at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from contenders import folder_bytes
from report import duration, median, size
from workload import conversation, transcript_bytes


class _System:
    def __init__(self, name: str, session: Any, folder: Path, close: Any) -> None:
        self.name, self.session, self.folder, self._close = name, session, folder, close
        self.save: list[float] = []
        self.read: list[float] = []

    def turn(self, loop: asyncio.AbstractEventLoop, user: str, assistant: str) -> None:
        run = loop.run_until_complete
        started = time.perf_counter()
        run(self.session.get_items())
        middle = time.perf_counter()
        run(self.session.add_items([{"role": "user", "content": user}]))
        run(self.session.add_items([{"role": "assistant", "content": assistant}]))
        self.read.append(middle - started)
        self.save.append(time.perf_counter() - middle)

    def close(self) -> None:
        self._close()


def _systems(workdir: Path) -> list[_System]:
    from agents import SQLiteSession

    from agent_continuity.integrations.openai_agents import ContinuitySession

    made = []
    for kind, url in (("files", "files:store"), ("sqlite", "sqlite:///store.db")):
        folder = workdir / kind
        # The project root (where a relative store lives) is the nearest .git.
        (folder / ".git").mkdir(parents=True)
        ours = ContinuitySession("bench", store=url, project_dir=str(folder))
        made.append(_System(f"ContinuitySession {kind}", ours, folder, ours.close))
    folder = workdir / "openai"
    folder.mkdir()
    theirs = SQLiteSession("bench", str(folder / "openai-agents.db"))
    made.append(_System("OpenAI SQLiteSession", theirs, folder, theirs.close))
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=1_000)
    parser.add_argument("--window", type=int, default=100, help="turns compared at each end")
    args = parser.parse_args()
    window = min(args.window, max(1, args.turns // 2))
    pairs = list(conversation(args.turns))
    workdir = Path(tempfile.mkdtemp(prefix="continuity-openai-bench-"))
    loop = asyncio.new_event_loop()
    try:
        systems = _systems(workdir)
        for number, (user, assistant) in enumerate(pairs):
            shift = number % len(systems)
            for system in systems[shift:] + systems[:shift]:
                os.sync()
                system.turn(loop, user, assistant)
            if number % 100 == 99:
                print(f"  {number + 1:,} turns", file=sys.stderr, flush=True)
        for system in systems:
            system.close()
        raw = transcript_bytes(pairs)
        reference = systems[-1]
        print(f"{args.turns:,} turns; raw transcript {size(raw)}; first/last {window} turns\n")
        header = ("system", "save a turn", "read history (end)", "vs SQLiteSession", "bytes")
        lines = [header]
        for s in systems:
            early, late = median(s.save[:window]), median(s.save[-window:])
            read_late = median(s.read[-window:])
            ratio = read_late / median(reference.read[-window:])
            stored = folder_bytes(s.folder)
            lines.append(
                (
                    s.name,
                    f"{duration(early)} → {duration(late)} (x{late / early:.2f})",
                    duration(read_late),
                    f"read x{ratio:.2f}, save x{late / median(reference.save[-window:]):.2f}",
                    f"{size(stored)} (x{stored / raw:.2f} raw)",
                )
            )
        widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
        for row in lines:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        print("\ntargets (ours): save flat (x ≤ 1.20); bytes ≤ 2x raw")
    finally:
        loop.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
