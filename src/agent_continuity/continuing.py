"""Other ways on from a stopped session than resuming it where it stopped.

A new session seeded from it (``start --recover``), where one task stands
(RESUME_TASK), and what the emergency backups alone still tell. Each reads
through :mod:`~agent_continuity.restore`, which recovers sessions in place.
"""

from __future__ import annotations

from typing import Any

from agent_continuity import lifecycle
from agent_continuity.errors import (
    CorruptRecord,
    InvalidInput,
    NoActiveSession,
    SessionStillActive,
)
from agent_continuity.model import EventKind, SessionStatus, Trigger
from agent_continuity.recovery import (
    EmergencyResult,
    RecoveryResult,
    ResumeTaskResult,
    emergency_context,
    resume_task,
)
from agent_continuity.restore import analyse, archive, log_recovery, observe_since, pick_session
from agent_continuity.runtime import Runtime


def start_recovered(
    rt: Runtime,
    session_id: str | None,
    *,
    session_type: str | None = None,
    owner_pid: int | None = None,
) -> RecoveryResult:
    """``start --recover``: a new session seeded from a recovered one and linked to it."""
    lifecycle.detect_interruptions(rt)
    old = pick_session(rt, session_id, None)
    if old.status is SessionStatus.ACTIVE:  # owner alive: a copy would be a second writer
        raise SessionStillActive(
            f"{old.id} is still active; `continuity end --session {old.id}` (or `interrupt "
            f"--session {old.id} --cause TEXT`) first, or keep writing to it with --session"
        )
    result = analyse(rt, old)
    view = result.view
    if view is None:
        raise CorruptRecord(
            f"nothing of {old.id} could be recovered; `continuity emergency` shows what is left"
        )
    state, context = view.record.state, view.record.context
    fresh = lifecycle.start(
        rt,
        type=session_type or old.type,
        owned_by_process=False,
        auto_save=False,
        recovered_from=old.id,
        owner_pid=owner_pid,
    )
    drafts = []
    task = view.current_task
    if context.current_task:
        payload: dict[str, Any] = {"id": context.current_task, "current": True}
        if task is not None:
            payload |= {
                "title": task.title,
                "status": task.status.value,
                "steps": task.steps,
                "dependencies": task.dependencies,
            }
        if context.current_phase:
            payload["phase"] = context.current_phase
        drafts.append(fresh.draft(EventKind.TASK, payload))
    seeded: dict[str, Any] = {
        "summary": result.context_summary,
        "progress": state.progress,
        "activeFiles": context.active_files,
    }
    if state.current_step:
        seeded["currentStep"] = state.current_step
    if context.current_phase and not context.current_task:
        seeded["phase"] = context.current_phase
    drafts.append(fresh.draft(EventKind.STATE, seeded))
    drafts += [fresh.draft(EventKind.STEP_COMPLETED, {"step": s}) for s in state.completed_steps]
    drafts += [fresh.draft(EventKind.NEXT_STEP, {"step": s}) for s in state.next_steps]
    drafts += [fresh.draft(EventKind.BLOCKER, {"text": b}) for b in state.blockers]
    drafts += [fresh.draft(EventKind.DECISION, {"text": d}) for d in context.key_decisions]
    fresh.append_group(drafts)
    fresh.checkpoint(Trigger.USER_REQUEST)
    if old.status is SessionStatus.INTERRUPTED:
        if old.id in rt.store.lost_journals():
            result.warnings.append(
                f"{old.id} was not archived: its journal is missing, so nothing can be "
                "written to it; `continuity verify --repair` rebuilds the journal"
            )
        else:
            archive(rt, old)
    result.outcome = "new-session"
    result.new_session_id = fresh.id
    log_recovery(rt, old, result, "auto", True)
    return result


def resume(
    rt: Runtime, task_id: str, session_id: str | None, from_step: str | None
) -> ResumeTaskResult:
    """RESUME_TASK: where a task stands, from the newest session that worked on it."""
    if not task_id.strip():
        raise InvalidInput("give the task to resume, e.g. continuity resume TASK-6-004")
    if session_id:
        record = lifecycle.get(rt, session_id)
    else:
        touched = [r for r in lifecycle.sessions(rt) if r.context.current_task == task_id]
        if not touched:
            raise NoActiveSession(
                f"no session worked on {task_id}; `continuity list` shows the sessions"
            )
        record = max(touched, key=lambda r: (r.last_activity, r.id))
    view = lifecycle.load(rt, record.id).view
    code = None
    if rt.observer is not None:
        code = observe_since(rt, view.code_context, list(view.record.context.active_files))
    return resume_task(view, task_id, from_step, code)


def emergency(rt: Runtime) -> EmergencyResult:
    """Emergency recovery: critical project info from the emergency backups alone."""
    backups, damage = rt.store.list_emergency()
    observation = observe_since(rt, None, []) if rt.observer is not None else None
    return emergency_context(
        backups, now=rt.now(), observation=observation, user_id=rt.user_id, damage=damage
    )
