"""Context validation: each check passing and failing."""

from __future__ import annotations

from agent_continuity.model import CodeContext, Damage, ToolCall
from agent_continuity.recovery import StateDiff, diff_state
from agent_continuity.recovery.integrity import Integrity, assess_integrity
from agent_continuity.recovery.validation import (
    check_conversation,
    check_dependencies,
    check_file_modifications,
    check_project_state,
    check_task_status,
)
from agent_continuity.replay import SessionView
from recovery_builders import BRANCH, HEAD, NEW_HEAD, T0, Journal, git_code, observe

# -- project-state-consistency -----------------------------------------------------------


def test_project_state_passes_on_the_same_branch_with_the_saved_head_reachable() -> None:
    saved = git_code()
    observation = observe(head=NEW_HEAD, commits=["bbb one"])
    check = check_project_state(diff_state(observation, saved), saved, observation)
    assert check.critical and check.passed
    assert f"same branch {BRANCH}" in check.detail and "1 new commit" in check.detail


def test_project_state_fails_on_another_branch() -> None:
    saved = git_code()
    observation = observe(branch="main")
    check = check_project_state(diff_state(observation, saved), saved, observation)
    assert not check.passed and f"saved on branch {BRANCH}, now on main" in check.detail


def test_project_state_fails_when_the_saved_head_was_rewritten_away() -> None:
    saved = git_code()
    observation = observe(head=NEW_HEAD, reachable=False)
    check = check_project_state(diff_state(observation, saved), saved, observation)
    assert not check.passed and "no longer an ancestor" in check.detail
    assert HEAD[:12] in check.detail


def test_project_state_fails_when_git_disappeared() -> None:
    saved = git_code()
    observation = observe(vcs="none")
    check = check_project_state(diff_state(observation, saved), saved, observation)
    assert not check.passed and "no longer is" in check.detail


def test_project_state_passes_without_version_control_or_saved_context() -> None:
    plain = CodeContext(vcs="none", observed_at=T0)
    observation = observe(vcs="none")
    check = check_project_state(diff_state(observation, plain), plain, observation)
    assert check.passed and "not under version control" in check.detail
    check = check_project_state(diff_state(observation, None), None, observation)
    assert check.passed and "no saved code context" in check.detail


# -- file-modification-check ------------------------------------------------------------


def test_file_modification_passes_when_nothing_changed() -> None:
    check = check_file_modifications(StateDiff())
    assert not check.critical and check.passed


def test_file_modification_fails_and_counts_each_kind() -> None:
    diff = StateDiff(modified_files=["a.py", "b.py"], added_files=["c.py"], deleted_files=["d.py"])
    check = check_file_modifications(diff)
    assert not check.passed and not check.critical
    assert check.detail.startswith("2 modified, 1 added, 1 deleted")
    assert "c.py (added)" in check.detail


def test_file_modification_lists_only_the_first_few() -> None:
    diff = StateDiff(modified_files=[f"f{i}.py" for i in range(12)])
    assert "and 7 more" in check_file_modifications(diff).detail


# -- task-status-verification --------------------------------------------------------------


def _journal_with_task(status: str = "in-progress", **task: object) -> Journal:
    j = Journal()
    j.task("T-1", status, title="Task one", **task)
    return j


def test_task_status_passes_for_a_known_open_task() -> None:
    j = _journal_with_task(steps=["a", "b"])
    j.step_done("a")
    check = check_task_status(j.view())
    assert check.critical and check.passed and "1 of 2 declared steps done" in check.detail


def test_task_status_passes_without_a_current_task() -> None:
    check = check_task_status(Journal().view())
    assert check.passed and "no current task" in check.detail


def test_task_status_fails_for_a_current_task_no_event_described() -> None:
    j = Journal(context={"current_task": "T-404"})
    check = check_task_status(j.view())
    assert not check.passed and "T-404" in check.detail and "unknown" in check.detail


