"""The captured state the seeds ask for: agent, focus, preferences, pending operations, snapshots.

Each field is given on the command line or through the API, and must come back
in `show` (text and --json), `recover --json`, the recovery prompt and the
context snapshot on disk.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from agent_continuity import AgentInfo, SessionManager
from cli_support import cli, cli_json


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, str, Path]:
    root = tmp_path / "project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    tracking = tmp_path / "tracking"
    return root, f"files:{tracking}", tracking


def _agent_session(root: Path, url: str) -> str:
    started = cli_json(
        root,
        url,
        "start",
        "--task",
        "TASK-6-004",
        "--agent-type",
        "coding-assistant",
        "--specialization",
        "sms-integration",
        "--capability",
        "coding",
        "--preference",
        "language=en",
    )
    assert started["session"]["agent"] == {
        "type": "coding-assistant",
        "capabilities": ["coding"],
        "specialization": "sms-integration",
    }
    session_id: str = started["sessionId"]
    assert cli(root, url, "message", "--role", "user", "reminders must be fast").returncode == 0
    changes = cli_json(
        root,
        url,
        "update",
        "--step",
        "admin-interface",
        "--file",
        "src/sms.py",
        "--pending",
        "migrate the database",
        "--pending",
        "deploy to staging",
        "--preference",
        "tone=terse",
    )
    assert changes["seqs"]
    assert cli(root, url, "update", "--pending-done", "deploy to staging").returncode == 0
    assert cli(root, url, "save").returncode == 0
    return session_id


def test_show_holds_the_agent_focus_preferences_pending_operations_and_snapshot(
    project: tuple[Path, str, Path],
) -> None:
    root, url, tracking = project
    session_id = _agent_session(root, url)
    shown = cli_json(root, url, "show", session_id)
    assert shown["aiAgentState"]["specialization"] == "sms-integration"
    assert shown["aiAgentState"]["knowledgeLevel"] == "working"
    assert shown["aiAgentState"]["learningProgress"]["messages"] == "1"
    assert shown["conversationContext"]["technicalFocus"] == "admin-interface (src/sms.py)"
    assert shown["conversationContext"]["topic"] == "TASK-6-004"
    assert shown["conversationContext"]["recentDiscussions"] == ["reminders must be fast"]
    assert shown["userPreferences"] == {"language": "en", "tone": "terse"}
    assert shown["pendingOperations"] == [
        {"kind": "declared", "description": "migrate the database"}
    ]
    # The context snapshot of a command-line session is written with its points.
    snapshot = shown["contextSnapshot"]
    assert snapshot is not None
    assert snapshot["aiAgentState"]["specialization"] == "sms-integration"
    assert snapshot["conversationContext"]["technicalFocus"] == "admin-interface (src/sms.py)"
    on_disk = tracking / "snapshots" / "context-snapshots" / f"{session_id}.json"
    assert json.loads(on_disk.read_text())["seq"] == snapshot["seq"] == shown["session"]["lastSeq"]

    text = cli(root, url, "show", session_id).stdout
    assert "agent: coding-assistant; specialised in sms-integration; can do coding" in text
    assert "technical focus: admin-interface (src/sms.py)" in text
    assert "  - migrate the database" in text
    assert "  - deploy to staging" not in text
    assert "last action: finished deploy to staging" in text
    assert "  - language: en" in text
    assert "  - tone: terse" in text
    assert "context snapshot: " in text


def test_recover_and_the_prompt_hold_the_captured_state(
    project: tuple[Path, str, Path],
) -> None:
    root, url, _ = project
    session_id = _agent_session(root, url)
    assert cli(root, url, "interrupt", "--cause", "terminal closed").returncode == 0
    prompt = cli(root, url, "prompt").stdout
    assert "- **Agent**: coding-assistant; specialised in sms-integration" in prompt
    assert "- **Technical Focus**: admin-interface (src/sms.py)" in prompt
    assert "  - migrate the database" in prompt
    assert "  - tone: terse" in prompt
    recovered = cli_json(root, url, "recover", "--no")
    assert recovered["sessionId"] == session_id
    assert recovered["agent"]["type"] == "coding-assistant"
    assert recovered["aiAgentState"]["specialization"] == "sms-integration"
    assert recovered["conversationContext"]["technicalFocus"] == "admin-interface (src/sms.py)"
    assert recovered["userPreferences"] == {"language": "en", "tone": "terse"}
    assert recovered["pendingOperations"] == [
        {"kind": "declared", "description": "migrate the database"}
    ]
    assert "migrate the database" in recovered["prompt"]


@pytest.mark.parametrize(
    "args",
    [
        ("start", "--preference", "no-equals-sign"),
        ("start", "--preference", "=value"),
        ("start", "--recover", "--agent-type", "coder"),
    ],
)
def test_malformed_captured_state_options_are_one_line_errors(
    project: tuple[Path, str, Path], args: tuple[str, ...]
) -> None:
    root, url, _ = project
    result = cli(root, url, *args)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("continuity: error")


def test_the_api_captures_every_field_in_points_snapshots_and_recovery(tmp_path: Path) -> None:
    url = f"files:{tmp_path / 'tracking'}"
    mgr = SessionManager(store=url, project_dir=tmp_path, user_id="alice", observer=False)
    agent = AgentInfo(type="research-assistant", specialization="browser-research")
    session = mgr.start(
        task="TASK-1", agent=agent, preferences={"units": "metric"}, owned_by_process=False
    )
    session.add_message("user", "compare SMS providers")
    session.record_tool_call("search", {"q": "twilio pricing"}, call_id="call-1")
    mgr.update(
        session.id,
        step="compare-prices",
        files=["notes/providers.md"],
        pending=["ask legal about data residency"],
        preferences={"units": "imperial"},
    )
    point = mgr.store.load_point(mgr.save(session.id))
    assert point.ai_agent_state.specialization == "browser-research"
    assert point.ai_agent_state.knowledge_level == "working"
    assert point.conversation_context.technical_focus == "compare-prices (notes/providers.md)"
    assert point.declared_operations == ["ask legal about data residency"]
    assert point.user_preferences == {"units": "imperial"}
    snapshot = mgr.store.load_context_snapshot(session.id)
    assert snapshot is not None and snapshot.seq == point.seq
    assert snapshot.ai_agent_state == point.ai_agent_state

    details = mgr.details(session.id)
    assert [op["kind"] for op in details["pendingOperations"]] == ["tool-call", "declared"]
    assert details["pendingOperations"][0]["callId"] == "call-1"
    assert details["pendingOperations"][0]["name"] == "search"

    mgr.update(session.id, pending_done=["ask legal about data residency"])
    assert mgr.details(session.id)["pendingOperations"][1:] == []
    mgr.interrupt(session.id, "browser crashed")
    result = mgr.recover(answer=False)
    assert result.session_id == session.id
    assert result.agent.type == "research-assistant"
    assert result.ai_agent_state.specialization == "browser-research"
    assert result.user_preferences == {"units": "imperial"}
    assert result.conversation_context.recent_discussions == ["compare SMS providers"]
    wire = result.to_wire()
    assert wire["aiAgentState"]["learningProgress"]["messages"] == "1"
    assert "units: imperial" in result.prompt
    mgr.close()


def test_a_new_session_knows_nothing_yet_and_a_conversation_briefs_it(tmp_path: Path) -> None:
    mgr = SessionManager(store="memory:", project_dir=tmp_path, user_id="alice", observer=False)
    session = mgr.start(owned_by_process=False)
    assert mgr.details(session.id)["aiAgentState"]["knowledgeLevel"] == "new"
    session.add_message("user", "hello")
    assert mgr.details(session.id)["aiAgentState"]["knowledgeLevel"] == "briefed"
    session.decide("use Twilio")
    assert mgr.details(session.id)["aiAgentState"]["knowledgeLevel"] == "working"
    session.end()
    # Its final point wrote the context snapshot, whatever owned it.
    snapshot = mgr.store.load_context_snapshot(session.id)
    assert snapshot is not None and snapshot.ai_agent_state.knowledge_level == "working"
    mgr.close()


def test_a_process_session_writes_its_context_snapshot_with_its_final_point(
    tmp_path: Path,
) -> None:
    mgr = SessionManager(store="memory:", project_dir=tmp_path, user_id="alice", observer=False)
    with mgr.start(auto_save=False, agent=AgentInfo(specialization="sql")) as session:
        session.add_message("user", "tune the query")
        assert mgr.store.load_context_snapshot(session.id) is None  # per-turn cost unchanged
        session.checkpoint()
        assert mgr.store.load_context_snapshot(session.id) is None
    snapshot = mgr.store.load_context_snapshot(session.id)
    assert snapshot is not None
    assert snapshot.ai_agent_state.specialization == "sql"
    mgr.close()
