"""Materialise a session from its journal: the fold of events into state.

A :class:`SessionView` starts from a recovery point (or from the journal's
first ``session`` event) and applies the events after it. The same fold runs
live in the session handle, in recovery and in ``verify --repair``, so a
session recovered from disk is exactly the session that was running.

Event payloads, by kind:

=============== ===========================================================
session         ``{"record": <SessionRecord wire form>}``
lifecycle       ``{"status": "...", "cause": "...", "continuationId", "recoveredFrom"}``
lease           ``{"token": N, "holder": "..."}``
message         ``{"role": "user|assistant|system|tool", "text": "...", "partial": bool}``
decision        ``{"text": "..."}``
step-completed  ``{"step": "..."}``
next-step       ``{"step": "..."}``
blocker         ``{"text": "...", "resolved": bool}``
task            ``{"id", "title", "status", "phase", "steps", "dependencies", "current"}``
state           any of ``{"phase", "currentStep", "progress", "summary", "activeFiles",
                "preferences", "pending": [...], "pendingDone": [...]}`` (operations
                the agent declared pending, and those it finished)
file            ``{"path": "...", "change": "modified|added|deleted"}``
error           ``{"message": "...", "type": "..."}``
tool-call       ``{"callId": "...", "name": "...", "arguments": ...}``
tool-result     ``{"callId": "...", "output": ..., "isError": bool, "synthetic": bool}``
note            ``{"text": "..."}``
=============== ===========================================================
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agent_continuity.captured import ai_agent_state, conversation_context
from agent_continuity.errors import CorruptRecord
from agent_continuity.lost_events import lost_in
from agent_continuity.model import (
    POINT_VERSION,
    AiAgentState,
    CodeContext,
    ConversationContext,
    Event,
    EventKind,
    Interruption,
    LostEvent,
    ProjectState,
    RecoveryPoint,
    SessionRecord,
    SessionStatus,
    Task,
    TaskStatus,
    ToolCall,
    Trigger,
)
from agent_continuity.prompt_text import clip

RECENT_MESSAGES = 20
#: A point refers to the journal for the recent messages of (at most) its last
#: this many events; older ones of the window it holds itself. Loading a point
#: therefore decodes at most this many events before it, however many tool
#: calls came between two messages.
WINDOW_EVENTS = 256
RECENT_ERRORS = 10
MAX_ACTIVE_FILES = 50


@dataclass
class SessionView:
    """A session's state as of journal sequence ``seq``.

    Build one with :meth:`starting_at`, :meth:`from_first_event`,
    :meth:`from_point` or :meth:`replay`.
    """

    _record: SessionRecord
    seq: int = 0
    tasks: dict[str, Task] = field(default_factory=dict)
    pending_calls: dict[str, ToolCall] = field(default_factory=dict)
    user_preferences: dict[str, Any] = field(default_factory=dict)
    # Operations the agent declared pending and has not declared done, oldest first.
    declared_operations: list[str] = field(default_factory=list)
    last_action: str = ""
    message_count: int = 0
    recent_messages: deque[dict[str, Any]] = field(
        default_factory=lambda: deque(maxlen=RECENT_MESSAGES)
    )
    recent_errors: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_ERRORS))
    partial_message_seq: int | None = None
    project_state: ProjectState = field(default_factory=ProjectState)
    conversation_context: ConversationContext = field(default_factory=ConversationContext)
    code_context: CodeContext = field(default_factory=CodeContext)
    ai_agent_state: AiAgentState = field(default_factory=AiAgentState)
    lost_events: list[LostEvent] = field(default_factory=list)
    # Appends move the record's lastSeq and lastActivity on every event; they are
    # folded into the (immutable) record only when someone reads it, not per event.
    _stamp_pending: bool = field(default=False, repr=False)
    _activity: datetime | None = field(default=None, repr=False)

    @property
    def record(self) -> SessionRecord:
        """The session's registry entry as of ``seq``."""
        if self._stamp_pending:
            updates: dict[str, Any] = {"last_seq": self.seq}
            if self._activity is not None:
                updates["last_activity"] = self._activity
            self._record = self._record.model_copy(update=updates)
            self._stamp_pending, self._activity = False, None
        return self._record

    @record.setter
    def record(self, value: SessionRecord) -> None:
        self._record = value
        self._stamp_pending, self._activity = False, None

    # -- construction ---------------------------------------------------

    @classmethod
    def starting_at(cls, record: SessionRecord, seq: int) -> SessionView:
        """A view of ``record`` taken to hold every event up to ``seq``."""
        return cls(_record=record, seq=seq)

    @classmethod
    def from_first_event(cls, event: Event) -> SessionView:
        """Start a view from a journal's ``session`` event.

        Raises:
            CorruptRecord: If the event is not a session event.
        """
        if event.kind is not EventKind.SESSION or "record" not in event.payload:
            raise CorruptRecord(f"journal does not start with a session event (seq {event.seq})")
        record = SessionRecord.model_validate(event.payload["record"])
        view = cls(_record=record.model_copy(update={"last_seq": event.seq}), seq=event.seq)
        return view

    @classmethod
    def from_point(cls, point: RecoveryPoint, window: Iterable[Event] = ()) -> SessionView:
        """Start a view from a recovery point.

        Args:
            point: The point.
            window: Journal events at or before ``point.seq``; those from its
                ``messages_from`` on give back the recent messages the point
                refers to (a version 2 point). Without them, such a point's
                recent messages are only the ones it holds.
        """
        view = cls(
            _record=point.session.model_copy(deep=True),
            seq=point.seq,
            tasks={t.id: t.model_copy() for t in point.tasks},
            pending_calls={c.call_id: c.model_copy() for c in point.pending_operations},
            user_preferences=dict(point.user_preferences),
            declared_operations=list(point.declared_operations),
            last_action=point.last_action,
            message_count=point.message_count,
            project_state=point.project_state.model_copy(deep=True),
            conversation_context=point.conversation_context.model_copy(deep=True),
            code_context=point.code_context.model_copy(deep=True),
            ai_agent_state=point.ai_agent_state.model_copy(deep=True),
            lost_events=list(point.lost_events),
        )
        view.recent_messages.extend(point.recent_messages)
        if point.messages_from is not None:
            first, last = point.messages_from, point.seq
            view.recent_messages.extend(
                message_entry(e.seq, e.payload)
                for e in window
                if first <= e.seq <= last and e.kind is EventKind.MESSAGE
            )
        recent = view.recent_messages
        if recent and recent[-1].get("partial"):
            view.partial_message_seq = int(recent[-1].get("seq", 0)) or None
        return view

    @classmethod
    def replay(cls, events: Iterable[Event], start: RecoveryPoint | None = None) -> SessionView:
        """Fold ``events`` onto ``start`` (or onto the first event when no point is given)."""
        iterator = iter(events)
        if start is not None:
            # Events at or before the point are the journal it refers to (its
            # message window); apply() skips them.
            events = list(iterator)
            iterator = iter(events)
            view = cls.from_point(start, [e for e in events if e.seq <= start.seq])
        else:
            try:
                first = next(iterator)
            except StopIteration:
                raise CorruptRecord("the journal holds no session event") from None
            view = cls.from_first_event(first)
        for event in iterator:
            view.apply(event)
        return view

    # -- the fold -------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Apply one event. Events at or below ``seq`` are ignored (already folded)."""
        if event.seq <= self.seq:
            return
        if event.kind is EventKind.MESSAGE:
            _on_message(self, event.payload, event.seq)
        else:
            handler = _HANDLERS.get(event.kind)
            if handler is not None:
                handler(self, event.payload, event.at)
        self.seq = event.seq
        if event.kind not in (EventKind.LEASE, EventKind.LIFECYCLE):
            self._activity = event.at
        self._stamp_pending = True

    # -- outputs --------------------------------------------------------

    @property
    def current_task(self) -> Task | None:
        """The task named by ``context.currentTask``, if the journal knows it."""
        task_id = self.record.context.current_task
        return self.tasks.get(task_id) if task_id else None

    def to_point(self, point_id: str, created: datetime, trigger: Trigger) -> RecoveryPoint:
        """Freeze this view into a recovery point (format :data:`POINT_VERSION`).

        The recent messages stay in the journal: the point names the seq from
        which they are replayed (``messages_from``), and holds only those of
        the window older than :data:`WINDOW_EVENTS` events.
        """
        window = list(self.recent_messages)
        messages_from = None
        if window:
            messages_from = max(int(window[0].get("seq", 0)), self.seq - WINDOW_EVENTS + 1, 1)
            window = [m for m in window if int(m.get("seq", 0)) < messages_from]
        return RecoveryPoint(
            version=POINT_VERSION,
            id=point_id,
            session_id=self.record.id,
            seq=self.seq,
            created=created,
            trigger=trigger,
            session=self.record,
            project_state=self.project_state_now(),
            conversation_context=conversation_context(self),
            code_context=self.code_context,
            ai_agent_state=ai_agent_state(self),
            tasks=list(self.tasks.values()),
            user_preferences=self.user_preferences,
            pending_operations=list(self.pending_calls.values()),
            declared_operations=list(self.declared_operations),
            last_action=self.last_action,
            message_count=self.message_count,
            recent_messages=window,
            messages_from=messages_from,
            lost_events=list(self.lost_events),
        )

    def project_state_now(self) -> ProjectState:
        """The projectState block derived from tasks, phase and blockers."""
        active = [t.id for t in self.tasks.values() if t.status.is_open]
        done = [t.id for t in self.tasks.values() if t.status is TaskStatus.DONE]
        blockers = list(self.record.state.blockers)
        return ProjectState(
            current_phase=self.record.context.current_phase,
            active_tasks=active,
            recent_completions=done[-5:],
            project_health="blocked"
            if blockers
            else ("degraded" if self.recent_errors else "good"),
            critical_issues=blockers + list(self.recent_errors)[-3:],
        )


