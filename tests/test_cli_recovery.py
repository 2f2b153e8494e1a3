"""Recovery end to end through the command line: sessions saved in the past, then recovered now."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent_continuity import SessionManager
from agent_continuity.config import Config
from agent_continuity.model import EventKind
from cli_support import continuity as cli

CONTRACT_KEYS = {
    "status",
    "sessionId",
    "mode",
    "decision",
    "confidence",
    "contextSummary",
    "nextSteps",
    "warnings",
    "stateDiff",
    "validation",
    "steps",
    "prompt",
    "continuationId",
}
DIFF_KEYS = {
    "modifiedFiles",
    "addedFiles",
    "deletedFiles",
    "branchChanged",
    "savedBranch",
    "currentBranch",
    "newCommits",
}


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def recover_json(root: Path, *args: str, user: str = "alice") -> dict[str, object]:
    result = cli(root, "recover", *args, "--json", user=user)
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / ".gitignore").write_text("projectDocs/\n")
    for name in ("app.py", "README.md", "old.md"):
        (root / name).write_text(f"{name}\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    return root


def past_manager(root: Path, ago: timedelta, user: str = "alice") -> SessionManager:
    moment = datetime.now(UTC) - ago
    return SessionManager(
        project_dir=root, user_id=user, config=Config(user=user), clock=lambda: moment
    )


def interrupted_session(
    root: Path, ago: timedelta, *, user: str = "alice", files: tuple[str, ...] = ("app.py",)
) -> str:
    mgr = past_manager(root, ago, user)
    s = mgr.start(
        type="task-execution",
        task="TASK-6-004",
        phase="phase-6",
        owned_by_process=False,
        auto_save=False,
    )
    s.add_message("user", "Add SMS reminders")
    s.add_message("assistant", "Starting with the schema")
    s.decide("Twilio is the SMS provider")
    s.complete_step("database-schema-created")
    s.set_step("admin-interface-integration")
    s.next_step("test-sms-endpoints")
    for name in files:
        s.touch_file(name)
    s.interrupt("laptop slept")
    mgr.close()
    return s.id


def test_five_minutes_in_an_unchanged_project_resumes_automatically(repo: Path) -> None:
    session_id = interrupted_session(repo, timedelta(minutes=5))
    data = recover_json(repo)
    assert set(data) >= CONTRACT_KEYS
    assert data["sessionId"] == session_id
    assert (data["mode"], data["decision"], data["status"]) == ("quick", "auto-resume", "success")
    confidence = data["confidence"]
    assert isinstance(confidence, dict) and confidence["score"] >= 0.8
    assert set(confidence["factors"]) == {"elapsed", "completeness", "taskStatus", "coherence"}
    assert data["nextSteps"] == ["test-sms-endpoints"]
    assert str(data["continuationId"]).startswith("CONTINUATION-")
    listed = json.loads(cli(repo, "list", "--json").stdout)["sessions"]
    assert [(s["id"], s["status"]) for s in listed] == [(session_id, "active")]
    log = repo / "projectDocs/tracking/recovery/recovery-logs"
    entries = [json.loads(line) for f in log.iterdir() for line in f.read_text().splitlines()]
    (entry,) = [e for e in entries if e.get("event") == "recovery"]
    assert entry["decision"] == "auto-resume" and entry["outcome"] == "restored"
    assert entry["factors"]["elapsed"] > 0.99


def test_three_days_on_a_deleted_branch_with_files_gone_is_not_resumed(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature/sms")
    (repo / "sms.py").write_text("send = print\n")
    (repo / "sms_admin.py").write_text("admin = None\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "sms work")
    interrupted_session(repo, timedelta(days=3), files=("sms.py", "sms_admin.py"))
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "-D", "feature/sms")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    data = recover_json(repo)
    assert data["decision"] != "auto-resume"
    assert data["mode"] in ("full", "emergency")
    diff = data["stateDiff"]
    assert isinstance(diff, dict)
    assert (diff["branchChanged"], diff["savedBranch"], diff["currentBranch"]) == (
        True,
        "feature/sms",
        "main",
    )
    assert diff["missingActiveFiles"] == ["sms.py", "sms_admin.py"]
    checks = {c["name"]: c for c in data["validation"]}  # type: ignore[union-attr]
    assert checks["project-state-consistency"]["passed"] is False


def test_a_prompt_waits_for_an_answer_and_no_archives_and_starts_anew(repo: Path) -> None:
    old = interrupted_session(repo, timedelta(days=2))
    waiting = recover_json(repo)
    assert waiting["decision"] == "prompt"
    assert waiting["outcome"] == "awaiting-answer"
    assert json.loads(cli(repo, "list", "--json").stdout)["sessions"][0]["status"] == (
        "interrupted"
    )
    declined = recover_json(repo, old, "--no")
    new = declined["newSessionId"]
    assert declined["outcome"] == "new-session" and new and new != old
    statuses = {
        s["id"]: s["status"] for s in json.loads(cli(repo, "list", "--json").stdout)["sessions"]
    }
    assert statuses == {old: "archived", new: "active"}


def test_yes_resumes_a_prompt(repo: Path) -> None:
    old = interrupted_session(repo, timedelta(days=2))
    accepted = recover_json(repo, old, "--yes")
    assert (accepted["decision"], accepted["outcome"]) == ("prompt", "restored")
    assert json.loads(cli(repo, "show", old, "--json").stdout)["session"]["status"] == "active"


def test_state_diff_is_exact_after_edits_and_a_branch_switch(repo: Path) -> None:
    interrupted_session(repo, timedelta(minutes=5))
    (repo / "app.py").write_text("changed\n")
    (repo / "docs").mkdir()
    (repo / "docs" / "new.md").write_text("new\n")
    (repo / "b.md").write_text("new too\n")
    (repo / "old.md").unlink()
    git(repo, "checkout", "-q", "-b", "hotfix")
    data = recover_json(repo)
    diff = data["stateDiff"]
    assert isinstance(diff, dict) and set(diff) >= DIFF_KEYS
    assert diff["modifiedFiles"] == ["app.py"]
    assert diff["addedFiles"] == ["b.md", "docs/new.md"]
    assert diff["deletedFiles"] == ["old.md"]
    assert (diff["branchChanged"], diff["savedBranch"], diff["currentBranch"]) == (
        True,
        "main",
        "hotfix",
    )
    assert diff["newCommits"] == []
    steps = data["steps"]
    assert [(s["name"], s["output"]) for s in steps] == [  # type: ignore[union-attr]
        ("session-identification", "session-metadata"),
        ("context-loading", "context-snapshot"),
        ("state-synchronisation", "state-diff"),
        ("knowledge-update", "updated-knowledge-base"),
        ("continuation-plan", "continuation-plan"),
    ]


def test_a_dangling_tool_call_is_repaired_in_the_resumed_journal(repo: Path) -> None:
    mgr = past_manager(repo, timedelta(minutes=3))
    s = mgr.start(task="T-1", owned_by_process=False, auto_save=False)
    call = s.record_tool_call("run_tests", {"path": "tests"})
    s.interrupt("killed")
    data = recover_json(repo)
    assert any("run_tests" in w for w in data["warnings"])  # type: ignore[union-attr]
    events = SessionManager(project_dir=repo, user_id="alice").events(s.id)
    results = [e for e in events if e.kind is EventKind.TOOL_RESULT]
    assert [r.payload["callId"] for r in results] == [call]
    assert results[0].payload["synthetic"] is True


def test_recover_user_picks_that_users_latest_interrupted_session(repo: Path) -> None:
    interrupted_session(repo, timedelta(minutes=30), user="bob")
    bobs_newest = interrupted_session(repo, timedelta(minutes=10), user="bob")
    interrupted_session(repo, timedelta(minutes=5), user="carol")
    data = recover_json(repo, "--user", "bob", user="alice")
    assert data["sessionId"] == bobs_newest
    nothing = cli(repo, "recover", "--json", user="dave")
    assert nothing.returncode == 1 and "no interrupted session" in nothing.stderr


def test_start_recover_seeds_a_linked_session(repo: Path) -> None:
    old = interrupted_session(repo, timedelta(hours=2))
    result = cli(repo, "start", "--recover", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    session = data["session"]
    assert data["recoveredFrom"] == old and session["recoveredFrom"] == old
    assert session["context"]["currentTask"] == "TASK-6-004"
    assert session["state"]["nextSteps"] == ["test-sms-endpoints"]
    assert session["context"]["keyDecisions"] == ["Twilio is the SMS provider"]
    assert json.loads(cli(repo, "show", old, "--json").stdout)["session"]["status"] == ("archived")


def test_resume_summary_prompt_and_emergency(repo: Path) -> None:
    session_id = interrupted_session(repo, timedelta(minutes=5))
    resumed = json.loads(cli(repo, "resume", "TASK-6-004", "--json").stdout)
    assert set(resumed) >= {"taskContext", "currentStep", "progress", "nextActions"}
    assert resumed["currentStep"] == "admin-interface-integration"
    assert "test-sms-endpoints" in resumed["nextActions"]
    unknown = cli(repo, "resume", "TASK-404")
    assert unknown.returncode == 1 and "TASK-404" in unknown.stderr

    summary = json.loads(cli(repo, "summary", session_id, "--json").stdout)
    assert "TASK-6-004" in summary["contextSummary"] and "prompt" not in summary
    prompt = cli(repo, "prompt", session_id).stdout
    assert f"You are resuming work from {session_id}" in prompt
    assert "test-sms-endpoints" in prompt and "Twilio is the SMS provider" in prompt
    emergency = json.loads(cli(repo, "emergency", "--json").stdout)
    assert emergency["mode"] == "emergency"
    assert any(t["task"] == "TASK-6-004" for t in emergency["urgentTasks"])
    # Recovery by summary and prompt changed nothing.
    assert json.loads(cli(repo, "show", session_id, "--json").stdout)["session"]["status"] == (
        "interrupted"
    )


def test_a_custom_prompt_template_is_used(repo: Path) -> None:
    session_id = interrupted_session(repo, timedelta(minutes=5))
    (repo / "brief.md").write_text("Continue {CURRENT-TASK}; next: {NEXT-STEPS}. {UNKNOWN}\n")
    (repo / "continuity.toml").write_text('prompt-template = "brief.md"\n')
    prompt = cli(repo, "prompt", session_id).stdout
    assert prompt.startswith("Continue TASK-6-004")
    assert "test-sms-endpoints" in prompt and "{UNKNOWN}" in prompt


@pytest.fixture
def temp_listing() -> Iterator[set[str]]:
    yield set(os.listdir(tempfile.gettempdir()))


def test_the_demo_kills_a_session_and_recovers_it_quickly_leaving_nothing(
    tmp_path: Path, temp_listing: set[str]
) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "agent_continuity.cli", "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 15
    out = result.stdout
    assert "kill -9" in out and "lease-expired" in out
    assert "modified README.md" in out and "added docs/sms.md" in out
    assert "deleted notes/old-plan.md" in out
    assert "confidence" in out and "You are resuming work from SESSION-" in out
    left = {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("continuity-demo-")}
    assert left <= temp_listing
    assert list(tmp_path.iterdir()) == []


def _on_terminal(root: Path, *args: str, answer: bytes) -> str:
    """Run a command on a real pseudo-terminal, answer its question, return the screen."""
    import pty
    import select

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_continuity.cli", *args],
        cwd=root,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
        env={**os.environ, "CONTINUITY_USER": "alice", "COLUMNS": "120"},
    )
    os.close(slave)
    screen, answered = b"", False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        if not answered and b"resume your previous session?" in screen:
            os.write(master, answer)
            answered = True
        if proc.poll() is not None and not ready:
            break
    proc.wait(timeout=30)
    os.close(master)
    assert proc.returncode == 0, screen.decode(errors="replace")
    return screen.decode(errors="replace")


def test_on_a_terminal_a_prompt_decision_asks_the_user(repo: Path) -> None:
    old = interrupted_session(repo, timedelta(days=2))
    screen = _on_terminal(repo, "recover", answer=b"y\n")
    assert "Would you like to resume your previous session?" in screen
    assert "recovering" in screen  # the progress bar
    assert "Session resumed" in screen
    assert json.loads(cli(repo, "show", old, "--json").stdout)["session"]["status"] == "active"


def test_on_a_terminal_answering_no_starts_a_new_session(repo: Path) -> None:
    old = interrupted_session(repo, timedelta(days=2))
    screen = _on_terminal(repo, "recover", answer=b"n\n")
    assert "Old session archived; started SESSION-" in screen
    assert json.loads(cli(repo, "show", old, "--json").stdout)["session"]["status"] == ("archived")
