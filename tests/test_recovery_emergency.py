"""emergency_context(): critical info, urgent tasks, basic context from emergency backups alone."""

from __future__ import annotations

import json
from datetime import timedelta

from agent_continuity.model import Damage, ProjectState, SessionStatus
from agent_continuity.recovery import emergency_context
from recovery_builders import T0, backup, observe

NOW = T0 + timedelta(hours=3)


def _backups() -> list:
    return [
        backup(
            "SESSION-250124-001",
            updated=T0,
            current_task="TASK-6-004",
            current_phase="phase-6",
            progress=85,
            next_steps=["test-sms-endpoints"],
            last_decision="Using Twilio",
        ),
        backup(
            "SESSION-250124-002",
            updated=T0 + timedelta(hours=1),
            current_task="TASK-4-010",
            current_phase="phase-6",
            current_step="slot-check",
            progress=40,
            blockers=["Calendar API quota exceeded"],
            next_steps=["retry with backoff"],
            status=SessionStatus.ACTIVE,
            last_decision="Poll every minute",
        ),
        backup(
            "SESSION-250124-003",
            updated=T0 + timedelta(hours=2),
            current_task="TASK-6-003",
            status=SessionStatus.COMPLETED,
            progress=100,
        ),
        backup(
            "SESSION-250124-004",
            updated=T0 + timedelta(minutes=30),
            user_id="bob",
            current_task="TASK-9-001",
        ),
    ]


def test_blocked_work_comes_first_then_interrupted_sessions() -> None:
    result = emergency_context(_backups(), now=NOW)
    assert result.status == "success"
    assert [t.session_id for t in result.urgent_tasks] == [
        "SESSION-250124-002",
        "SESSION-250124-004",
        "SESSION-250124-001",
    ]
    top = result.urgent_tasks[0]
    assert top.task == "TASK-4-010" and top.reason.startswith("blocked")
    assert result.next_steps == [
        "resolve blocker: Calendar API quota exceeded",
        "retry with backoff",
    ]
    assert result.sessions_considered == 4


def test_completed_sessions_are_not_urgent() -> None:
    result = emergency_context(_backups(), now=NOW)
    assert "SESSION-250124-003" not in [t.session_id for t in result.urgent_tasks]


def test_critical_info_from_backups_and_observation() -> None:
    result = emergency_context(_backups(), now=NOW, observation=observe(branch="main"))
    info = result.critical_info
    assert info.current_phase == "phase-6"
    assert info.project_health == "blocked"
    assert info.critical_issues == ["Calendar API quota exceeded"]
    assert info.working_branch == "main"
    assert info.last_decisions == ["Poll every minute", "Using Twilio"]


def test_a_project_state_block_overrides_what_backups_suggest() -> None:
    state = ProjectState(
        current_phase="phase-7",
        project_health="good",
        recent_completions=["TASK-6-001"],
        critical_issues=["Disk full"],
    )
    info = emergency_context(_backups(), now=NOW, project_state=state).critical_info
    assert info.current_phase == "phase-7" and info.project_health == "good"
    assert info.recent_completions == ["TASK-6-001"]
    assert info.critical_issues == ["Disk full", "Calendar API quota exceeded"]


def test_basic_context_names_the_most_urgent_task() -> None:
    text = emergency_context(_backups(), now=NOW).basic_context
    assert "Phase phase-6" in text and "SESSION-250124-002" in text
    assert "TASK-4-010, step slot-check, 40% done" in text
    assert "Calendar API quota exceeded" in text and "2.0 h ago" in text


def test_filtering_by_user() -> None:
    result = emergency_context(_backups(), now=NOW, user_id="bob")
    assert [t.session_id for t in result.urgent_tasks] == ["SESSION-250124-004"]


def test_no_backup_left_is_a_failure_that_says_so() -> None:
    result = emergency_context([], now=NOW)
    assert result.status == "failed"
    assert result.urgent_tasks == []
    assert any("no emergency backup survived" in w for w in result.warnings)
    assert "No emergency backup survived" in result.basic_context


def test_damaged_backups_are_reported_and_make_it_partial() -> None:
    damage = [
        Damage(
            location="emergency-backups/SESSION-250124-009.json",
            kind="checksum",
            detail="sha256 mismatch",
        )
    ]
    result = emergency_context(_backups(), now=NOW, damage=damage)
    assert result.status == "partial"
    assert any("SESSION-250124-009" in w for w in result.warnings)


def test_the_result_is_json_ready_with_the_emergency_protocol() -> None:
    wire = emergency_context(_backups(), now=NOW).to_wire()
    json.dumps(wire)
    assert wire["mode"] == "emergency"
    assert [s["name"] for s in wire["protocol"]["steps"]] == [
        "load-critical-project-info",
        "identify-urgent-tasks",
        "establish-basic-context",
    ]
    assert wire["urgentTasks"][0]["progress"] == "40%"
    assert {"criticalInfo", "urgentTasks", "basicContext"} <= set(wire)
