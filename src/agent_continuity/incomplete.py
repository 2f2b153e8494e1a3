"""Saying what an operation kept when a write after a durable one failed.

``s.decide(...)`` appends the decision, then writes the emergency backup and
the recovery point its trigger asks for. The append is durable before those
writes start; if one of them fails, the caller must learn that the decision
was kept, or it records the decision a second time. :func:`finish_after`
runs such follow-up writes and turns a failure into an
:class:`~agent_continuity.errors.IncompleteWrite` that says what was kept and
what was not written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from agent_continuity.errors import ContinuityError, IncompleteWrite
from agent_continuity.model import Event, EventKind

#: A write that follows a durable one: what it writes (``"the emergency backup"``) and how.
Step = tuple[str, Callable[[], object]]

_NOUNS = {
    EventKind.MESSAGE: "message",
    EventKind.DECISION: "decision",
    EventKind.STEP_COMPLETED: "completed step",
    EventKind.NEXT_STEP: "next step",
    EventKind.BLOCKER: "blocker",
    EventKind.TASK: "task change",
    EventKind.STATE: "state change",
    EventKind.FILE: "file change",
    EventKind.ERROR: "error",
    EventKind.TOOL_CALL: "tool call",
    EventKind.TOOL_RESULT: "tool result",
    EventKind.NOTE: "note",
}


def _noun(event: Event) -> str:
    if event.kind is EventKind.LIFECYCLE:
        return f"status change to {event.payload.get('status', '?')}"
    return _NOUNS.get(event.kind, event.kind.value)


def recorded(events: Sequence[Event]) -> str:
    """``decision recorded as event 42``; ``3 events (...) recorded as events 40-42``."""
    if len(events) == 1:
        return f"{_noun(events[0])} recorded as event {events[0].seq}"
    nouns = ", ".join(dict.fromkeys(_noun(e) for e in events))
    return f"{len(events)} events ({nouns}) recorded as events {events[0].seq}-{events[-1].seq}"


def finish_after(
    kept: str,
    kept_seq: int | None,
    kept_point: str | None,
    steps: Sequence[Step],
) -> None:
    """Run the writes that follow a durable one; if one fails, say what was kept.

    Args:
        kept: What is durable already, e.g. ``decision recorded as event 42``.
        kept_seq: Its last event, if it is events.
        kept_point: The recovery point saved, if it is one.
        steps: The writes still to make, each with the name of what it writes.

    Raises:
        IncompleteWrite: Naming what was kept and every step not written.
    """
    for index, (_, step) in enumerate(steps):
        try:
            step()
        except ContinuityError as exc:
            missing = tuple(name for name, _ in steps[index:])
            cause: ContinuityError = exc
            point = kept_point
            if isinstance(exc, IncompleteWrite):
                # A recovery point saved before one of its own later writes failed.
                missing = (*exc.missing, *missing[1:])
                cause = exc.cause or exc
                point = exc.kept_point or point
            if point is not None and point != kept_point:
                kept = f"{kept} and recovery point {point} saved"
            raise _incomplete(kept, kept_seq, point, missing, cause) from exc


def _incomplete(
    kept: str,
    kept_seq: int | None,
    kept_point: str | None,
    missing: tuple[str, ...],
    cause: ContinuityError,
) -> IncompleteWrite:
    # Everything missing is derived from the journal: the next recovery point
    # writes it all again (also for a session that was ending: its registry
    # entry and backup are brought up to date, and recovery replays the journal).
    names = " and ".join([", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing)
    verb = "were" if len(missing) > 1 else "was"
    redo = "do not record it again; " if kept_seq is not None else ""
    return IncompleteWrite(
        f"{kept}, but {names} after it {verb} not written: {cause}. Nothing is lost: {redo}"
        "once that is fixed, the next recovery point (`continuity save`, or checkpoint()) "
        "writes what is missing",
        kept_seq=kept_seq,
        kept_point=kept_point,
        missing=missing,
        cause=cause,
    )
