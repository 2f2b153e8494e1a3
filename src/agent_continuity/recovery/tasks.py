"""RESUME_TASK: pick one task up from its last checkpoint (or from a chosen step).

Answers ``{taskContext, currentStep, progress, nextActions}`` from a recovered
:class:`~agent_continuity.replay.SessionView`, optionally with an observation
of the project so the agent knows which files moved since.
"""

from __future__ import annotations

from collections.abc import Iterable

from agent_continuity.errors import InvalidIdentifier, InvalidInput
from agent_continuity.ids import make_continuation_id
from agent_continuity.model import ProjectObservation, Task, TaskStatus
from agent_continuity.replay import SessionView

from .result import ResumeTaskResult, TaskContext

_RECENT_DECISIONS = 5


def _unique(items: Iterable[str | None]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        if item:
            seen.setdefault(item, None)
    return list(seen)


def _continuation(session_id: str, step: str | None) -> str:
    try:
        return make_continuation_id(session_id, step or "RESUME")
    except InvalidIdentifier:
        # A step without letters or digits cannot name a continuation.
        return make_continuation_id(session_id, "RESUME")


def _percent(done: int, total: int) -> int:
    return round(100 * done / total) if total else 0


def resume_task(
    view: SessionView,
    task_id: str,
    from_step: str | None = None,
    observation: ProjectObservation | None = None,
) -> ResumeTaskResult:
    """Resume ``task_id`` from its last checkpoint in the session ``view`` holds.

    Args:
        view: The recovered session (e.g. ``RecoveryResult.view``).
        task_id: The task to resume; the session must have worked on it.
        from_step: Restart from this step instead of the checkpoint (it must be
            one of the task's declared steps or the session's steps).
        observation: The project now, to list the files changed since the save.

    Returns:
        The task's context, the step to do now, the progress and the actions after it.

    Raises:
        InvalidInput: If the session never touched ``task_id``, or ``from_step``
            is not a step of that task.
    """
    record = view.record
    state = record.state
    is_current = record.context.current_task == task_id
    task = view.tasks.get(task_id)
    warnings: list[str] = []
    if task is None and not is_current:
        known = _unique([record.context.current_task, *sorted(view.tasks)])
        raise InvalidInput(
            f"{record.id} never worked on {task_id}; the tasks it knows are "
            f"{', '.join(known) if known else '(none)'}. Resume one of those, or give the "
            "session that worked on it with --session"
        )
    if task is None:
        task = Task(id=task_id)
        warnings.append(f"{task_id} is the current task but no task event described it")

    completed = set(state.completed_steps)
    # Session-level steps belong to the current task only; another task has
    # nothing but its declared steps.
    session_steps = [*state.completed_steps, state.current_step, *state.next_steps]
    known_steps = _unique([*task.steps, *(session_steps if is_current else [])])

    current: str | None
    actions: list[str]
    if from_step is not None:
        if from_step not in known_steps:
            raise InvalidInput(
                f"{task_id} has no step {from_step!r}; its steps are "
                f"{', '.join(known_steps) if known_steps else '(none recorded)'}"
            )
        current = from_step
        if from_step in task.steps:
            index = task.steps.index(from_step)
            planned = state.next_steps if is_current else []
            actions = [s for s in _unique([*task.steps[index + 1 :], *planned]) if s != from_step]
            progress = _percent(index, len(task.steps))
        else:
            nexts = state.next_steps
            actions = nexts[nexts.index(from_step) + 1 :] if from_step in nexts else list(nexts)
            progress = state.progress
        if from_step in completed:
            warnings.append(f"step {from_step} was already completed; resuming repeats it")
    else:
        declared_left = [s for s in task.steps if s not in completed]
        if is_current:
            plan = _unique([state.current_step, *state.next_steps, *declared_left])
            progress = state.progress or _percent(
                len(task.steps) - len(declared_left), len(task.steps)
            )
        else:
            plan = declared_left
            progress = _percent(len(task.steps) - len(declared_left), len(task.steps))
        current, actions = (plan[0], plan[1:]) if plan else (None, [])
        if task.status is TaskStatus.DONE:
            progress = 100

    if not task.status.is_open:
        warnings.append(f"{task_id} is {task.status.value}; there is nothing left to resume")
        if from_step is None:
            current, actions = None, []
    blockers = list(state.blockers) if is_current else []
    actions = [f"resolve blocker: {b}" for b in blockers] + actions
    open_dependencies = [
        d
        for d in task.dependencies
        if d not in view.tasks or view.tasks[d].status is not TaskStatus.DONE
    ]
    if open_dependencies:
        warnings.append(f"{task_id} depends on unfinished task(s): {', '.join(open_dependencies)}")

    changed: list[str] = []
    missing: list[str] = []
    if observation is not None:
        changed = [f"{path} ({kind})" for path, kind in sorted(observation.file_changes.items())]
        missing = sorted(observation.missing_paths)
        if changed:
            warnings.append(f"{len(changed)} file(s) changed since the checkpoint; review them")
        if missing:
            warnings.append(f"{len(missing)} active file(s) no longer exist")

    context = TaskContext(
        id=task.id,
        title=task.title,
        status=task.status,
        phase=task.phase or (record.context.current_phase if is_current else None),
        steps=list(task.steps),
        completed_steps=[s for s in known_steps if s in completed],
        dependencies=list(task.dependencies),
        is_current_task=is_current,
        blockers=blockers,
        key_decisions=list(record.context.key_decisions[-_RECENT_DECISIONS:]),
        conversation_summary=record.context.conversation_summary,
        last_action=view.last_action,
        changed_files=changed,
        missing_files=missing,
    )
    return ResumeTaskResult(
        session_id=record.id,
        task_context=context,
        current_step=current,
        progress=max(0, min(100, progress)),
        next_actions=actions,
        continuation_id=_continuation(record.id, current),
        warnings=warnings,
    )
