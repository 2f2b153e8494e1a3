"""Builders for the recovery engine tests: journals, points, observations, fixed times.

Every time is injected; nothing here reads a clock or a disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from agent_continuity.model import (
    CodeContext,
    EmergencyBackup,
    Event,
    EventKind,
    ProjectObservation,
    RecoveryPoint,
    SessionRecord,
    SessionStatus,
    Trigger,
)
from agent_continuity.recovery import RecoverySettings, SavedState
from agent_continuity.replay import SessionView

T0 = datetime(2025, 1, 24, 10, 0, tzinfo=UTC)
SID = "SESSION-250124-001"
HEAD = "a" * 40
NEW_HEAD = "b" * 40
BRANCH = "feature/sms-integration"
SETTINGS = RecoverySettings()


class Journal:
    """A session journal written event by event, each a minute after the last."""

    def __init__(self, session_id: str = SID, start: datetime = T0, **record: Any) -> None:
        self.at = start
        self.events: list[Event] = []
        draft = SessionRecord(
            id=session_id,
            type="task-execution",
            created=start,
            last_activity=start,
            user_id="alice",
            **record,
        )
        self.add(EventKind.SESSION, {"record": draft.to_wire()}, minutes=0)

    def add(self, kind: EventKind, payload: dict[str, Any], minutes: float = 1) -> Event:
        self.at += timedelta(minutes=minutes)
        event = Event(seq=len(self.events) + 1, kind=kind, at=self.at, payload=payload)
        self.events.append(event)
        return event

    # -- one method per event kind -----------------------------------------

    def message(self, role: str, text: str, partial: bool = False) -> Event:
        payload: dict[str, Any] = {"role": role, "text": text}
        if partial:
            payload["partial"] = True
        return self.add(EventKind.MESSAGE, payload)

    def decision(self, text: str) -> Event:
        return self.add(EventKind.DECISION, {"text": text})

    def task(self, task_id: str, status: str = "in-progress", **fields: Any) -> Event:
        return self.add(EventKind.TASK, {"id": task_id, "status": status, **fields})

    def state(self, **payload: Any) -> Event:
        return self.add(EventKind.STATE, payload)

    def step_done(self, step: str) -> Event:
        return self.add(EventKind.STEP_COMPLETED, {"step": step})

    def next_step(self, step: str) -> Event:
        return self.add(EventKind.NEXT_STEP, {"step": step})

    def blocker(self, text: str, resolved: bool = False) -> Event:
        return self.add(EventKind.BLOCKER, {"text": text, "resolved": resolved})

    def tool_call(self, call_id: str, name: str = "run_tests") -> Event:
        return self.add(EventKind.TOOL_CALL, {"callId": call_id, "name": name, "arguments": {}})

    def tool_result(self, call_id: str) -> Event:
        return self.add(EventKind.TOOL_RESULT, {"callId": call_id, "output": "ok"})

    def interrupt(self, cause: str = "process killed", minutes: float = 1) -> Event:
        return self.add(EventKind.LIFECYCLE, {"status": "interrupted", "cause": cause}, minutes)

    # -- derived records --------------------------------------------------

    def view(self, upto: int | None = None) -> SessionView:
        return SessionView.replay(self.events if upto is None else self.events[:upto])

    def point(self, upto: int | None = None, code: CodeContext | None = None) -> RecoveryPoint:
        """A recovery point of the state after the first ``upto`` events (all by default)."""
        view = self.view(upto)
        view.code_context = code if code is not None else git_code(at=view.record.last_activity)
        created = view.record.last_activity
        return view.to_point(f"RECOVERY-250124-001-{created:%H%M%S}", created, Trigger.AUTO)

    def after(self, point: RecoveryPoint) -> list[Event]:
        return [e for e in self.events if e.seq > point.seq]

    def saved(self, point: RecoveryPoint | None = None, **overrides: Any) -> SavedState:
        """The saved state a caller would load: registry record, point, events after it."""
        fields: dict[str, Any] = {
            "record": self.view().record,
            "point": point,
            "events": self.after(point) if point is not None else list(self.events),
            # What the point refers to for its recent messages, as a caller reads it.
            "window": [e for e in self.events if point and point.replay_from < e.seq <= point.seq],
        }
        fields.update(overrides)
        return SavedState(**fields)


def git_code(branch: str | None = BRANCH, head: str = HEAD, at: datetime = T0) -> CodeContext:
    return CodeContext(
        vcs="git", working_branch=branch, head=head, observed_at=at, build_status="passing"
    )


def observe(
    *,
    branch: str | None = BRANCH,
    head: str = HEAD,
    changes: dict[str, str] | None = None,
    commits: Sequence[str] = (),
    reachable: bool | None = True,
    missing: Sequence[str] = (),
    at: datetime = T0,
    vcs: str = "git",
) -> ProjectObservation:
    code = CodeContext(
        vcs=vcs,
        working_branch=branch if vcs == "git" else None,
        head=head if vcs == "git" else None,
        observed_at=at,
    )
    return ProjectObservation(
        observed_at=at,
        code=code,
        file_changes=dict(changes or {}),
        commits_since=list(commits),
        saved_head_reachable=reachable if vcs == "git" else None,
        missing_paths=list(missing),
    )


def sms_session() -> Journal:
    """The specification's example session: SMS integration, 85 % done, then killed."""
    j = Journal()
    j.task(
        "TASK-6-004",
        "in-progress",
        title="SMS Integration Framework",
        phase="phase-6",
        steps=[
            "database-schema-created",
            "sms-provider-interface-implemented",
            "admin-interface-integration",
            "test-sms-endpoints",
        ],
    )
    j.state(
        currentStep="admin-interface-integration",
        progress=85,
        activeFiles=["includes/class-sms-manager.php", "ongoing.md"],
    )
    j.decision("Using Twilio as primary SMS provider")
    j.decision("Implementing mock provider for testing")
    j.step_done("database-schema-created")
    j.step_done("sms-provider-interface-implemented")
    j.next_step("test-sms-endpoints")
    j.next_step("integrate-with-settings")
    j.message("user", "Let's wire the SMS settings into the admin page.")
    j.message("assistant", "Adding the settings panel to the admin interface now.")
    return j


def backup(
    session_id: str = SID,
    *,
    updated: datetime = T0,
    status: SessionStatus = SessionStatus.INTERRUPTED,
    **fields: Any,
) -> EmergencyBackup:
    return EmergencyBackup(session_id=session_id, updated=updated, status=status, **fields)
