"""Scenario 8: LangGraph's checkpointers, ours beside SqliteSaver, over 1,000 invokes.

    python benchmarks/langgraph_saver.py               # 1,000 invokes, prints the table
    python benchmarks/langgraph_saver.py --quick       # 30 invokes, targets not judged (CI)
    python benchmarks/langgraph_saver.py --turns 300 --window 50

The graph is scenario 1's: a one-node ``StateGraph(MessagesState)`` whose node
returns the assistant message (no model is called), invoked once per turn with
the user message on one thread, fed the conversation of ``workload.py``. Every
checkpointer gets the same text, the systems interleaved invoke by invoke in
rotating order, the disk flushed (``os.sync()``, untimed) before each one's
invoke. ``run.py`` runs the same as its scenario 8.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from contenders import INSTALL_HINT, EchoGraph, LangGraphSqlite, folder_bytes
from report import Row, duration, median, size, text_table
from workload import FULL, QUICK, Sizes, conversation, transcript_bytes


class LangGraphContinuity(EchoGraph):
    """The same graph checkpointed by ``ContinuitySaver`` over one of our stores."""

    ours = True

    def __init__(self, workdir: Path, url: str, stack: ExitStack) -> None:
        from agent_continuity.integrations.langgraph import ContinuitySaver

        workdir.mkdir(parents=True)
        self.workdir = workdir
        self.name = f"ContinuitySaver {url.split(':')[0]}"
        graph = self._echo_graph()
        self._stack = stack
        saver = stack.enter_context(
            ContinuitySaver.from_conn_string(
                url.replace("DIR", str(workdir)), project_dir=str(workdir), user_id="bench"
            )
        )
        self.app = graph.compile(checkpointer=saver)

    def disk_bytes(self) -> int:
        return folder_bytes(self.workdir)


class LangGraphMemory(EchoGraph):
    """The same graph checkpointed by LangGraph's ``InMemorySaver`` (nothing on disk)."""

    ours = False
    name = "LangGraph InMemorySaver"

    def __init__(self) -> None:
        from langgraph.checkpoint.memory import InMemorySaver

        self.app = self._echo_graph().compile(checkpointer=InMemorySaver())

    def disk_bytes(self) -> int | None:
        return None


def langgraph_checkpointers(sizes: Sizes, workdir: Path) -> tuple[list[Row], list[str]]:
    """Per-invoke time at the start and the end, and bytes on disk, for each checkpointer."""
    pairs = list(conversation(sizes.turns))
    raw = transcript_bytes(pairs)
    window = min(sizes.window, max(1, sizes.turns // 2))
    root = workdir / "langgraph-checkpointers"
    rows: list[Row] = []
    notes = [_NOTE.format(turns=sizes.turns, window=window)]
    with ExitStack() as stack:
        try:
            systems: list[Any] = [
                LangGraphContinuity(root / "ours-files", "files:DIR/store", stack),
                LangGraphContinuity(root / "ours-sqlite", "sqlite:///DIR/store.db", stack),
                LangGraphSqlite(root / "sqlitesaver"),
                LangGraphMemory(),
            ]
        except ImportError as exc:
            return [], [f"Scenario 8 not run: {exc.name} is not installed; {INSTALL_HINT}"]
        stack.callback(systems[2].close)
        times: dict[str, list[float]] = {s.name: [] for s in systems}
        for number, (user, assistant) in enumerate(pairs):
            shift = number % len(systems)
            for system in systems[shift:] + systems[:shift]:
                os.sync()  # untimed: SqliteSaver writes megabytes a turn near the end
                started = time.perf_counter()
                system.turn(user, assistant)
                times[system.name].append(time.perf_counter() - started)
        ends = {name: (median(t[:window]), median(t[-window:])) for name, t in times.items()}
    sizes_on_disk = {s.name: s.disk_bytes() for s in systems}  # after closing: WAL folded in
    peer = ends["LangGraph SqliteSaver"][1]
    first, last = f"invokes 1-{window:,}", f"invokes {sizes.turns - window + 1:,}-{sizes.turns:,}"
    for system in systems:
        start, end = ends[system.name]
        ratio = end / start if start else 0.0
        result = f"{duration(start)} → {duration(end)} (x{ratio:.2f})"
        if system.ours:
            result += f"; SqliteSaver ÷ this at the end = {peer / end:.1f}"
            target = "flat (≤ 1.2x) and below SqliteSaver at the end"
            met = _judge(sizes, ratio <= 1.2 and end < peer)
        elif isinstance(system, LangGraphMemory):
            target = "reference: in memory, not durable"
            met = None
        else:
            target, met = "", None
        rows.append(
            Row(8, f"median per invoke, {first} → {last}", system.name, result, target, met)
        )
    rows.append(
        Row(8, f"raw JSON-lines transcript, {sizes.turns:,} turns", "(reference)", size(raw))
    )
    for system in systems:
        stored = sizes_on_disk[system.name]
        if stored is None:
            continue
        result = f"{size(stored)} (x{stored / raw:.2f} raw)"
        if system.ours:
            result += (
                f"; SqliteSaver ÷ this = {sizes_on_disk['LangGraph SqliteSaver'] / stored:,.0f}"
            )
            target, met = "≤ 2x raw", _judge(sizes, stored <= 2 * raw)
        else:
            target, met = "", None
        rows.append(Row(8, "bytes on disk after the invokes", system.name, result, target, met))
    shutil.rmtree(root, ignore_errors=True)  # SqliteSaver's share is gigabytes
    return rows, notes


def _judge(sizes: Sizes, ok: bool) -> bool | None:
    return ok if sizes.thresholds else None


_NOTE = (
    "Scenario 8: {turns:,} invokes of scenario 1's one-node `StateGraph(MessagesState)` "
    "(the node returns the assistant message; no model is called) on one thread, "
    "checkpointed by `ContinuitySaver.from_conn_string(URL)` on each of our stores and by "
    "LangGraph's `SqliteSaver` (SQLite defaults: WAL, `synchronous=FULL`), interleaved invoke "
    "by invoke in rotating order, the disk flushed (`os.sync()`, untimed) before each invoke. "
    "An invoke is LangGraph's own work plus three checkpoints and two task writes, each "
    "durable when the saver returns. Medians of the first and last {window:,} invokes; bytes: "
    "every file each left after closing, against the raw JSON-lines transcript. Ours keeps "
    "each message once (a `message` journal event) and each checkpoint as what changed since "
    "the previous one; SqliteSaver writes the whole message list into every checkpoint. "
    "LangGraph's `InMemorySaver` (keeps every checkpoint in memory, not durable) is shown for "
    "reference. Part of every invoke's time is LangGraph's own and grows with the conversation "
    "whatever the checkpointer: its `add_messages` reducer merges the new messages into the "
    "whole list (benchmarks/README.md has the profile)."
)


def main() -> int:
    """Run scenario 8 on its own and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="30 invokes, targets not judged")
    parser.add_argument("--turns", type=int, help="invokes (default 1,000)")
    parser.add_argument("--window", type=int, help="invokes compared at each end (default 100)")
    parser.add_argument("--tmp", type=Path, help="where the temporary stores go")
    args = parser.parse_args()
    sizes = replace(QUICK, turns=30, window=10) if args.quick else FULL
    if args.turns:
        sizes = replace(sizes, turns=args.turns)
    if args.window:
        sizes = replace(sizes, window=args.window)
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        rows, notes = langgraph_checkpointers(sizes, Path(tmp))
    print(text_table(rows))
    print()
    print("\n".join(notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
