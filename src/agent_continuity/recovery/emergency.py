"""Emergency recovery: critical project info, urgent tasks and basic context.

Works from emergency backups alone (they are kept apart from journals and
recovery points precisely so they survive when those do not), optionally
helped by a project-state block and an observation of the project.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from agent_continuity.model import (
    Damage,
    EmergencyBackup,
    ProjectObservation,
    ProjectState,
    SessionStatus,
)

from .confidence import describe_hours
from .protocols import protocol_report
from .result import CriticalInfo, EmergencyResult, Status, UrgentTask

_CLOSED = (SessionStatus.COMPLETED, SessionStatus.ARCHIVED)
_STATUS_RANK = {SessionStatus.INTERRUPTED: 0, SessionStatus.ACTIVE: 1}
_LAST_DECISIONS = 5


def _urgency(backup: EmergencyBackup) -> tuple[int, int, float]:
    # Blocked work first, then sessions that died mid-task, newest first within each.
    return (
        0 if backup.blockers else 1,
        _STATUS_RANK.get(backup.status, 2),
        -backup.updated.timestamp(),
    )


def _reason(backup: EmergencyBackup) -> str:
    if backup.blockers:
        return f"blocked ({len(backup.blockers)} blocker(s))"
    if backup.status is SessionStatus.INTERRUPTED:
        return "interrupted mid-task"
    return f"session {backup.status.value}"


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


def emergency_context(
    backups: Sequence[EmergencyBackup],
    *,
    now: datetime,
    project_state: ProjectState | None = None,
    observation: ProjectObservation | None = None,
    user_id: str | None = None,
    damage: Sequence[Damage] = (),
) -> EmergencyResult:
    """Build the minimal context of an emergency recovery.

    Args:
        backups: Every readable emergency backup (``Store.list_emergency()``).
        now: The current time.
        project_state: The newest projectState block, if any survived.
        observation: The project now (branch, HEAD, build status), if observed.
        user_id: Keep only this user's sessions; None for everyone's.
        damage: Backups that could not be read, to report them.

    Returns:
        Urgent tasks (blocked first, then interrupted, newest first), critical
        project info and a paragraph of basic context. ``status`` is
        ``failed`` when no backup is left to work from, ``partial`` when some
        were damaged, else ``success``.
    """
    mine = [b for b in backups if user_id is None or b.user_id == user_id]
    unfinished = sorted((b for b in mine if b.status not in _CLOSED), key=_urgency)
    warnings = [
        f"emergency backup {d.location} could not be read ({d.kind}: {d.detail})" for d in damage
    ]
    urgent = [
        UrgentTask(
            session_id=b.session_id,
            task=b.current_task,
            phase=b.current_phase,
            step=b.current_step,
            progress=b.progress,
            blockers=list(b.blockers),
            next_steps=list(b.next_steps),
            session_status=b.status.value,
            updated=b.updated,
            reason=_reason(b),
        )
        for b in unfinished
    ]
    newest = sorted(mine, key=lambda b: b.updated, reverse=True)
    info = CriticalInfo(
        current_phase=(project_state.current_phase if project_state else None)
        or next((b.current_phase for b in newest if b.current_phase), None),
        project_health=project_state.project_health
        if project_state
        else ("blocked" if any(b.blockers for b in unfinished) else "unknown"),
        critical_issues=_unique(
            [
                *(project_state.critical_issues if project_state else []),
                *(blocker for b in unfinished for blocker in b.blockers),
            ]
        ),
        recent_completions=list(project_state.recent_completions) if project_state else [],
        working_branch=observation.code.working_branch if observation else None,
        head=observation.code.head if observation else None,
        build_status=observation.code.build_status if observation else "unknown",
        last_decisions=_unique([b.last_decision or "" for b in newest])[:_LAST_DECISIONS],
    )
    next_steps: list[str] = []
    if urgent:
        top = urgent[0]
        next_steps = [f"resolve blocker: {b}" for b in top.blockers] + list(top.next_steps)
    status: Status = "failed" if not mine else ("partial" if damage else "success")
    if not mine:
        warnings.append(
            "no emergency backup survived"
            + (f" for user {user_id}" if user_id is not None else "")
            + "; nothing is known of earlier sessions"
        )
    basic = _basic_context(urgent, info, len(mine), now)
    return EmergencyResult(
        status=status,
        critical_info=info,
        urgent_tasks=urgent,
        basic_context=basic,
        next_steps=next_steps,
        warnings=warnings,
        sessions_considered=len(mine),
        protocol=protocol_report(
            "emergency",
            {
                "load-critical-project-info": (
                    f"phase {info.current_phase or 'not set'}, health {info.project_health}, "
                    f"{len(info.critical_issues)} critical issue(s), build {info.build_status}"
                ),
                "identify-urgent-tasks": f"{len(urgent)} unfinished session(s) of {len(mine)}",
                "establish-basic-context": basic,
            },
        ),
    )


def _basic_context(
    urgent: Sequence[UrgentTask], info: CriticalInfo, considered: int, now: datetime
) -> str:
    if not considered:
        return "No emergency backup survived; start from the project itself."
    phase = f"Phase {info.current_phase}. " if info.current_phase else ""
    if not urgent:
        return f"{phase}All {considered} known session(s) were completed; nothing is urgent."
    top = urgent[0]
    ago = describe_hours(max(0.0, (now - top.updated).total_seconds() / 3600))
    work = top.task or "no task recorded"
    if top.step:
        work += f", step {top.step}"
    text = (
        f"{phase}{len(urgent)} unfinished session(s). Most urgent: {top.session_id} — {work}, "
        f"{top.progress}% done, {top.reason}, last saved {ago} ago."
    )
    if top.blockers:
        text += " Blockers: " + "; ".join(top.blockers) + "."
    if top.next_steps:
        text += " Next: " + top.next_steps[0] + "."
    return text
