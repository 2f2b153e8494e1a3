"""What the everyday commands load: an agent pays their start-up on every turn.

Each test runs a command in a fresh interpreter through the entry point of the
installed ``continuity`` script and looks at the modules it imported. Wall
times are measured in benchmarks/ (scenario 6), never asserted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent_continuity import SessionManager

# Never needed to start, write to or list a session in the default files store:
# the recovery engine, project capture (git, file index, watcher), the process
# runner, the read-only views of `show` and `verify`, and the SQLite driver.
NOT_EVERYDAY = (
    "agent_continuity.recovery",
    "agent_continuity.restore",
    "agent_continuity.capture",
    "agent_continuity.autosave",
    "agent_continuity.runner",
    "agent_continuity.demo",
    "agent_continuity.inspection",
    "watchdog",
    "sqlite3",
)

PROBE = """
import json, sys
from agent_continuity.cli.main import main
report, argv = sys.argv[1], sys.argv[2:]
try:
    main(argv)
except SystemExit as exc:
    status = exc.code
with open(report, "w") as handle:
    json.dump({"status": status, "modules": sorted(sys.modules)}, handle)
"""


def run_probe(project: Path, *argv: str) -> tuple[str, set[str]]:
    """Run ``continuity ARGV`` in a fresh interpreter: its stdout and what it imported."""
    report = project.parent / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTINUITY_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(report), *argv],
        cwd=project,
        env={**env, "CONTINUITY_USER": "alice"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(report.read_text())
    assert outcome["status"] == 0, done.stderr
    return done.stdout, set(outcome["modules"])


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in NOT_EVERYDAY))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project whose default files store holds an ended, an interrupted and an active session."""
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    with SessionManager(project_dir=root, user_id="alice", observer=False) as mgr:
        ended = mgr.start(task="TASK-1", auto_save=False)
        ended.add_message("user", "first")
        ended.end()
        died = mgr.start(task="TASK-2", auto_save=False)
        died.add_message("user", "second")
        died.interrupt("terminal closed")
        mgr.start(task="TASK-3", owned_by_process=False)
    return root


def test_list_reads_the_registry_without_loading_recovery_or_capture(project: Path) -> None:
    stdout, modules = run_probe(project, "list", "--json")
    listed = json.loads(stdout)["sessions"]
    assert [(s["context"]["currentTask"], s["status"]) for s in listed] == [
        ("TASK-1", "completed"),
        ("TASK-2", "interrupted"),
        ("TASK-3", "active"),
    ]
    assert heavy(modules) == []


def pydantic_loaded(modules: set[str]) -> bool:
    return any(m == "pydantic" or m.startswith("pydantic.") for m in modules)


def test_list_json_on_the_files_store_loads_no_model(project: Path) -> None:
    # `list --json` reads the registry and the leases as plain documents
    # (agent_continuity.listing) when nothing needs marking interrupted.
    stdout, modules = run_probe(project, "list", "--json")
    assert len(json.loads(stdout)["sessions"]) == 3
    assert "agent_continuity.model" not in modules
    assert not pydantic_loaded(modules)
    filtered, modules = run_probe(
        project, "list", "--status", "active", "--user", "alice", "--json"
    )
    assert [s["context"]["currentTask"] for s in json.loads(filtered)["sessions"]] == ["TASK-3"]
    assert not pydantic_loaded(modules)


@pytest.mark.parametrize(
    "argv",
    [
        ["start", "--task", "TASK-4", "--json"],
        ["message", "--role", "user", "Add SMS reminders", "--json"],
        ["update", "--next", "test-sms", "--json"],
    ],
    ids=lambda argv: argv[0],
)
def test_writing_to_a_session_loads_neither_recovery_nor_capture(
    project: Path, argv: list[str]
) -> None:
    _, modules = run_probe(project, *argv)
    assert heavy(modules) == []


def test_help_loads_no_model(project: Path) -> None:
    helped, modules = run_probe(project, "--help")
    listed = {line.split()[0] for line in helped.split("Commands:")[1].splitlines() if line}
    assert {"start", "message", "list", "recover", "run"} <= listed
    assert not pydantic_loaded(modules)
    assert heavy(modules) == []
