"""The results table: rows, formatting, the machine it ran on, and RESULTS.md."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

SCENARIOS = {
    1: "Per-turn cost as history grows",
    2: "Storage after scenario 1",
    3: "Durable append latency",
    4: "Recovery time",
    5: "Change detection",
    6: "Command start-up",
    7: "Storage with a point every turn",
    8: "LangGraph checkpointers",
    9: "PostgreSQL: append, per-turn cost, storage",
}


@dataclass
class Row:
    """One line of the table.

    ``met`` is True or False where a target applies and was judged, None
    where there is no target for this row or the run does not judge targets.
    """

    scenario: int
    measure: str
    system: str
    result: str
    target: str = ""
    met: bool | None = None

    @property
    def verdict(self) -> str:
        """``met``, ``missed`` or a dash."""
        return {True: "met", False: "MISSED", None: "-"}[self.met]


@dataclass
class Report:
    """Everything one run found."""

    quick: bool
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    seconds: float = 0.0

    def add(self, rows: Sequence[Row]) -> None:
        """Append rows."""
        self.rows.extend(rows)


# -- numbers --------------------------------------------------------------


def duration(seconds: float) -> str:
    """``0.84 ms``, ``12.3 ms``, ``1.52 s``."""
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 0.01:
        return f"{seconds * 1e3:.2f} ms"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def size(count: int) -> str:
    """``512 B``, ``1.2 KiB``, ``3.4 MiB``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def median(values: Sequence[float]) -> float:
    """The median (0 for no values)."""
    return statistics.median(values) if values else 0.0


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile, e.g. ``fraction=0.99`` for p99."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, round(fraction * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


# -- the machine ------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return size(int(line.split()[1]) * 1024)
    except (OSError, ValueError):
        pass
    return "unknown"


def _filesystem(path: Path) -> str:
    """The mount holding ``path``: device, type and options, from /proc/mounts."""
    best = ("", "unknown", "", "")
    try:
        resolved = str(path.resolve())
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, kind, options = line.split()[:4]
            inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) >= len(best[0]):
                best = (mount, kind, device, options)
    except (OSError, ValueError):
        pass
    mount, kind, device, options = best
    return f"{kind} on {device} mounted at {mount or '?'} ({options})"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine(workdir: Path) -> list[str]:
    """Lines describing the machine, the software and the disk the run used."""
    peers = ", ".join(
        f"{name} {_version(name)}"
        for name in ("langgraph", "langgraph-checkpoint-sqlite", "openai-agents")
    )
    return [
        f"CPU: {_cpu_model()}, {os.cpu_count()} logical cores; memory {_memory()}",
        f"OS: {platform.platform()}",
        f"Disk (temporary folders): {_filesystem(workdir)}",
        f"Python {platform.python_version()} ({sys.executable}); SQLite {sqlite3.sqlite_version}",
        f"agent-continuity {_version('agent-continuity')}; peers: {peers}",
    ]


# -- output -----------------------------------------------------------------

_HEADERS = ("#", "measure", "system", "result", "target", "met")


def _cells(row: Row) -> tuple[str, ...]:
    return (str(row.scenario), row.measure, row.system, row.result, row.target, row.verdict)


def text_table(rows: Sequence[Row]) -> str:
    """The table for a terminal: aligned columns."""
    cells = [_HEADERS, *(_cells(r) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(_HEADERS))]
    lines = []
    for number, line in enumerate(cells):
        lines.append("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: Sequence[Row]) -> str:
    """The table as GitHub Markdown."""
    lines = ["| " + " | ".join(_HEADERS) + " |", "|" + "---|" * len(_HEADERS)]
    for row in rows:
        cells = [c.replace("|", "\\|") for c in _cells(row)]
        if row.met is False:
            cells[-1] = "**MISSED**"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(rows: Sequence[Row]) -> str:
    """``N of M targets met``, naming the missed ones."""
    judged = [r for r in rows if r.met is not None]
    missed = [r for r in judged if r.met is False]
    text = f"{len(judged) - len(missed)} of {len(judged)} targets met"
    if missed:
        text += "; missed: " + "; ".join(f"{r.scenario}. {r.measure} ({r.system})" for r in missed)
    return text


def markdown(report: Report, workdir: Path, command: str) -> str:
    """The whole RESULTS.md."""
    load = " / ".join(
        f"{a:.2f}, {b:.2f}, {c:.2f}" for a, b, c in (report.load_before, report.load_after)
    )
    parts = [
        "# Benchmark results",
        "",
        f"Generated by `{command}` on {report.started:%Y-%m-%d %H:%M} UTC "
        f"in {report.seconds:.0f} s"
        + (" (quick sizes, targets not judged)." if report.quick else "."),
        "",
        "## Machine",
        "",
        *(f"- {line}" for line in machine(workdir)),
        f"- Load average (1, 5, 15 min) before / after: {load}. The machine is shared; "
        "other work running at the same time slows disk syncs and CPU alike, so absolute "
        "figures move between runs. Every comparison below is made inside one run, with "
        "the systems interleaved turn by turn, so they share the same conditions; the "
        "disk is flushed (`os.sync()`) before each scenario (and in scenario 1 before each "
        "system's turn) so that one's write-back does not land in another's timings.",
        "",
        "## Results",
        "",
        markdown_table(report.rows),
        "",
        f"**{summary(report.rows)}.**",
        "",
        "## How each figure is made",
        "",
        *(f"- {note}" for note in report.notes),
        "",
    ]
    return "\n".join(parts)
