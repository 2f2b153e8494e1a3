"""Benchmarks of agent-continuity against the persistence layers its users would pick instead.

Run ``make bench`` (installs the peers from PyPI, then runs this script), or::

    python benchmarks/run.py            # full sizes, writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick    # tiny sizes, targets not judged (the CI smoke run)

It prints one table, every scenario's rows with their target and whether it
was met, and writes the same table with the machine and date as Markdown.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from growth import storage_growth
from langgraph_saver import langgraph_checkpointers
from postgres import postgres_rows
from report import Report, Row, markdown, summary, text_table
from scenarios import (
    append_latency,
    change_detection,
    per_turn_and_storage,
    recovery_time,
    start_up,
)
from workload import FULL, QUICK, Sizes

HERE = Path(__file__).resolve().parent
Scenario = Callable[[Sizes, Path], tuple[list[Row], list[str]]]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, no targets judged (CI smoke run)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the Markdown (default: benchmarks/RESULTS.md; none with --quick)",
    )
    parser.add_argument(
        "--only",
        default="1,2,3,4,5,6,7,8,9",
        help="comma-separated scenarios to run (2 needs 1), e.g. --only 3,4",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SIZE=N",
        help="override one size, e.g. --set turns=300 --set window=50 (see workload.Sizes)",
    )
    parser.add_argument(
        "--tmp",
        type=Path,
        default=None,
        help="folder for the temporary stores and repository (default: the system's)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen scenarios, print the table, write the Markdown."""
    args = _parse(argv)
    sizes = QUICK if args.quick else FULL
    if args.overrides:
        changes = {key: int(value) for key, value in (o.split("=", 1) for o in args.overrides)}
        sizes = replace(sizes, **changes)
    wanted = {int(part) for part in args.only.split(",") if part.strip()}
    out = args.out if args.out is not None else (None if args.quick else HERE / "RESULTS.md")
    report = Report(quick=args.quick, load_before=os.getloadavg())
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="continuity-bench-", dir=args.tmp))
    try:
        if wanted & {1, 2}:
            _progress("1-2 per-turn cost and storage")
            turns, storage, notes = per_turn_and_storage(sizes, workdir)
            report.add([*(turns if 1 in wanted else []), *(storage if 2 in wanted else [])])
            report.notes += notes
        steps: list[tuple[int, str, Scenario]] = [
            (3, "durable append latency", append_latency),
            (4, "recovery time", recovery_time),
            (5, "change detection", change_detection),
            (6, "command start-up", start_up),
            (7, "storage growth", storage_growth),
            (8, "LangGraph checkpointers", langgraph_checkpointers),
            (9, "PostgreSQL (a throwaway server of its own)", postgres_rows),
        ]
        for number, title, scenario in steps:
            if number in wanted:
                _progress(f"{number} {title}")
                rows, notes = scenario(sizes, workdir)
                report.add(rows)
                report.notes += notes
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    report.load_after = os.getloadavg()
    print(text_table(report.rows))
    print()
    print(summary(report.rows) if sizes.thresholds else "quick sizes: targets not judged")
    if out is not None:
        command = "python benchmarks/run.py" + (" --quick" if args.quick else "")
        out.write_text(markdown(report, Path(args.tmp or tempfile.gettempdir()), command))
        print(f"wrote {out}")
    return 0


def _progress(text: str) -> None:
    # Flush what earlier scenarios wrote or deleted (gigabytes, for LangGraph), so
    # their write-back does not land in the next scenario's timings.
    os.sync()
    print(f"[{time.strftime('%H:%M:%S')}] scenario {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