def _context(view: SessionView, **updates: Any) -> None:
    view.record = view.record.model_copy(
        update={"context": view.record.context.model_copy(update=updates)}
    )


def _state(view: SessionView, **updates: Any) -> None:
    view.record = view.record.model_copy(
        update={"state": view.record.state.model_copy(update=updates)}
    )


def _on_lifecycle(view: SessionView, p: dict[str, Any], at: datetime) -> None:
    status = SessionStatus(p["status"])
    updates: dict[str, Any] = {"status": status}
    if status is SessionStatus.INTERRUPTED:
        cause = str(p.get("cause", "unknown"))
        updates["interruption"] = Interruption(cause=cause, at=_stopped_at(view, p, cause, at))
    elif status is SessionStatus.ACTIVE:
        updates["interruption"] = None
    for key, attr in (("continuationId", "continuation_id"), ("recoveredFrom", "recovered_from")):
        if p.get(key):
            updates[attr] = p[key]
    view.record = view.record.model_copy(update=updates)


def _stopped_at(view: SessionView, p: dict[str, Any], cause: str, at: datetime) -> datetime:
    """When an interrupted session stopped: its owner's last sign of life, never later than ``at``.

    ``at`` is when the interruption was written, which for a death noticed by
    another process may be days after the owner died. The payload's
    ``lastAlive`` says when the owner was last known alive. Journals written
    before it was recorded fall back, for a death noticed by another process
    (``lease-expired``), to the session's last activity: the latest time it is
    known to have been alive.
    """
    try:
        stamped = datetime.fromisoformat(p["lastAlive"])
    except (KeyError, TypeError, ValueError):
        stamped = None  # absent or unreadable: as in an older journal
    if stamped is not None and stamped.tzinfo is not None:
        return min(stamped, at)
    if cause == "lease-expired":
        return min(view.record.last_activity, at)
    return at


