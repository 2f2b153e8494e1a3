"""RESUME_TASK: taskContext, currentStep, progress, nextActions."""

from __future__ import annotations

import pytest

from agent_continuity.errors import InvalidInput
from agent_continuity.model import TaskStatus
from agent_continuity.recovery import resume_task
from recovery_builders import Journal, observe, sms_session


def test_resuming_the_current_task_continues_from_its_checkpoint() -> None:
    result = resume_task(sms_session().view(), "TASK-6-004", None, None)
    assert result.current_step == "admin-interface-integration"
    assert result.next_actions == ["test-sms-endpoints", "integrate-with-settings"]
    assert result.progress == 85
    assert result.continuation_id == "CONTINUATION-250124-001-ADMIN-INTERFACE-INTEGRATION"
    context = result.task_context
    assert context.is_current_task and context.status is TaskStatus.IN_PROGRESS
    assert context.completed_steps == [
        "database-schema-created",
        "sms-provider-interface-implemented",
    ]
    assert context.key_decisions[-1] == "Implementing mock provider for testing"
    wire = result.to_wire()
    assert wire["progress"] == "85%"
    assert {"taskContext", "currentStep", "progress", "nextActions"} <= set(wire)


def test_resuming_from_a_declared_step_restarts_there() -> None:
    result = resume_task(
        sms_session().view(), "TASK-6-004", "sms-provider-interface-implemented", None
    )
    assert result.current_step == "sms-provider-interface-implemented"
    assert result.next_actions == [
        "admin-interface-integration",
        "test-sms-endpoints",
        "integrate-with-settings",
    ]
    assert result.progress == 25  # one of four declared steps lies before it
    assert any("already completed" in w for w in result.warnings)


def test_resuming_from_a_session_next_step() -> None:
    result = resume_task(sms_session().view(), "TASK-6-004", "test-sms-endpoints", None)
    assert result.current_step == "test-sms-endpoints"
    # The last declared step: what follows is the session's own plan.
    assert result.next_actions == ["integrate-with-settings"]


def test_an_unknown_step_is_refused_with_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match=r"has no step 'deploy'.*admin-interface-integration"):
        resume_task(sms_session().view(), "TASK-6-004", "deploy", None)


def test_a_task_the_session_never_touched_is_refused_helpfully() -> None:
    with pytest.raises(InvalidInput) as caught:
        resume_task(sms_session().view(), "TASK-9-999", None, None)
    message = str(caught.value)
    assert "never worked on TASK-9-999" in message and "TASK-6-004" in message


def test_another_task_of_the_session_resumes_from_its_declared_steps() -> None:
    j = sms_session()
    j.task(
        "TASK-4-010",
        "open",
        title="Slot validation",
        steps=["spec", "build", "test"],
        current=False,
    )
    j.step_done("spec")
    result = resume_task(j.view(), "TASK-4-010", None, None)
    assert not result.task_context.is_current_task
    assert result.current_step == "build" and result.next_actions == ["test"]
    assert result.progress == 33
    assert result.task_context.blockers == []


def test_blockers_come_first_in_the_next_actions() -> None:
    j = sms_session()
    j.blocker("Twilio sandbox down")
    result = resume_task(j.view(), "TASK-6-004", None, None)
    assert result.next_actions[0] == "resolve blocker: Twilio sandbox down"
    assert result.task_context.blockers == ["Twilio sandbox down"]


def test_a_closed_task_has_nothing_left_to_resume() -> None:
    j = Journal()
    j.task("T-1", "done", steps=["a"])
    j.step_done("a")
    result = resume_task(j.view(), "T-1", None, None)
    assert result.current_step is None and result.next_actions == []
    assert result.progress == 100
    assert any("nothing left to resume" in w for w in result.warnings)
    assert result.continuation_id.endswith("-RESUME")


def test_open_dependencies_are_warned_about() -> None:
    j = Journal()
    j.task("T-0", "in-progress", current=False)
    j.task("T-1", "open", dependencies=["T-0"])
    result = resume_task(j.view(), "T-1", None, None)
    assert any("unfinished task(s): T-0" in w for w in result.warnings)


def test_an_observation_lists_the_changed_and_missing_files() -> None:
    observation = observe(changes={"b.py": "modified", "a.py": "added"}, missing=["ongoing.md"])
    result = resume_task(sms_session().view(), "TASK-6-004", None, observation)
    assert result.task_context.changed_files == ["a.py (added)", "b.py (modified)"]
    assert result.task_context.missing_files == ["ongoing.md"]
    assert any("2 file(s) changed" in w for w in result.warnings)


def test_a_current_task_without_a_task_event_can_still_be_resumed() -> None:
    j = Journal(context={"current_task": "TASK-1-001"})
    j.next_step("write the spec")
    result = resume_task(j.view(), "TASK-1-001", None, None)
    assert result.current_step == "write the spec"
    assert any("no task event" in w for w in result.warnings)
