"""What ``continuity update`` records: several changes to a session as one atomic group."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agent_continuity.errors import InvalidInput
from agent_continuity.model import EventDraft, EventKind, Trigger

Draft = Callable[[EventKind, dict[str, Any]], EventDraft]


def update_group(
    draft: Draft,
    *,
    task: str | None = None,
    phase: str | None = None,
    step: str | None = None,
    complete: Sequence[str] = (),
    next_steps: Sequence[str] = (),
    blockers: Sequence[str] = (),
    unblock: Sequence[str] = (),
    decisions: Sequence[str] = (),
    progress: int | None = None,
    summary: str | None = None,
    files: Sequence[str] = (),
    preferences: Mapping[str, Any] | None = None,
    pending: Sequence[str] = (),
    pending_done: Sequence[str] = (),
) -> tuple[list[EventDraft], Trigger | None]:
    """The events of one update, and the strongest trigger among them.

    Task completion beats a decision, which beats a file change; that one
    trigger makes one recovery point after the group.

    Args:
        draft: Stamps an event with the manager's clock.
        preferences: User preferences to merge into the session's.
        pending: Operations the agent starts and has not finished.
        pending_done: Operations declared pending that are finished.

    Raises:
        InvalidInput: If nothing was given to record, or a text is empty.
    """
    drafts: list[EventDraft] = []
    if task:
        payload: dict[str, Any] = {"id": task, "current": True}
        if phase:
            payload["phase"] = phase
        drafts.append(draft(EventKind.TASK, payload))
    state: dict[str, Any] = {}
    if phase and not task:
        state["phase"] = phase
    if step:
        state["currentStep"] = step
    if progress is not None:
        state["progress"] = progress
    if summary is not None:
        state["summary"] = summary
    if preferences:
        state["preferences"] = dict(preferences)
    if pending:
        state["pending"] = list(pending)
    if pending_done:
        state["pendingDone"] = list(pending_done)
    if any(not str(op).strip() for op in (*pending, *pending_done)) or any(
        not str(key).strip() for key in preferences or {}
    ):
        raise InvalidInput("pending operations and preference names must not be empty")
    if state:
        drafts.append(draft(EventKind.STATE, state))
    drafts += [draft(EventKind.STEP_COMPLETED, {"step": s}) for s in complete]
    drafts += [draft(EventKind.NEXT_STEP, {"step": s}) for s in next_steps]
    drafts += [draft(EventKind.BLOCKER, {"text": b, "resolved": False}) for b in blockers]
    drafts += [draft(EventKind.BLOCKER, {"text": b, "resolved": True}) for b in unblock]
    drafts += [draft(EventKind.DECISION, {"text": d}) for d in decisions]
    drafts += [draft(EventKind.FILE, {"path": f, "change": "modified"}) for f in files]
    if not drafts:
        raise InvalidInput("nothing to record; give at least one option (see --help)")
    if any(
        not str(v).strip()
        for d in drafts
        for k, v in d.payload.items()
        if k in ("step", "text", "path", "id")
    ):
        raise InvalidInput("steps, blockers, decisions, files and tasks must not be empty")
    trigger = (
        Trigger.TASK_COMPLETION
        if complete
        else Trigger.MAJOR_DECISION
        if decisions
        else Trigger.FILE_MODIFICATION
        if files
        else None
    )
    return drafts, trigger
