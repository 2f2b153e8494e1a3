"""Summaries for people: what the journal says, and the context summary of a recovery."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from agent_continuity.model import Event, EventKind, SessionStatus, format_time
from agent_continuity.replay import SessionView

from .confidence import describe_hours
from .result import StateDiff

_KIND_WORDS: tuple[tuple[EventKind, str], ...] = (
    (EventKind.MESSAGE, "message(s)"),
    (EventKind.DECISION, "decision(s)"),
    (EventKind.STEP_COMPLETED, "step(s) completed"),
    (EventKind.TASK, "task change(s)"),
    (EventKind.FILE, "file change(s)"),
    (EventKind.BLOCKER, "blocker change(s)"),
    (EventKind.ERROR, "error(s)"),
    (EventKind.TOOL_CALL, "tool call(s)"),
    (EventKind.LIFECYCLE, "lifecycle change(s)"),
)


@dataclass(frozen=True, slots=True)
class JournalSummary:
    """Counts of what a run of journal events recorded."""

    events: int = 0
    first_seq: int = 0
    last_seq: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """One line: how many events of each kind, over which sequence numbers and times."""
        if not self.events:
            return "no journal events"
        span = f"seq {self.first_seq}-{self.last_seq}"
        if self.first_at is not None and self.last_at is not None:
            span += f", {format_time(self.first_at)} to {format_time(self.last_at)}"
        kinds = [
            f"{self.counts[kind.value]} {words}"
            for kind, words in _KIND_WORDS
            if self.counts.get(kind.value)
        ]
        return f"{self.events} event(s) ({span})" + (": " + ", ".join(kinds) if kinds else "")


def summarise_journal(events: Sequence[Event]) -> JournalSummary:
    """Count a run of journal events by kind."""
    if not events:
        return JournalSummary()
    counts = Counter(event.kind.value for event in events)
    return JournalSummary(
        events=len(events),
        first_seq=events[0].seq,
        last_seq=events[-1].seq,
        first_at=events[0].at,
        last_at=events[-1].at,
        counts=dict(counts),
    )


def _stopped(view: SessionView, reference: datetime, now: datetime) -> str:
    record = view.record
    ago = describe_hours(max(0.0, (now - reference).total_seconds() / 3600))
    if record.status is SessionStatus.INTERRUPTED and record.interruption is not None:
        return f"was interrupted {ago} ago (cause: {record.interruption.cause})"
    if record.status is SessionStatus.ACTIVE:
        return f"was last active {ago} ago"
    return f"is {record.status.value}, last active {ago} ago"


def context_summary(
    view: SessionView,
    *,
    reference: datetime,
    now: datetime,
    diff: StateDiff | None,
    last_action: str | None = None,
) -> str:
    """A few sentences telling a person where the session stood and what moved since.

    Args:
        view: The recovered session.
        reference: When the session stopped (interruption, or last activity).
        now: The current time.
        diff: What changed in the project since the save; None if not observed.
        last_action: What the agent did last, if not ``view.last_action``.
    """
    record = view.record
    state, context = record.state, record.context
    sentences = [f"{record.id} ({record.type}) {_stopped(view, reference, now)}."]
    task = view.current_task
    if task is not None:
        title = f" {task.title}" if task.title else ""
        work = f"Task {task.id}{title} ({task.status.value})"
    elif context.current_task:
        work = f"Task {context.current_task}"
    else:
        work = "No current task"
    if context.current_phase:
        work += f", phase {context.current_phase}"
    if state.current_step:
        work += f", step {state.current_step}"
    sentences.append(f"{work}, {state.progress}% done.")
    action = last_action or view.last_action
    if action:
        sentences.append(f"Last action: {action}.")
    blockers = f"{len(state.blockers)} blocker(s)" if state.blockers else "no blockers"
    sentences.append(f"{len(state.next_steps)} next step(s), {blockers}.")
    if diff is None:
        sentences.append("The project was not checked for changes.")
    elif diff.unchanged:
        sentences.append("No change in the project since the save.")
    else:
        changes = [f"{diff.changed_file_count} file(s) changed"]
        if diff.new_commits:
            changes.append(f"{len(diff.new_commits)} new commit(s)")
        if diff.branch_changed:
            changes.append(f"branch {diff.saved_branch} -> {diff.current_branch or 'detached'}")
        if diff.missing_active_files:
            changes.append(f"{len(diff.missing_active_files)} active file(s) missing")
        if diff.task_changes:
            changes.append(f"{len(diff.task_changes)} task(s) changed status")
        sentences.append("Since the save: " + ", ".join(changes) + ".")
    return " ".join(sentences)
