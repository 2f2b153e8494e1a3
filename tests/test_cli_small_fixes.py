"""The smaller wrong answers of issue 11, item 7, each through the command line."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from agent_continuity import SessionManager
from agent_continuity.config import Config
from cli_support import git_project
from test_cli_recovery import _on_terminal, cli, interrupted_session


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return git_project(tmp_path / "repo")


def recovery_log(root: Path) -> list[dict[str, object]]:
    with SessionManager(project_dir=root, config=Config(user="alice"), observer=False) as mgr:
        return [e for e in mgr.store.read_recovery_log() if e.get("event") == "recovery"]


@pytest.mark.parametrize(("typed", "answer"), [(b"y\n", True), (b"n\n", False)])
def test_the_answer_given_on_the_terminal_is_logged(
    project: Path, typed: bytes, answer: bool
) -> None:
    old = interrupted_session(project, timedelta(days=2))  # a "prompt" decision
    screen = _on_terminal(project, "recover", answer=typed)
    assert "Would you like to resume your previous session?" in screen
    (entry,) = recovery_log(project)
    assert entry["sessionId"] == old and entry["decision"] == "prompt"
    assert entry["answer"] is answer


def test_the_summary_is_printed_once_around_the_question(project: Path) -> None:
    interrupted_session(project, timedelta(days=2))
    screen = _on_terminal(project, "recover", answer=b"y\n")
    before, question, after = screen.partition("Would you like to resume your previous session?")
    assert question
    assert len(re.findall(r"confidence \d\.\d\d ->", screen)) == 1
    assert screen.count("checks passed") == 1
    assert "confidence" in before and "confidence" not in after
    # After the answer: what happened, and the prompt for the next agent.
    assert "Session resumed" in after and "You are resuming work from SESSION-" in after


def test_start_recover_refuses_a_session_that_is_still_active(project: Path) -> None:
    started = cli(project, "start", "--task", "TASK-7", "--json")
    assert started.returncode == 0, started.stderr
    active = json.loads(started.stdout)["sessionId"]

    refused = cli(project, "start", "--recover", active)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("continuity: error [session-still-active]: ")
    assert f"continuity end --session {active}" in refused.stderr
    listed = json.loads(cli(project, "list", "--json").stdout)["sessions"]
    assert [(s["id"], s["status"]) for s in listed] == [(active, "active")]  # nothing copied

    assert cli(project, "interrupt", "--cause", "switching machines").returncode == 0
    seeded = cli(project, "start", "--recover", active, "--json")
    assert seeded.returncode == 0, seeded.stderr
    assert json.loads(seeded.stdout)["recoveredFrom"] == active


def test_emergency_prints_lists_for_people(project: Path) -> None:
    interrupted_session(project, timedelta(hours=1))
    shown = cli(project, "emergency")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "['" not in out and "[]" not in out and "lastDecisions" not in out
    assert "last decisions:\n  - Twilio is the SMS provider\n" in out
    assert "next steps:\n  - test-sms-endpoints\n" in out
    assert "  - TASK-6-004 in SESSION-" in out and "step admin-interface-integration" in out


def test_list_user_help_says_what_it_does_and_list_shows_every_user_without_it(
    project: Path,
) -> None:
    helped = cli(project, "list", "--help").stdout
    assert "Only this user's sessions (default: every user's)" in " ".join(helped.split())
    assert "CONTINUITY_USER" not in helped.split("--user", 1)[1].split("--store")[0]
    for user in ("alice", "bob"):
        assert cli(project, "start", "--task", f"TASK-{user}", user=user).returncode == 0
    everyone = json.loads(cli(project, "list", "--json", user="alice").stdout)["sessions"]
    assert sorted(s["userId"] for s in everyone) == ["alice", "bob"]
    bobs = json.loads(cli(project, "list", "--user", "bob", "--json", user="alice").stdout)
    assert [s["userId"] for s in bobs["sessions"]] == ["bob"]


@pytest.mark.parametrize(
    "argv", [("list",), ("list", "--json"), ("start",), ("show", "SESSION-261206-001")]
)
def test_a_bad_recovery_setting_stops_every_command_naming_the_key(
    project: Path, argv: tuple[str, ...]
) -> None:
    (project / "pyproject.toml").write_text(
        "[tool.continuity.recovery]\nauto-resume-threshold = 1.5\n"
    )
    failed = cli(project, *argv)
    assert failed.returncode == 1
    (line,) = failed.stderr.splitlines()
    assert line.startswith("continuity: error [config-error]: ")
    assert "pyproject.toml" in line and "auto-resume-threshold = 1.5" in line
    assert not (project / "projectDocs").exists()  # stopped before touching the store