def test_task_status_fails_for_a_done_task_with_steps_left() -> None:
    j = _journal_with_task("done", steps=["a", "b"])
    j.step_done("a")
    check = check_task_status(j.view())
    assert not check.passed and "is done but 1 of its steps are not completed: b" in check.detail


def test_task_status_fails_for_a_closed_task_with_next_steps_planned() -> None:
    j = _journal_with_task("cancelled")
    j.next_step("ship it")
    check = check_task_status(j.view())
    assert not check.passed and "still plans 1 next step(s): ship it" in check.detail


def test_task_status_passes_for_a_done_task_with_nothing_left() -> None:
    j = _journal_with_task("done", steps=["a"])
    j.step_done("a")
    assert check_task_status(j.view()).passed


def test_an_open_task_with_every_step_done_passes_with_a_hint() -> None:
    j = _journal_with_task(steps=["a"])
    j.step_done("a")
    check = check_task_status(j.view())
    assert check.passed and "ready to close" in check.detail


# -- dependency-validation -----------------------------------------------------------------


def test_dependencies_pass_trivially_when_there_are_none() -> None:
    check = check_dependencies(_journal_with_task().view())
    assert check.critical and check.passed


def test_dependencies_pass_when_every_one_is_known_and_say_which_are_open() -> None:
    j = Journal()
    j.task("T-0", "done", current=False)
    j.task("T-2", "open", current=False)
    j.task("T-1", "in-progress", dependencies=["T-0", "T-2"])
    check = check_dependencies(j.view())
    assert check.passed and "still open: T-2" in check.detail


def test_dependencies_fail_for_an_unknown_task() -> None:
    check = check_dependencies(_journal_with_task(dependencies=["T-77"]).view())
    assert not check.passed and "unknown task(s): T-77" in check.detail


def test_dependencies_fail_for_a_cancelled_task() -> None:
    j = Journal()
    j.task("T-0", "cancelled", current=False)
    j.task("T-1", "in-progress", dependencies=["T-0"])
    check = check_dependencies(j.view())
    assert not check.passed and "cancelled task(s): T-0" in check.detail


# -- conversation-integrity ------------------------------------------------------------------


def test_conversation_integrity_passes_for_a_whole_conversation() -> None:
    j = Journal()
    j.tool_call("c1")
    j.tool_result("c1")
    integrity = assess_integrity(j.view())
    check = check_conversation(integrity)
    assert not check.critical and check.passed and integrity.ok


def test_conversation_integrity_reports_each_kind_of_problem() -> None:
    integrity = Integrity(
        journal_damage=(Damage(location="j", kind="torn-tail", detail="3 bytes"),),
        point_damage=(Damage(location="p", kind="checksum", detail="bad"),),
        dangling_calls=(ToolCall(call_id="c1", name="grep", seq=4),),
        partial_message_seq=5,
    )
    check = check_conversation(integrity)
    assert not check.passed
    for words in (
        "1 damaged journal part",
        "1 damaged recovery point",
        "1 tool call",
        "half-written assistant turn",
    ):
        assert words in check.detail
    assert not integrity.checksums_ok and not integrity.journal_intact
    assert len(integrity.problems()) == 4


def test_checksum_damage_and_torn_tails_count_against_different_parts() -> None:
    torn = Integrity(journal_damage=(Damage(location="j", kind="torn-tail", detail=""),))
    assert torn.checksums_ok and not torn.journal_intact
    flipped = Integrity(journal_damage=(Damage(location="j", kind="checksum", detail=""),))
    assert not flipped.checksums_ok and flipped.journal_intact


def test_a_half_written_turn_in_a_recovery_point_is_found() -> None:
    j = Journal()
    j.message("assistant", "I was about to", partial=True)
    # The point refers to the journal for its messages: loading it reads them back.
    view = SessionView.from_point(j.point(), j.events)
    assert assess_integrity(view).partial_message_seq == 2
