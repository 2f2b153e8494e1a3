"""The hooks in the real Claude Code, offline: what a run records, and a kill -9's recovery.

Each test drives the ``claude`` binary bundled in ``claude-agent-sdk`` against
the fake Messages API (tests/coding_agents/), with the hooks installed by
``continuity hooks install claude`` in a fresh project.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from agent_continuity import SessionManager
from agent_continuity.hooks.ingest import take_lock
from agent_continuity.hooks.prepared import quick_prompt
from coding_agents.claude_code import kill_hard, wait_for, wait_until_ingested
from coding_agents.fake_anthropic import request_text
from coding_agents.fixtures import ClaudeProject


def _drained(project: ClaudeProject) -> None:
    """Wait until the detached ingesters wrote the spool (a command would ingest it anyway)."""
    wait_until_ingested(project.state)


def _lock_free(root: Path) -> bool:
    fd = take_lock(root, 0.0)
    if fd is not None:
        os.close(fd)
    return fd is not None


def _spooled(project: ClaudeProject, event: str) -> bool:
    return any(f'"{event}"' in p.read_text() for p in (project.state / "spool").rglob("*.jsonl"))


def _sessions(project: ClaudeProject) -> list[dict[str, Any]]:
    listed = project.continuity("list", "--json")
    assert listed.returncode == 0, listed.stderr
    sessions: list[dict[str, Any]] = json.loads(listed.stdout)["sessions"]
    return sessions


def _events(project: ClaudeProject, session_id: str) -> list[tuple[str, dict[str, Any]]]:
    with SessionManager(project_dir=project.root) as mgr:
        return [(e.kind.value, e.payload) for e in mgr.events(session_id)]


def test_a_real_run_records_the_prompt_the_tool_call_its_result_and_the_reply(
    claude_project: ClaudeProject,
) -> None:
    out = claude_project.claude.run("Write the notes, password=hunter2\nWRITE: notes.txt hello")
    assert out["result"].startswith("Done")
    assert (claude_project.root / "notes.txt").read_text() == "hello\n"
    _drained(claude_project)
    (only,) = _sessions(claude_project)
    assert only["status"] == "completed"  # SessionEnd ended it
    events = _events(claude_project, only["id"])
    kinds = [kind for kind, _ in events]
    messages = [(p["role"], p["text"]) for kind, p in events if kind == "message"]
    assert messages[0][0] == "user" and "Write the notes" in messages[0][1]
    # Redaction applies to what the hooks record: the secret never reaches the store.
    assert "hunter2" not in json.dumps([p for _, p in events])
    assert "[REDACTED" in messages[0][1]
    assert messages[-1] == ("assistant", out["result"])
    call = next(p for kind, p in events if kind == "tool-call")
    result = next(p for kind, p in events if kind == "tool-result")
    assert call["name"] == "Write" and call["arguments"]["file_path"].endswith("notes.txt")
    assert result["callId"] == call["callId"]
    assert ("file", {"path": "notes.txt", "change": "modified"}) in events
    assert kinds.index("tool-call") < kinds.index("tool-result") < kinds.index("lifecycle")


def test_kill_9_mid_tool_call_then_the_next_run_is_told_what_was_going_on(
    claude_project: ClaudeProject,
) -> None:
    api = claude_project.api
    agent = claude_project.claude.start(
        "Fix the flaky payment test\nRUN: echo started && sleep 30 && echo finished"
    )
    try:
        wait_for(lambda: len(api.message_requests()) >= 1, 60, "the first model request")
        # The Bash tool is running `sleep 30` once its PreToolUse hook has been spooled.
        wait_for(lambda: _spooled(claude_project, "PreToolUse"), 60, "the tool call to start")
        time.sleep(0.5)
    finally:
        kill_hard(agent)  # no SessionEnd, no Stop: only the spool and the dead pid are left
    # Anyone who looks now finds the session interrupted, its spool written first.
    (old,) = _sessions(claude_project)
    assert old["status"] == "interrupted"
    events = _events(claude_project, old["id"])
    assert (
        "message",
        {
            "role": "user",
            "text": "Fix the flaky payment test\nRUN: echo started && sleep 30 && echo finished",
        },
    ) in [(k, {"role": p.get("role"), "text": p.get("text")}) for k, p in events if k == "message"]
    call = next(p for kind, p in events if kind == "tool-call")
    assert "sleep 30" in call["arguments"]["command"]
    assert not any(kind == "tool-result" for kind, _ in events)  # it died in the call

    before = len(api.message_requests())
    out = claude_project.claude.run("hello again")
    assert out["result"] == "Hello from the fake model."
    sent = request_text(api.message_requests()[before])
    # The new agent's first request carries the recovery: the task and where it stopped.
    assert "Session Recovery" in sent and old["id"] in sent
    assert "Fix the flaky payment test" in sent
    assert "sleep 30" in sent  # the tool call it was in
    _drained(claude_project)
    listed = {s["id"]: s for s in _sessions(claude_project)}
    new = next(s for s in listed.values() if s["id"] != old["id"])
    with SessionManager(project_dir=claude_project.root) as mgr:
        assert mgr.get(new["id"]).recovered_from == old["id"]


def test_resuming_a_killed_agent_session_continues_the_same_session(
    claude_project: ClaudeProject,
) -> None:
    api = claude_project.api
    agent = claude_project.claude.start("Refactor the billing module\nRUN: echo go && sleep 30")
    try:
        wait_for(lambda: len(api.message_requests()) >= 1, 60, "the first model request")
        wait_for(lambda: _spooled(claude_project, "PreToolUse"), 60, "the tool call to start")
        wait_for(claude_project.claude.transcripts, 60, "Claude Code's transcript")
        time.sleep(0.5)
    finally:
        kill_hard(agent)
    (mapped,) = (claude_project.state / "map").glob("claude-*")
    agent_session = mapped.name.removeprefix("claude-")
    ours = mapped.read_text()
    before = len(api.message_requests())
    out = claude_project.claude.run("go on", resume=agent_session)
    assert out["session_id"] == agent_session
    assert "Refactor the billing module" in request_text(api.message_requests()[before])
    _drained(claude_project)
    (only,) = _sessions(claude_project)  # no second session: the same one went on
    assert only["id"] == ours and only["status"] == "completed"
    messages = [p["text"] for kind, p in _events(claude_project, ours) if kind == "message"]
    assert messages[0].startswith("Refactor the billing module") and "go on" in messages


def test_the_transcripts_of_real_runs_are_kept_for_the_importer(
    claude_transcripts: list[Path],
) -> None:
    lines = [
        json.loads(line) for path in claude_transcripts for line in path.read_text().splitlines()
    ]
    kinds = {line.get("type") for line in lines}
    assert {"user", "assistant"} <= kinds
    assert any("notes.txt" in json.dumps(line) for line in lines)


def test_a_killed_run_is_recovered_by_the_fast_session_start(
    claude_project: ClaudeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nobody looks between the kill and the next run: its SessionStart finds the
    # dead agent's session and prints the prompt prepared when the session was
    # first written, plus the prompt and the tool call still in the spool.
    api = claude_project.api
    agent = claude_project.claude.start("Speed up the invoice export\nRUN: echo go && sleep 30")
    try:
        wait_for(lambda: len(api.message_requests()) >= 1, 60, "the first model request")
        wait_for(lambda: _spooled(claude_project, "PreToolUse"), 60, "the tool call to start")
        time.sleep(0.5)
    finally:
        kill_hard(agent)
    for name, value in claude_project.env().items():
        monkeypatch.setenv(name, value)
    # Ingesters the dead agent's hooks started have finished (the hook would wait for them).
    wait_for(lambda: _lock_free(claude_project.root), 60, "the ingesters to finish")
    fast = quick_prompt("claude", "a-new-agent-session", claude_project.root)
    assert fast is not None  # what the next SessionStart prints, without the model
    old, prompt = fast
    assert "Speed up the invoice export" in prompt and "never returned" in prompt
    before = len(api.message_requests())
    claude_project.claude.run("hello again")
    sent = request_text(api.message_requests()[before])
    assert all(line in sent for line in prompt.splitlines() if line.strip())
    _drained(claude_project)
    listed = {s["id"]: s for s in _sessions(claude_project)}
    assert listed[old]["status"] != "active"
    new = next(s for s in listed.values() if s["id"] != old)
    with SessionManager(project_dir=claude_project.root) as mgr:
        assert mgr.get(new["id"]).recovered_from == old
        kinds = [e.kind.value for e in mgr.events(old)]
    assert "tool-call" in kinds  # the spooled call was written behind the hook
