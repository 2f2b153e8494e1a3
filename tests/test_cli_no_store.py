"""Reading never creates a store: read-only commands in a folder without one.

`cd / && continuity list` used to leave `/projectDocs/tracking` behind, and
opening a SQLite URL created the database file. Each command runs as a user
runs it, in an empty folder that is not a git repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

READ_ONLY = [
    ("show", "SESSION-261206-001"),
    ("recover",),
    ("recover", "SESSION-261206-001", "--json"),
    ("summary",),
    ("prompt",),
    ("emergency",),
    ("verify",),
    ("verify", "--repair"),
    ("resume", "TASK-1"),
]

# None: the default store (files:projectDocs/tracking under the current folder).
STORES = [None, "files:tracking", "sqlite:///sessions.db", "sqlite:///sub/sessions.db"]


def run(cwd: Path, store: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTINUITY_")}
    env["CONTINUITY_USER"] = "alice"
    store_args = ["--store", store] if store is not None else []
    return subprocess.run(
        [sys.executable, "-m", "agent_continuity.cli", *store_args, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    folder = tmp_path / "nothing-here"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_a_read_only_command_creates_nothing_and_says_there_is_no_store(
    empty: Path, store: str | None, args: tuple[str, ...]
) -> None:
    result = run(empty, store, *args)

    assert list(empty.iterdir()) == []
    assert result.returncode == 1
    assert "no store" in result.stderr and "continuity start" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("store", STORES)
def test_list_without_a_store_lists_nothing_and_creates_nothing(
    empty: Path, store: str | None
) -> None:
    as_json = run(empty, store, "list", "--json")
    as_text = run(empty, store, "list")

    assert list(empty.iterdir()) == []
    assert as_json.returncode == 0 and json.loads(as_json.stdout) == {"sessions": []}
    assert as_text.returncode == 0 and "no store" in as_text.stdout


@pytest.mark.parametrize("store", STORES)
def test_a_writing_command_creates_the_store_and_reads_then_find_it(
    empty: Path, store: str | None
) -> None:
    started = run(empty, store, "start", "--task", "TASK-1", "--json")
    assert started.returncode == 0, started.stderr
    session_id = json.loads(started.stdout)["sessionId"]

    listed = run(empty, store, "list", "--json")
    assert [s["id"] for s in json.loads(listed.stdout)["sessions"]] == [session_id]
    assert run(empty, store, "verify").returncode == 0
