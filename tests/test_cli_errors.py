"""Errors name their stable code: on the line on stderr, and in JSON with --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_continuity import SessionManager
from agent_continuity.config import Config
from test_cli_recovery import cli as run


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    return root


def test_writing_to_a_session_a_live_process_owns_says_lease_held(repo: Path) -> None:
    with SessionManager(project_dir=repo, user_id="alice", config=Config(user="alice")) as mgr:
        owned = mgr.start(task="TASK-1", auto_save=False)  # this process owns it, alive
        try:
            said = run(repo, "message", "--session", owned.id, "--role", "user", "hi")
            assert said.returncode == 1 and said.stdout == ""
            (line,) = said.stderr.splitlines()
            assert line.startswith("continuity: error [lease-held]: ")
            assert owned.id in line

            as_json = run(repo, "message", "--session", owned.id, "--role", "user", "hi", "--json")
            assert as_json.returncode == 1
            error = json.loads(as_json.stdout)["error"]
            assert error["code"] == "lease-held"
            assert error["message"] == line.removeprefix("continuity: error [lease-held]: ")
            # The line on stderr is still there, for the person at the terminal.
            assert as_json.stderr.splitlines() == [line]
        finally:
            owned.end()


def test_a_json_error_is_the_one_object_on_stdout(repo: Path) -> None:
    assert run(repo, "start").returncode == 0  # a store, so the session is what is missing
    missing = run(repo, "show", "SESSION-241124-009", "--json")
    assert missing.returncode == 1
    assert json.loads(missing.stdout) == {
        "error": {
            "code": "session-not-found",
            "message": missing.stderr.strip().removeprefix(
                "continuity: error [session-not-found]: "
            ),
        }
    }
    assert missing.stdout.count("\n") == 1


def test_a_usage_mistake_has_a_code_too_even_before_json_is_parsed(repo: Path) -> None:
    # --json is read before the other options, so the missing --role is a JSON error.
    mistake = run(repo, "message", "--json", "hi")
    assert mistake.returncode == 1
    assert json.loads(mistake.stdout)["error"]["code"] == "usage"
    assert mistake.stderr.startswith("continuity: error [usage]: ")
    assert "--role" in mistake.stderr


def test_without_json_an_error_prints_nothing_on_stdout(repo: Path) -> None:
    assert run(repo, "start").returncode == 0
    missing = run(repo, "show", "SESSION-241124-009")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.startswith("continuity: error [session-not-found]: ")
