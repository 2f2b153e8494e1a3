"""State synchronisation: what moved between the saved state and now.

The project observer already compared the work tree with the saved code
context (it did the I/O); this module only sorts its findings into the
``stateDiff`` block and adds what the journal says about tasks.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent_continuity.model import CodeContext, ProjectObservation, Task

from .result import StateDiff, TaskChange

_KINDS = ("modified", "added", "deleted")


def task_changes(before: Mapping[str, Task] | None, after: Mapping[str, Task]) -> list[TaskChange]:
    """Tasks whose status differs between two states, sorted by id.

    Args:
        before: The tasks as saved (the recovery point); None when nothing was
            saved to compare with, which yields no changes rather than listing
            every task as new.
        after: The tasks as recovered (point plus journal).
    """
    if before is None:
        return []
    changes: list[TaskChange] = []
    for task_id in sorted(set(before) | set(after)):
        old, new = before.get(task_id), after.get(task_id)
        old_status = old.status if old is not None else None
        new_status = new.status if new is not None else None
        if old_status != new_status:
            known = new if new is not None else old
            title = known.title if known is not None else ""
            changes.append(TaskChange(id=task_id, title=title, before=old_status, after=new_status))
    return changes


def diff_state(
    observation: ProjectObservation | None,
    saved_code: CodeContext | None,
    *,
    tasks_before: Mapping[str, Task] | None = None,
    tasks_after: Mapping[str, Task] | None = None,
) -> StateDiff:
    """Build the ``stateDiff`` block.

    Args:
        observation: What the project observer saw now, relative to ``saved_code``;
            None when the project could not be observed.
        saved_code: The code context that was saved (the recovery point's); None
            when none was captured.
        tasks_before: Tasks as saved, for ``taskChanges``.
        tasks_after: Tasks as recovered, for ``taskChanges``.

    Returns:
        The diff, every path list sorted. A change kind the observer does not
        name (neither added nor deleted) counts as modified.
    """
    buckets: dict[str, list[str]] = {kind: [] for kind in _KINDS}
    current = observation.code if observation is not None else None
    if observation is not None:
        for path, kind in observation.file_changes.items():
            buckets[kind if kind in buckets else "modified"].append(path)
    saved_branch = saved_code.working_branch if saved_code is not None else None
    current_branch = current.working_branch if current is not None else None
    return StateDiff(
        modified_files=sorted(buckets["modified"]),
        added_files=sorted(buckets["added"]),
        deleted_files=sorted(buckets["deleted"]),
        # Unknown saved branch: nothing to compare with, so nothing changed that we can tell.
        branch_changed=saved_branch is not None and current_branch != saved_branch,
        saved_branch=saved_branch,
        current_branch=current_branch,
        saved_head=saved_code.head if saved_code is not None else None,
        current_head=current.head if current is not None else None,
        saved_head_reachable=observation.saved_head_reachable if observation else None,
        new_commits=list(observation.commits_since) if observation is not None else [],
        task_changes=task_changes(tasks_before, tasks_after or {}),
        missing_active_files=sorted(set(observation.missing_paths)) if observation else [],
    )


def describe_task_change(change: TaskChange) -> str:
    """``TASK-1: open -> done`` (``new`` / ``gone`` when the task appeared or vanished)."""
    before = change.before.value if change.before is not None else "new"
    after = change.after.value if change.after is not None else "gone"
    return f"{change.id}: {before} -> {after}"


def describe_diff(diff: StateDiff) -> str:
    """One line summarising a diff (the state-synchronisation step's detail)."""
    parts = [
        f"{len(diff.modified_files)} modified, {len(diff.added_files)} added, "
        f"{len(diff.deleted_files)} deleted file(s)"
    ]
    if diff.saved_branch is None:
        parts.append(f"branch {diff.current_branch or 'unknown'} (no saved branch to compare)")
    elif diff.branch_changed:
        parts.append(f"branch changed {diff.saved_branch} -> {diff.current_branch or 'none'}")
    else:
        parts.append(f"branch unchanged ({diff.saved_branch})")
    if diff.saved_head_reachable is False:
        parts.append("saved HEAD no longer an ancestor")
    parts.append(f"{len(diff.new_commits)} new commit(s)")
    if diff.task_changes:
        parts.append(f"{len(diff.task_changes)} task(s) changed status")
    if diff.missing_active_files:
        parts.append(f"{len(diff.missing_active_files)} active file(s) missing")
    return "; ".join(parts)