def message_entry(seq: int, p: dict[str, Any]) -> dict[str, Any]:
    """The recent-message entry of the message event ``seq`` with payload ``p``."""
    entry: dict[str, Any] = {
        "seq": seq,
        "role": str(p.get("role", "user")),
        "text": clip(str(p.get("text", "")), 2000),
    }
    if p.get("partial"):
        entry["partial"] = True
    return entry


def _on_message(view: SessionView, p: dict[str, Any], seq: int) -> None:
    view.message_count += 1
    entry = message_entry(seq, p)
    role, text = entry["role"], str(p.get("text", ""))
    partial = bool(entry.get("partial"))
    view.recent_messages.append(entry)
    view.last_action = f"{role}: {clip(text)}"
    if role == "assistant":
        view.partial_message_seq = entry["seq"] if partial else None


def _on_decision(view: SessionView, p: dict[str, Any], at: datetime) -> None:
    text = str(p.get("text", ""))
    _context(view, key_decisions=[*view.record.context.key_decisions, text])
    view.last_action = f"decided: {clip(text)}"


def _on_step_completed(view: SessionView, p: dict[str, Any], at: datetime) -> None:
    step = str(p.get("step", ""))
    state = view.record.state
    completed = (
        state.completed_steps if step in state.completed_steps else [*state.completed_steps, step]
    )
    _state(
        view,
        completed_steps=completed,
        next_steps=[s for s in state.next_steps if s != step],
        current_step=None if state.current_step == step else state.current_step,
    )
    view.last_action = f"completed step {step}"


def _on_next_step(view: SessionView, p: dict[str, Any], at: datetime) -> None:
    step = str(p.get("step", ""))
    if step not in view.record.state.next_steps:
        _state(view, next_steps=[*view.record.state.next_steps, step])


def _on_blocker(view: SessionView, p: dict[str, Any], at: datetime) -> None:
    text = str(p.get("text", ""))
    blockers = [b for b in view.record.state.blockers if b != text]
    if not p.get("resolved"):
        blockers.append(text)
        view.last_action = f"blocked: {clip(text)}"
    else:
        view.last_action = f"unblocked: {clip(text)}"
    _state(view, blockers=blockers)


