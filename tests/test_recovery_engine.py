"""recover(): the whole engine, from saved state to the ``recover --json`` object."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from agent_continuity.errors import InvalidInput
from agent_continuity.model import CodeContext, Damage, Event, EventKind, TaskStatus
from agent_continuity.recovery import (
    INTERRUPTED_TOOL_OUTPUT,
    RESTORATION_STEPS,
    choose_mode,
    recover,
    reference_time,
)
from agent_continuity.replay import SessionView
from recovery_builders import (
    BRANCH,
    HEAD,
    NEW_HEAD,
    SETTINGS,
    SID,
    T0,
    Journal,
    backup,
    observe,
    sms_session,
)


def interrupted_sms(minutes_after_point: int = 1) -> tuple[Journal, object]:
    j = sms_session()
    point = j.point()
    j.message("user", "Also check the opt-in flag.")
    j.interrupt("browser crashed", minutes=minutes_after_point)
    return j, point


# -- mode -------------------------------------------------------------------


def test_mode_is_quick_just_under_24_hours_and_full_just_over() -> None:
    assert choose_mode(T0, T0 + timedelta(hours=23, minutes=59), SETTINGS) == "quick"
    assert choose_mode(T0, T0 + timedelta(hours=24, minutes=1), SETTINGS) == "full"


def test_requested_mode_wins_and_unknown_mode_is_refused() -> None:
    assert choose_mode(T0, T0 + timedelta(days=9), SETTINGS, "quick") == "quick"
    assert choose_mode(T0, T0, SETTINGS, "full") == "full"
    assert choose_mode(T0, T0, SETTINGS, "emergency") == "emergency"
    with pytest.raises(InvalidInput, match="auto, quick, full, emergency"):
        choose_mode(T0, T0, SETTINGS, "fast")


def test_reference_time_is_the_interruption_when_interrupted() -> None:
    j, _ = interrupted_sms()
    record = j.view().record
    assert record.interruption is not None
    assert reference_time(record) == record.interruption.at
    assert reference_time(sms_session().view().record) == sms_session().view().record.last_activity


# -- the common cases ---------------------------------------------------------


def test_five_minutes_after_a_crash_in_an_unchanged_project_resumes_quickly() -> None:
    j, point = interrupted_sms()
    now = j.at + timedelta(minutes=5)
    result = recover(j.saved(point), observe(commits=[]), now, SETTINGS)
    assert result.mode == "quick"
    assert result.confidence.score >= 0.8
    assert result.decision == "auto-resume"
    assert result.status == "success", result.warnings
    assert result.warnings == []
    assert result.next_steps == ["test-sms-endpoints", "integrate-with-settings"]
    assert result.continuation_id == "CONTINUATION-250124-001-ADMIN-INTERFACE-INTEGRATION"
    assert all(check.passed for check in result.validation)
    assert result.view is not None and result.view.record.context.current_task == "TASK-6-004"
    assert "TASK-6-004" in result.context_summary and "browser crashed" in result.context_summary
    assert result.recovered_seq == j.events[-1].seq
    assert [m["text"] for m in result.recovered_messages][-1] == "Also check the opt-in flag."


def test_three_days_later_on_a_deleted_branch_without_the_active_files_is_not_auto_resumed() -> (
    None
):
    j, point = interrupted_sms()
    now = j.at + timedelta(days=3)
    observation = observe(
        branch="main",
        head=NEW_HEAD,
        reachable=False,
        changes={"includes/class-sms-manager.php": "deleted", "ongoing.md": "deleted"},
        missing=["includes/class-sms-manager.php", "ongoing.md"],
    )
    result = recover(j.saved(point), observation, now, SETTINGS)
    assert result.decision != "auto-resume"
    assert result.mode == "emergency"  # project-state-consistency failed
    assert result.status == "partial"
    assert result.confidence.factors.coherence < 0.5
    assert any("project-state-consistency" in w for w in result.warnings)
    assert result.state_diff.branch_changed
    assert result.state_diff.missing_active_files == [
        "includes/class-sms-manager.php",
        "ongoing.md",
    ]


def test_old_session_uses_full_mode_and_rebuilds_from_the_whole_journal() -> None:
    j, point = interrupted_sms()
    now = j.at + timedelta(days=2)
    saved = j.saved(point, full_events=list(j.events))
    result = recover(saved, observe(commits=["c0ffee1 Fix SMS template"]), now, SETTINGS)
    assert result.mode == "full"
    assert result.protocol.name == "fullRecovery"
    rebuild = {s.name: s.detail for s in result.protocol.steps}["rebuild-context-from-logs"]
    assert "replayed from seq 1" in rebuild and f"{len(j.events)} event(s)" in rebuild
    knowledge = result.steps[3].detail
    assert "git history says 1 commit(s)" in knowledge and "c0ffee1" in knowledge
    assert result.view is not None
    # The code context the point captured is kept on the rebuilt view.
    assert result.view.code_context.working_branch == BRANCH


def test_full_mode_without_the_whole_journal_still_recovers_from_the_point() -> None:
    j, point = interrupted_sms()
    result = recover(j.saved(point), observe(), j.at + timedelta(days=2), SETTINGS)
    assert result.mode == "full"
    assert result.view is not None and result.view.seq == j.events[-1].seq
    rebuild = {s.name: s.detail for s in result.protocol.steps}["rebuild-context-from-logs"]
    assert "not loaded" in rebuild


# -- the result object ---------------------------------------------------------


def test_the_five_restoration_steps_come_in_order_with_their_outputs() -> None:
    j, point = interrupted_sms()
    result = recover(j.saved(point), observe(), j.at, SETTINGS)
    assert [(s.name, s.output) for s in result.steps] == [
        ("session-identification", "session-metadata"),
        ("context-loading", "context-snapshot"),
        ("state-synchronisation", "state-diff"),
        ("knowledge-update", "updated-knowledge-base"),
        ("continuation-plan", "continuation-plan"),
    ]
    assert list(RESTORATION_STEPS) == [(s.name, s.output) for s in result.steps]
    assert all(s.detail for s in result.steps)
    assert SID in result.steps[0].detail


def test_to_wire_holds_every_contract_key_with_the_right_type() -> None:
    j, point = interrupted_sms()
    wire = recover(j.saved(point), observe(), j.at, SETTINGS).to_wire()
    json.dumps(wire)  # JSON-ready
    assert wire["status"] in ("success", "partial", "failed")
    assert wire["sessionId"] == SID
    assert wire["mode"] in ("quick", "full", "emergency")
    assert wire["decision"] in ("auto-resume", "prompt", "new-session")
    confidence = wire["confidence"]
    assert isinstance(confidence["score"], float) and 0 <= confidence["score"] <= 1
    assert confidence["score"] == round(confidence["score"], 3)
    assert set(confidence["factors"]) == {"elapsed", "completeness", "taskStatus", "coherence"}
    assert all(0 <= v <= 1 for v in confidence["factors"].values())
    assert len(confidence["reasons"]) == 4
    assert isinstance(wire["contextSummary"], str) and wire["contextSummary"]
    assert all(isinstance(s, str) for s in wire["nextSteps"])
    assert isinstance(wire["warnings"], list)
    diff = wire["stateDiff"]
    for key in (
        "modifiedFiles",
        "addedFiles",
        "deletedFiles",
        "newCommits",
        "taskChanges",
        "missingActiveFiles",
    ):
        assert isinstance(diff[key], list), key
    assert isinstance(diff["branchChanged"], bool)
    assert diff["savedBranch"] == BRANCH and diff["currentBranch"] == BRANCH
    for check in wire["validation"]:
        assert set(check) == {"name", "critical", "passed", "detail"}
        assert isinstance(check["critical"], bool) and isinstance(check["passed"], bool)
    assert [c["name"] for c in wire["validation"]] == [
        "project-state-consistency",
        "file-modification-check",
        "task-status-verification",
        "dependency-validation",
        "conversation-integrity",
    ]
    assert [c["critical"] for c in wire["validation"]] == [True, False, True, True, False]
    for step in wire["steps"]:
        assert {"name", "output", "detail"} <= set(step)
    assert isinstance(wire["prompt"], str) and SID in wire["prompt"]
    assert wire["continuationId"].startswith("CONTINUATION-250124-001-")
    assert wire["referenceTime"].endswith("Z")
    # The object-only parts stay out of the JSON.
    assert not {"repairs", "view", "recoveredMessages"} & set(wire)


def test_state_diff_is_exact_and_sorted() -> None:
    j, point = interrupted_sms()
    j.task("TASK-6-005", "open", title="Opt-in flag", current=False)
    j.task("TASK-6-004", "blocked")
    changes = {
        "src/z.py": "modified",
        "src/a.py": "modified",
        "docs/new.md": "added",
        "b/old.txt": "deleted",
        "a/old.txt": "deleted",
        "weird.bin": "type-changed",
    }
    observation = observe(
        changes=changes, commits=["111 first", "222 second"], missing=["ongoing.md"]
    )
    diff = recover(j.saved(point), observation, j.at, SETTINGS).state_diff
    assert diff.modified_files == ["src/a.py", "src/z.py", "weird.bin"]
    assert diff.added_files == ["docs/new.md"]
    assert diff.deleted_files == ["a/old.txt", "b/old.txt"]
    assert diff.new_commits == ["111 first", "222 second"]
    assert not diff.branch_changed
    assert diff.missing_active_files == ["ongoing.md"]
    assert [(c.id, c.before, c.after) for c in diff.task_changes] == [
        ("TASK-6-004", TaskStatus.IN_PROGRESS, TaskStatus.BLOCKED),
        ("TASK-6-005", None, TaskStatus.OPEN),
    ]


# -- repairs and integrity --------------------------------------------------------


def test_a_dangling_tool_call_is_repaired_and_reported() -> None:
    j = sms_session()
    point = j.point()
    j.tool_call("call-1", "run_tests")
    j.tool_call("call-2", "lint")
    j.tool_result("call-2")
    j.interrupt()
    now = j.at + timedelta(minutes=5)
    result = recover(j.saved(point), observe(), now, SETTINGS)
    assert result.view is not None and result.view.pending_calls == {}
    assert len(result.repairs) == 1
    repair = result.repairs[0]
    assert repair.kind is EventKind.TOOL_RESULT and repair.at == now
    assert repair.payload == {
        "callId": "call-1",
        "output": INTERRUPTED_TOOL_OUTPUT,
        "isError": True,
        "synthetic": True,
    }
    assert any("call-1" in w and "never returned" in w for w in result.warnings)
    integrity = next(c for c in result.validation if c.name == "conversation-integrity")
    assert not integrity.passed and "repaired" in integrity.detail
    assert result.status == "partial"
    assert result.confidence.factors.completeness == pytest.approx(0.8)
    # The prompt says what the agent did last, not what the repair did.
    assert "**Last Action**: tool lint returned" in result.prompt
    # Appending the repairs to the journal gives the same state as the repaired view.
    replayed = SessionView.replay(j.events)
    for draft in result.repairs:
        replayed.apply(
            Event(seq=replayed.seq + 1, kind=draft.kind, at=draft.at, payload=draft.payload)
        )
    assert replayed.pending_calls == {} and replayed.seq == result.view.seq


def test_a_dangling_call_saved_in_the_point_is_repaired_too() -> None:
    j = sms_session()
    j.tool_call("call-9", "deploy")
    point = j.point()  # pending_operations holds call-9
    assert point.pending_operations
    result = recover(j.saved(point), observe(), j.at, SETTINGS)
    assert [d.payload["callId"] for d in result.repairs] == ["call-9"]


def test_a_half_written_assistant_turn_is_detected() -> None:
    j = sms_session()
    point = j.point()
    j.message("assistant", "I will now update the settings pa", partial=True)
    j.interrupt()
    result = recover(j.saved(point), observe(), j.at, SETTINGS)
    assert any("cut off" in w for w in result.warnings)
    integrity = next(c for c in result.validation if c.name == "conversation-integrity")
    assert not integrity.passed and "half-written" in integrity.detail
    assert result.status == "partial"
    assert "[cut off]" in result.prompt or "cut off" in result.prompt


def test_a_finished_assistant_turn_after_a_partial_one_is_not_flagged() -> None:
    j = sms_session()
    point = j.point()
    j.message("assistant", "half", partial=True)
    j.message("assistant", "the whole answer")
    result = recover(j.saved(point), observe(), j.at, SETTINGS)
    assert result.status == "success", result.warnings


def test_journal_and_point_damage_make_the_result_partial_and_lower_completeness() -> None:
    j, point = interrupted_sms()
    saved = j.saved(
        point,
        journal_damage=[Damage(location="journal.jsonl", kind="torn-tail", detail="12 bytes")],
        point_damage=[
            Damage(location="RECOVERY-250124-001-103500", kind="checksum", detail="sha256 mismatch")
        ],
    )
    result = recover(saved, observe(), j.at, SETTINGS)
    assert result.status == "partial"
    assert result.confidence.factors.completeness == pytest.approx(0.6)
    assert any("torn-tail" in w for w in result.warnings)
    assert any("RECOVERY-250124-001-103500" in w and "skipped" in w for w in result.warnings)
    assert "1 newer point(s) skipped" in result.steps[0].detail


# -- fallbacks ------------------------------------------------------------------------


def test_without_a_valid_point_the_whole_journal_is_replayed() -> None:
    j, _ = interrupted_sms()
    result = recover(j.saved(None), observe(), j.at, SETTINGS)
    assert result.recovery_point_id is None
    assert result.view is not None and result.view.record.state.progress == 85
    # No code context was captured without a point: completeness says so.
    assert result.confidence.factors.completeness == pytest.approx(0.8)
    assert "no valid recovery point" in result.steps[1].detail


def test_a_journal_without_its_first_event_falls_back_to_the_registry_entry() -> None:
    j, _ = interrupted_sms()
    record = j.view(upto=5).record
    result = recover(j.saved(None, record=record, events=j.events[1:]), observe(), j.at, SETTINGS)
    assert result.status == "partial"
    assert any("registry entry" in w for w in result.warnings)
    assert result.view is not None
    # Decisions already in the registry entry are not applied twice.
    assert (
        result.view.record.context.key_decisions.count("Using Twilio as primary SMS provider") == 1
    )


def test_only_an_emergency_backup_left_gives_a_partial_emergency_result() -> None:
    j, _ = interrupted_sms()
    record = j.view().record
    saved_backup = backup(
        current_task="TASK-6-004",
        current_phase="phase-6",
        current_step="admin-interface",
        progress=85,
        next_steps=["test-sms-endpoints"],
        blockers=["Twilio sandbox down"],
        last_decision="Using Twilio",
        seq=14,
    )
    saved = j.saved(None, record=record, events=[], emergency=saved_backup)
    result = recover(saved, observe(), j.at + timedelta(minutes=5), SETTINGS)
    assert result.status == "partial"
    assert result.mode == "emergency"
    assert result.decision != "auto-resume"
    assert result.next_steps == ["test-sms-endpoints"]
    assert any("only the emergency backup" in w for w in result.warnings)
    assert "Twilio sandbox down" in result.prompt
    assert result.protocol.name == "emergencyRecovery"


def test_a_newer_emergency_backup_fills_in_what_the_journal_lost() -> None:
    j, point = interrupted_sms()
    newer = backup(
        current_task="TASK-6-004",
        current_step="test-sms-endpoints",
        progress=90,
        next_steps=["integrate-with-settings"],
        seq=j.events[-1].seq + 3,
    )
    result = recover(j.saved(point, emergency=newer), observe(), j.at, SETTINGS)
    assert result.view is not None and result.view.record.state.progress == 90
    assert result.next_steps == ["integrate-with-settings"]
    assert any("emergency backup" in w and "newer" in w for w in result.warnings)


def test_nothing_left_at_all_is_a_failure_that_starts_a_new_session() -> None:
    j, _ = interrupted_sms()
    saved = j.saved(None, events=[])
    result = recover(saved, observe(), j.at, SETTINGS)
    assert result.status == "failed"
    assert result.decision == "new-session"
    assert result.confidence.score == 0
    assert len(result.steps) == 5
    assert result.view is None
    assert "TASK-6-004" in result.context_summary  # what the registry still says
    json.dumps(result.to_wire())


def test_requested_emergency_mode_never_auto_resumes() -> None:
    j, point = interrupted_sms()
    result = recover(j.saved(point), observe(), j.at, SETTINGS, requested_mode="emergency")
    assert result.mode == "emergency"
    assert result.confidence.score >= 0.8
    assert result.decision == "prompt"
    assert result.status == "partial"


def test_a_point_from_another_session_is_refused() -> None:
    j, point = interrupted_sms()
    other = point.model_copy(update={"session_id": "SESSION-250124-002"})
    with pytest.raises(InvalidInput, match="belongs to SESSION-250124-002"):
        recover(j.saved(other), observe(), j.at, SETTINGS)


def test_a_project_outside_git_is_consistent_when_nothing_changed() -> None:
    j = sms_session()
    point = j.point(code=CodeContext(vcs="none", observed_at=T0))
    result = recover(j.saved(point), observe(vcs="none", reachable=None), j.at, SETTINGS)
    check = result.validation[0]
    assert check.passed and "not under version control" in check.detail
    assert result.decision == "auto-resume"


def test_the_same_inputs_give_the_same_result() -> None:
    j, point = interrupted_sms()
    saved, now = j.saved(point), j.at + timedelta(hours=2)
    first = recover(saved, observe(head=HEAD), now, SETTINGS).to_wire()
    assert recover(saved, observe(head=HEAD), now, SETTINGS).to_wire() == first


def test_recover_leaves_its_inputs_untouched() -> None:
    j = sms_session()
    j.tool_call("call-9", "deploy")
    point = j.point()
    saved = j.saved(point)
    before = (point.model_dump(), saved.record.model_dump(), [e.model_dump() for e in j.events])
    result = recover(saved, observe(), j.at, SETTINGS)
    assert result.repairs and result.view is not None and not result.view.pending_calls
    after = (point.model_dump(), saved.record.model_dump(), [e.model_dump() for e in j.events])
    assert after == before
