"""Context validation: the specification's four checks, plus conversation integrity.

========================== ======== ==================================================
check                      critical passes when
========================== ======== ==================================================
project-state-consistency  yes      same branch and saved HEAD still an ancestor (or no VCS)
file-modification-check    no       no file changed since the save
task-status-verification   yes      the current task is known and its status agrees with
                                    its steps and the session's next steps
dependency-validation      yes      every dependency of the current task is a known task
                                    and none was cancelled
conversation-integrity     no       no damaged record, no tool call without its result,
                                    no half-written assistant turn
========================== ======== ==================================================

A failed critical check sends the engine to emergency mode (the
specification's ``onFailure`` fallback) and stops it from resuming by itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent_continuity.model import CodeContext, ProjectObservation, TaskStatus
from agent_continuity.replay import SessionView

from .integrity import Integrity
from .result import StateDiff, ValidationCheck

PROJECT_STATE = "project-state-consistency"
FILE_MODIFICATION = "file-modification-check"
TASK_STATUS = "task-status-verification"
DEPENDENCIES = "dependency-validation"
CONVERSATION = "conversation-integrity"

_LISTED = 5


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_LISTED])
    more = len(items) - _LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "?"


def check_project_state(
    diff: StateDiff, saved_code: CodeContext | None, observation: ProjectObservation | None
) -> ValidationCheck:
    """project-state-consistency (critical): is this still the project that was saved?"""
    saved_vcs = saved_code.vcs if saved_code is not None else "none"
    current_vcs = observation.code.vcs if observation is not None else "none"

    def result(passed: bool, detail: str) -> ValidationCheck:
        return ValidationCheck(name=PROJECT_STATE, critical=True, passed=passed, detail=detail)

    if saved_vcs != "git":
        if saved_code is None or saved_code.observed_at is None:
            return result(True, "no saved code context to compare with")
        return result(True, "the project was not under version control; nothing to compare")
    if current_vcs != "git":
        return result(
            False,
            f"the project was a git repository (branch {diff.saved_branch or '?'}) and no "
            "longer is; check that recovery runs in the right directory",
        )
    if diff.branch_changed:
        return result(
            False,
            f"saved on branch {diff.saved_branch}, now on "
            f"{diff.current_branch or 'a detached HEAD'}; switch back or confirm the session "
            "should continue here",
        )
    if diff.saved_head_reachable is False:
        return result(
            False,
            f"saved HEAD {_short(diff.saved_head)} is no longer an ancestor of HEAD "
            f"{_short(diff.current_head)} (history rewritten or branch reset)",
        )
    detail = f"same branch {diff.saved_branch or '(detached)'}"
    if diff.saved_head_reachable:
        detail += f"; saved HEAD {_short(diff.saved_head)} is an ancestor of HEAD"
    return result(True, detail + f"; {len(diff.new_commits)} new commit(s)")


def check_file_modifications(diff: StateDiff) -> ValidationCheck:
    """file-modification-check (non-critical): did files change since the save?"""
    if diff.changed_file_count == 0:
        return ValidationCheck(
            name=FILE_MODIFICATION,
            critical=False,
            passed=True,
            detail="no file changed since the save",
        )
    changed = [
        *(f"{p} (modified)" for p in diff.modified_files),
        *(f"{p} (added)" for p in diff.added_files),
        *(f"{p} (deleted)" for p in diff.deleted_files),
    ]
    return ValidationCheck(
        name=FILE_MODIFICATION,
        critical=False,
        passed=False,
        detail=(
            f"{len(diff.modified_files)} modified, {len(diff.added_files)} added, "
            f"{len(diff.deleted_files)} deleted since the save: {_listing(changed)}"
        ),
    )


def check_task_status(view: SessionView) -> ValidationCheck:
    """task-status-verification (critical): is the current task known and its status current?

    A closed task (done, cancelled) that still has declared steps left, or
    with the session still planning next steps, contradicts itself.
    """

    def result(passed: bool, detail: str) -> ValidationCheck:
        return ValidationCheck(name=TASK_STATUS, critical=True, passed=passed, detail=detail)

    task_id = view.record.context.current_task
    if not task_id:
        return result(True, f"no current task to verify ({len(view.tasks)} task(s) known)")
    task = view.tasks.get(task_id)
    if task is None:
        return result(
            False,
            f"the session names {task_id} as its current task but no task event ever "
            "described it, so its status is unknown",
        )
    completed = set(view.record.state.completed_steps)
    declared_left = [s for s in task.steps if s not in completed]
    next_steps = view.record.state.next_steps
    progress = f"{len(task.steps) - len(declared_left)} of {len(task.steps)} declared steps done"
    if not task.status.is_open:
        if declared_left:
            return result(
                False,
                f"{task.id} is {task.status.value} but {len(declared_left)} of its steps are "
                f"not completed: {_listing(declared_left)}",
            )
        if next_steps:
            return result(
                False,
                f"{task.id} is {task.status.value} but the session still plans "
                f"{len(next_steps)} next step(s): {_listing(next_steps)}",
            )
        return result(True, f"{task.id} is {task.status.value}; {progress}")
    detail = f"{task.id} is {task.status.value}; {progress}"
    if task.steps and not declared_left:
        detail += "; every declared step is done, the task may be ready to close"
    return result(True, detail)


def check_dependencies(view: SessionView) -> ValidationCheck:
    """dependency-validation (critical): do the current task's dependencies still hold?"""

    def result(passed: bool, detail: str) -> ValidationCheck:
        return ValidationCheck(name=DEPENDENCIES, critical=True, passed=passed, detail=detail)

    task = view.current_task
    if task is None or not task.dependencies:
        return result(True, "the current task has no dependencies")
    unknown = [d for d in task.dependencies if d not in view.tasks]
    cancelled = [
        d
        for d in task.dependencies
        if d in view.tasks and view.tasks[d].status is TaskStatus.CANCELLED
    ]
    if unknown or cancelled:
        problems = []
        if unknown:
            problems.append(f"unknown task(s): {_listing(unknown)}")
        if cancelled:
            problems.append(f"cancelled task(s): {_listing(cancelled)}")
        return result(False, f"{task.id} depends on " + "; ".join(problems))
    waiting = [d for d in task.dependencies if view.tasks[d].status is not TaskStatus.DONE]
    detail = f"all {len(task.dependencies)} dependencies of {task.id} are known"
    if waiting:
        detail += f"; still open: {_listing(waiting)}"
    return result(True, detail)