def _on_task(view: SessionView, p: dict[str, Any], at: datetime) -> None:
    task_id = str(p["id"])
    known = view.tasks.get(task_id) or Task(id=task_id)
    updates = {
        attr: p[key]
        for key, attr in (
            ("title", "title"),
            ("status", "status"),
            ("phase", "phase"),
            ("steps", "steps"),
            ("dependencies", "dependencies"),
        )
        if p.get(key) is not None
    }
    view.tasks[task_id] = Task.model_validate({**known.model_dump(), **updates})
    if p.get("current", True):
        changes: dict[str, Any] = {"current_task": task_id}
        if p.get("phase"):
            changes["current_phase"] = p["phase"]
        _context(view, **changes)
    view.last_action = f"task {task_id}: {view.tasks[task_id].status.value}"


def _on_state(view: SessionView, p: dict[str, Any], at: datetime) -> None:
    context: dict[str, Any] = {}
    state: dict[str, Any] = {}
    if "phase" in p:
        context["current_phase"] = p["phase"]
    if "summary" in p:
        context["conversation_summary"] = p["summary"]
    if "activeFiles" in p:
        context["active_files"] = list(p["activeFiles"])[-MAX_ACTIVE_FILES:]
    if "currentStep" in p:
        state["current_step"] = p["currentStep"]
        if p["currentStep"]:
            view.last_action = f"working on {p['currentStep']}"
    if "progress" in p:
        state["progress"] = p["progress"]
    if context:
        _context(view, **context)
    if state:
        view.record = view.record.model_copy(
            update={
                "state": view.record.state.model_validate(
                    {**view.record.state.model_dump(), **state}
                )
            }
        )
    if "preferences" in p and isinstance(p["preferences"], dict):
        view.user_preferences.update(p["preferences"])
    finished = [str(op) for op in p.get("pendingDone", ())]
    added = [str(op) for op in p.get("pending", ()) if str(op) not in view.declared_operations]
    if finished or added:
        kept = [op for op in view.declared_operations if op not in finished]
        view.declared_operations = kept + [op for op in added if op not in finished]
        what = f"started {added[-1]}" if added else f"finished {finished[-1]}"
        view.last_action = clip(what)


def _on_file(view: SessionView, p: dict[str, Any], at: datetime) -> None:
    path = str(p.get("path", ""))
    files = [f for f in view.record.context.active_files if f != path]
    if p.get("change") != "deleted":
        files.append(path)
    _context(view, active_files=files[-MAX_ACTIVE_FILES:])
    view.last_action = f"{p.get('change', 'modified')} {path}"


def _on_error(view: SessionView, p: dict[str, Any], at: datetime) -> None:
    message = clip(str(p.get("message", "")))
    view.recent_errors.append(message)
    view.last_action = f"error: {message}"


def _on_tool_call(view: SessionView, p: dict[str, Any], at: datetime) -> None:
    call_id = str(p.get("callId", ""))
    view.pending_calls[call_id] = ToolCall(
        call_id=call_id, name=str(p.get("name", "")), arguments=p.get("arguments"), seq=view.seq + 1
    )
    view.last_action = f"called tool {p.get('name', '')}"


def _on_tool_result(view: SessionView, p: dict[str, Any], at: datetime) -> None:
    call = view.pending_calls.pop(str(p.get("callId", "")), None)
    if call is not None:
        view.last_action = f"tool {call.name} returned"


def _on_note(view: SessionView, p: dict[str, Any], at: datetime) -> None:
    lost = lost_in(p)
    if lost is not None:  # a tombstone left by `verify --repair`: nothing the agent did
        quarantine = lost.get("quarantine")
        view.lost_events.append(
            LostEvent(
                seq=view.seq + 1,
                reason=str(lost.get("reason", "missing")),
                quarantine=str(quarantine) if quarantine else None,
            )
        )
        return
    view.last_action = f"note: {clip(str(p.get('text', '')))}"


_HANDLERS = {
    EventKind.LIFECYCLE: _on_lifecycle,
    EventKind.DECISION: _on_decision,
    EventKind.STEP_COMPLETED: _on_step_completed,
    EventKind.NEXT_STEP: _on_next_step,
    EventKind.BLOCKER: _on_blocker,
    EventKind.TASK: _on_task,
    EventKind.STATE: _on_state,
    EventKind.FILE: _on_file,
    EventKind.ERROR: _on_error,
    EventKind.TOOL_CALL: _on_tool_call,
    EventKind.TOOL_RESULT: _on_tool_result,
    EventKind.NOTE: _on_note,
}
