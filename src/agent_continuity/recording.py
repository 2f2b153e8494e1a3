"""The typed appends of a live session: one checked event each.

Messages, decisions, steps, tasks, state, files, errors, tool calls and
notes: each method checks its input (raising
:class:`~agent_continuity.errors.InvalidInput` for what no session could
hold), builds the event's payload and names the trigger it is, and leaves the
writing to :class:`~agent_continuity.live.LiveSession`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from agent_continuity.errors import InvalidInput
from agent_continuity.model import EventKind, MessageRole, TaskStatus, Trigger


class Recorder:
    """What a session can record, each as one durable event (see LiveSession)."""

    def _one(self, kind: EventKind, payload: dict[str, Any], trigger: Trigger | None = None) -> int:
        """Append one event; returns its sequence number (LiveSession does the writing)."""
        raise NotImplementedError

    def add_message(self, role: str, text: str, *, partial: bool = False) -> int:
        """Record a message of the conversation.

        Args:
            role: ``user``, ``assistant``, ``system`` or ``tool``.
            text: The message text.
            partial: True while an assistant turn is still streaming.

        Returns:
            The event's sequence number; the message is durable.
        """
        try:
            role = MessageRole(role).value
        except ValueError:
            raise InvalidInput(
                f"role must be one of user, assistant, system, tool, not {role!r}"
            ) from None
        payload: dict[str, Any] = {"role": role, "text": _text(text, "message")}
        if partial:
            payload["partial"] = True
        return self._one(EventKind.MESSAGE, payload)

    def decide(self, text: str, *, major: bool = True) -> int:
        """Record a decision; a major one makes a recovery point."""
        trigger = Trigger.MAJOR_DECISION if major else None
        return self._one(EventKind.DECISION, {"text": _text(text, "decision")}, trigger)

    def complete_step(self, step: str) -> int:
        """Mark a step done (a ``task-completion`` trigger)."""
        return self._one(
            EventKind.STEP_COMPLETED, {"step": _text(step, "step")}, Trigger.TASK_COMPLETION
        )

    def next_step(self, step: str) -> int:
        """Add a step to do next."""
        return self._one(EventKind.NEXT_STEP, {"step": _text(step, "step")})

    def block(self, text: str) -> int:
        """Record a blocker."""
        return self._one(EventKind.BLOCKER, {"text": _text(text, "blocker"), "resolved": False})

    def unblock(self, text: str) -> int:
        """Resolve a blocker."""
        return self._one(EventKind.BLOCKER, {"text": _text(text, "blocker"), "resolved": True})

    def set_task(
        self,
        task_id: str,
        *,
        title: str | None = None,
        status: str | None = None,
        phase: str | None = None,
        steps: Sequence[str] | None = None,
        dependencies: Sequence[str] | None = None,
        current: bool = True,
    ) -> int:
        """Create or update a task; by default it becomes the current task.

        Completing a task (status ``done``) is a ``task-completion`` trigger.
        """
        payload: dict[str, Any] = {"id": _text(task_id, "task id"), "current": current}
        if status is not None:
            try:
                payload["status"] = TaskStatus(status).value
            except ValueError:
                known = ", ".join(s.value for s in TaskStatus)
                raise InvalidInput(f"task status must be one of {known}, not {status!r}") from None
        for key, value in (("title", title), ("phase", phase)):
            if value is not None:
                payload[key] = str(value)
        if steps is not None:
            payload["steps"] = [str(s) for s in steps]
        if dependencies is not None:
            payload["dependencies"] = [str(d) for d in dependencies]
        trigger = Trigger.TASK_COMPLETION if status == TaskStatus.DONE.value else None
        return self._one(EventKind.TASK, payload, trigger)

    def set_phase(self, phase: str) -> int:
        """Set the project phase."""
        return self._one(EventKind.STATE, {"phase": _text(phase, "phase")})

    def set_step(self, step: str | None) -> int:
        """Set the step being worked on."""
        return self._one(EventKind.STATE, {"currentStep": step})

    def set_progress(self, percent: int) -> int:
        """Set progress, 0 to 100."""
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            raise InvalidInput(f"progress must be a whole number from 0 to 100, not {percent!r}")
        return self._one(EventKind.STATE, {"progress": percent})

    def set_summary(self, summary: str) -> int:
        """Set the conversation summary."""
        return self._one(EventKind.STATE, {"summary": _text(summary, "summary", empty=True)})

    def set_preferences(self, preferences: dict[str, Any]) -> int:
        """Merge user preferences into the session."""
        return self._one(EventKind.STATE, {"preferences": dict(preferences)})

    def touch_file(self, path: str, change: str = "modified") -> int:
        """Record a file the agent changed (a ``file-modification`` trigger)."""
        if change not in ("modified", "added", "deleted"):
            raise InvalidInput(f"change must be modified, added or deleted, not {change!r}")
        return self._one(
            EventKind.FILE,
            {"path": _text(path, "path"), "change": change},
            Trigger.FILE_MODIFICATION,
        )

    def record_error(self, message: str, kind: str = "") -> int:
        """Record an error (an ``error-occurrence`` trigger)."""
        payload = {"message": _text(message, "error message"), "type": kind}
        return self._one(EventKind.ERROR, payload, Trigger.ERROR_OCCURRENCE)

    def record_tool_call(self, name: str, arguments: Any = None, call_id: str | None = None) -> str:
        """Record a tool call before running it. Returns its call id."""
        call_id = call_id or f"call-{uuid.uuid4().hex[:12]}"
        self._one(
            EventKind.TOOL_CALL,
            {"callId": call_id, "name": _text(name, "tool name"), "arguments": arguments},
        )
        return call_id

    def record_tool_result(self, call_id: str, output: Any, *, is_error: bool = False) -> int:
        """Record the result of a tool call."""
        payload = {"callId": _text(call_id, "call id"), "output": output, "isError": is_error}
        return self._one(EventKind.TOOL_RESULT, payload)

    def note(self, text: str) -> int:
        """Record a free-form note."""
        return self._one(EventKind.NOTE, {"text": _text(text, "note")})


def _text(value: object, what: str, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text, not {type(value).__name__}")
    if not empty and not value.strip():
        raise InvalidInput(f"{what} must not be empty")
    return value