def check_conversation(integrity: Integrity) -> ValidationCheck:
    """conversation-integrity (non-critical, reported): is the saved conversation whole?"""
    if integrity.ok:
        return ValidationCheck(
            name=CONVERSATION,
            critical=False,
            passed=True,
            detail="every record verified; every tool call has its result",
        )
    parts = []
    if integrity.journal_damage:
        parts.append(f"{len(integrity.journal_damage)} damaged journal part(s)")
    if integrity.point_damage:
        parts.append(f"{len(integrity.point_damage)} damaged recovery point(s) skipped")
    if integrity.emergency_damage:
        parts.append("the emergency backup failed verification")
    if integrity.dangling_calls:
        parts.append(f"{len(integrity.dangling_calls)} tool call(s) without a result (repaired)")
    if integrity.partial_message_seq is not None:
        parts.append("a half-written assistant turn")
    return ValidationCheck(name=CONVERSATION, critical=False, passed=False, detail="; ".join(parts))


def validate_context(
    view: SessionView,
    diff: StateDiff,
    saved_code: CodeContext | None,
    observation: ProjectObservation | None,
    integrity: Integrity,
) -> list[ValidationCheck]:
    """Run every check, in the specification's order, conversation integrity last."""
    return [
        check_project_state(diff, saved_code, observation),
        check_file_modifications(diff),
        check_task_status(view),
        check_dependencies(view),
        check_conversation(integrity),
    ]


def failed_critical(checks: Sequence[ValidationCheck]) -> list[ValidationCheck]:
    """The critical checks that failed."""
    return [c for c in checks if c.critical and not c.passed]
