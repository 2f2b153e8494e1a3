"""The benchmark script still runs: tiny sizes, every scenario reported, no timing asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _script(*args: str) -> str:
    """Run a script of benchmarks/ from the project root; its standard output."""
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_quick_benchmark_reports_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    table = _script("benchmarks/run.py", "--quick", "--out", str(out), "--tmp", str(tmp_path))
    markdown = out.read_text()
    for scenario, measure in [
        (1, "median per turn"),
        (2, "bytes on disk after scenario 1"),
        (3, "durable append (add_message, sync)"),
        (3, "batched appends"),
        (3, "one write per event reaching the kernel"),
        (3, "physical floor"),
        (4, "recover in process"),
        (4, "`continuity recover --json --yes` process"),
        (5, "git status --porcelain"),
        (6, "continuity --help"),
        (6, "continuity list --json"),
        (8, "median per invoke"),
        (8, "bytes on disk after the invokes"),
        (9, "durable append (add_message, sync)"),
        (9, "bytes in the server's tables after the turns"),
    ]:
        rows = [line for line in table.splitlines() if line.startswith(f"{scenario} ")]
        assert any(measure in line for line in rows), f"scenario {scenario}: no {measure!r} row"
        assert measure.replace("|", "\\|") in markdown
    for store in ("agent-continuity files", "agent-continuity sqlite"):
        assert store in table
    for saver in ("ContinuitySaver files", "ContinuitySaver sqlite", "LangGraph SqliteSaver"):
        assert saver in "".join(line for line in table.splitlines() if line.startswith("8 "))
    assert "## Machine" in markdown
    assert "quick sizes: targets not judged" in table
    # Nothing of the temporary stores or the generated repository is left behind.
    assert [p.name for p in tmp_path.iterdir()] == ["RESULTS.md"]


def _imports_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(done.stdout.split())


def test_help_does_not_import_pydantic() -> None:
    # Start-up time of every command: `--help` needs click and nothing of the model.
    loaded = _imports_after(
        "from click.testing import CliRunner\n"
        "from agent_continuity.cli.main import cli\n"
        "assert CliRunner().invoke(cli, ['--help']).exit_code == 0"
    )
    assert "pydantic" not in loaded


def test_observing_does_not_import_the_watcher() -> None:
    loaded = _imports_after("import agent_continuity.capture.observer")
    assert not any(name.startswith("watchdog") for name in loaded)


@pytest.mark.slow
@pytest.mark.parametrize("measure", ["turn", "batched"])
@pytest.mark.parametrize("store", ["files", "sqlite"])
def test_the_profiler_shows_where_a_measure_spends_its_time(measure: str, store: str) -> None:
    count = {"turn": "30", "batched": "1000"}[measure]
    # Enough operations for the sampler (every 0.1 ms) to land in each layer.
    tree = _script("benchmarks/profile.py", measure, store, "--count", count)
    # The call tree reaches from the live session down into the store it measured.
    assert "LiveSession.add_message" in tree
    store_class = {"files": "FileStore.append", "sqlite": "SqliteStore.append"}[store]
    assert store_class in tree
    if measure == "turn":
        assert "LiveSession.checkpoint" in tree
    assert f"on {store}: " in tree.splitlines()[-1]


@pytest.mark.slow
def test_the_profiler_shows_a_recovery() -> None:
    tree = _script("benchmarks/profile.py", "recover", "files", "--quick", "--count", "5")
    # The tree reaches from the recovery into the store (a small session's reads
    # are too quick to be sampled every time; its fsyncs are not).
    assert "SessionManager.recover" in tree
    assert "FileStore." in tree
    assert "5 mgr.recover runs" in tree.splitlines()[-1]


@pytest.mark.slow
def test_analytics_benchmark_builds_both_stores_and_times_the_command(tmp_path: Path) -> None:
    table = _script(
        "benchmarks/analytics.py",
        "--sessions",
        "60",
        "--files-sessions",
        "30",
        "--tmp",
        str(tmp_path),
    )
    rows = {line.split()[0]: line.split() for line in table.splitlines()[2:]}
    assert rows["sqlite"][1] == "60" and rows["files"][1] == "30"
    assert all(row[2].endswith("s") and row[3].endswith("s") for row in rows.values())
    assert "target < 2.0 s at 10,000" in table
    assert list(tmp_path.iterdir()) == []  # the stores are deleted


@pytest.mark.slow
def test_service_load_benchmark_prints_its_three_rows() -> None:
    table = _script("benchmarks/service_load.py", "--clients", "2", "--messages", "3", "--postgres")
    for path in (
        "in-process add_message",
        "in-process UserSessions.message",
        "HTTP POST /messages",
    ):
        assert any(path in line and line.startswith("| sqlite") for line in table.splitlines())
        assert any(path in line and line.startswith("| postgres") for line in table.splitlines())
    assert any(
        "HTTP POST /messages (2 workers)" in line and line.startswith("| postgres")
        for line in table.splitlines()
    )


def test_the_hooks_benchmark_prints_each_hook_beside_python() -> None:
    table = _script("benchmarks/hooks.py", "--runs", "2")
    for row in (
        "python -c pass",
        "hook UserPromptSubmit",
        "hook PreToolUse",
        "hook PostToolUse",
        "hook Stop",
        "hook SessionStart, injecting a recovery (killed mid tool call)",
        "hook SessionStart, injecting, full path",
        "continuity message",
    ):
        assert f"| {row}" in table, row


def test_encryption_benchmark_compares_both_stores_on_and_off(tmp_path: Path) -> None:
    table = _script("benchmarks/encryption.py", "--quick", "--tmp", str(tmp_path))
    rows = [line.split(" | ") for line in table.splitlines()[2:]]
    assert len(rows) == 6, table
    assert {row[1] for row in rows} == {"files", "sqlite"}
    assert all(row[4].startswith("x") for row in rows), table  # a ratio, encrypted / plain
    assert list(tmp_path.iterdir()) == []  # the stores are deleted


def test_search_benchmark_builds_every_store_and_times_the_queries(tmp_path: Path) -> None:
    table = _script(
        "benchmarks/search.py",
        "--sessions",
        "30",
        "--events",
        "10",
        "--rounds",
        "1",
        "--tmp",
        str(tmp_path),
    )
    rows = {line.split()[0]: line.split() for line in table.splitlines()[2:]}
    assert set(rows) == {"sqlite", "files", "postgres"}
    assert all(row[3].endswith("ms") and row[4].endswith("ms") for row in rows.values())
    assert "target < 100 ms per query" in table
    assert list(tmp_path.iterdir()) == []  # the stores are deleted


def test_prediction_benchmark_replays_a_history_against_the_baseline(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
            cwd=repo,
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    for n in range(16):
        for name in (f"mod{n % 3}.py", f"test_mod{n % 3}.py"):
            with (repo / name).open("a") as handle:
                handle.write(f"{n}\n")
        git("add", "-A")
        git("commit", "-q", "-m", f"step {n}")
    table = _script(
        "benchmarks/prediction.py", "--repo", str(repo), "--session-commits", "1", "--no-shipped"
    )
    # The first table (the per-method table follows a blank line).
    (row,) = [line.split() for line in table.split("\n\n")[0].splitlines()[2:]]
    assert row[0] == "repo" and row[3] == "16" and int(row[4]) > 0
    baseline, predicted = float(row[5]), float(row[6])
    assert 0 <= baseline <= 1 and 0 <= predicted <= 1
