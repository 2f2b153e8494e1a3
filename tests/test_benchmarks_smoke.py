"""The benchmark script still runs: tiny sizes, every scenario reported, no timing asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_quick_benchmark_reports_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--out", str(out), "--tmp", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout
    markdown = out.read_text()
    for scenario, measure in [
        (1, "median per turn"),
        (2, "bytes on disk after scenario 1"),
        (3, "durable append (add_message, sync)"),
        (3, "batched appends"),
        (3, "physical floor"),
        (4, "recover in process"),
        (4, "`continuity recover --json --yes` process"),
        (5, "git status --porcelain"),
        (6, "continuity --help"),
        (6, "continuity list --json"),
    ]:
        rows = [line for line in table.splitlines() if line.startswith(f"{scenario} ")]
        assert any(measure in line for line in rows), f"scenario {scenario}: no {measure!r} row"
        assert measure.replace("|", "\\|") in markdown
    for store in ("agent-continuity files", "agent-continuity sqlite"):
        assert store in table
    assert "## Machine" in markdown
    assert "quick sizes: targets not judged" in table
    # Nothing of the temporary stores or the generated repository is left behind.
    assert [p.name for p in tmp_path.iterdir()] == ["RESULTS.md"]
