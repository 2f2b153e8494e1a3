"""Context loading: rebuild a session's state from whatever survived.

In order of preference: the newest valid recovery point plus the journal after
it; the whole journal (full mode, or when no point is valid); the registry
entry plus the journal after it (when the journal lost its first event); the
emergency backup alone. An emergency backup newer than everything else fills
in the critical facts it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from agent_continuity.errors import CorruptRecord, InvalidInput
from agent_continuity.model import EmergencyBackup, Event, SessionRecord
from agent_continuity.replay import SessionView

from .saved_state import SavedState
from .summary import JournalSummary, summarise_journal


@dataclass
class LoadedState:
    """A rebuilt view and how it was obtained.

    Attributes:
        view: The session as rebuilt (before any repair).
        source: One sentence saying where the state came from.
        journal: What the replayed (or, in full mode, the whole) journal recorded.
        from_journal: Whether any journal or recovery point contributed, as opposed
            to the emergency backup alone.
        full_replay: Whether the whole journal was replayed from seq 1.
        warnings: What the loading had to work around.
    """

    view: SessionView
    source: str
    journal: JournalSummary
    from_journal: bool = True
    full_replay: bool = False
    warnings: list[str] = field(default_factory=list)


def view_from_backup(record: SessionRecord, backup: EmergencyBackup) -> SessionView:
    """A minimal view built from the registry entry and an emergency backup."""
    return SessionView.starting_at(_with_backup(record, backup), backup.seq)


def _with_backup(record: SessionRecord, backup: EmergencyBackup) -> SessionRecord:
    decisions = list(record.context.key_decisions)
    if backup.last_decision and backup.last_decision not in decisions:
        decisions.append(backup.last_decision)
    context = record.context.model_copy(
        update={
            "current_task": backup.current_task or record.context.current_task,
            "current_phase": backup.current_phase or record.context.current_phase,
            "conversation_summary": backup.conversation_summary
            or record.context.conversation_summary,
            "key_decisions": decisions,
        }
    )
    state = record.state.model_copy(
        update={
            "current_step": backup.current_step,
            "progress": backup.progress,
            "next_steps": list(backup.next_steps),
            "blockers": list(backup.blockers),
        }
    )
    return record.model_copy(update={"context": context, "state": state})


def _registry_view(record: SessionRecord, events: Sequence[Event]) -> SessionView:
    # The registry entry already reflects events up to its last_seq; starting
    # there keeps decisions and steps from being applied twice.
    view = SessionView.starting_at(record.model_copy(deep=True), record.last_seq)
    for event in events:
        view.apply(event)
    return view


def _task_disagreements(primary: SessionView, journal: SessionView) -> list[str]:
    found = []
    for task_id in sorted(set(primary.tasks) | set(journal.tasks)):
        a, b = primary.tasks.get(task_id), journal.tasks.get(task_id)
        a_status = a.status.value if a else "absent"
        b_status = b.status.value if b else "absent"
        if a_status != b_status:
            found.append(
                f"the recovery point and the journal disagree on {task_id} (point: {a_status}, "
                f"journal: {b_status}); the journal was used"
            )
    return found


def load_state(saved: SavedState, *, full: bool) -> LoadedState | None:
    """Rebuild the session's state from ``saved``.

    Args:
        saved: What the caller loaded.
        full: Whether full recovery runs (rebuild the context from the whole
            journal when ``saved.full_events`` holds it).

    Returns:
        The loaded state, or None when nothing at all survived.

    Raises:
        InvalidInput: If the recovery point belongs to another session.
    """
    point = saved.point
    if point is not None and point.session_id != saved.record.id:
        raise InvalidInput(
            f"recovery point {point.id} belongs to {point.session_id}, not {saved.record.id}"
        )
    events = list(saved.events)
    loaded: LoadedState | None = None
    if point is not None:
        view = SessionView.replay([*saved.window, *events], start=point)
        loaded = LoadedState(
            view,
            f"recovery point {point.id} (seq {point.seq}) and {len(events)} journal event(s) "
            "after it",
            summarise_journal(events),
        )
    elif events:
        try:
            view = SessionView.replay(events)
            loaded = LoadedState(
                view,
                f"the whole journal ({len(events)} event(s); no valid recovery point)",
                summarise_journal(events),
                full_replay=True,
            )
        except CorruptRecord:
            view = _registry_view(saved.record, events)
            loaded = LoadedState(
                view,
                f"the registry entry (seq {saved.record.last_seq}) and {len(events)} journal "
                "event(s); the journal's first event is missing",
                summarise_journal(events),
                warnings=[
                    "the journal does not start with its session event and no recovery point "
                    "is valid; the state was rebuilt from the registry entry, so tasks may be "
                    "missing"
                ],
            )
    if loaded is not None and full and saved.full_events and not loaded.full_replay:
        loaded = _full_replay(saved, loaded)
    backup = saved.emergency
    if loaded is None:
        if backup is None:
            return None
        return LoadedState(
            view_from_backup(saved.record, backup),
            f"the emergency backup of {backup.session_id} (seq {backup.seq}) alone",
            JournalSummary(),
            from_journal=False,
            warnings=[
                "no valid recovery point and no readable journal: only the emergency backup "
                "survived (current task, step, next steps, blockers); the conversation is lost"
            ],
        )
    if backup is not None and backup.seq > loaded.view.seq:
        loaded.view.record = _with_backup(loaded.view.record, backup)
        loaded.warnings.append(
            f"the emergency backup (seq {backup.seq}) is newer than the readable journal "
            f"(seq {loaded.view.seq}); its task, step, progress, next steps and blockers were used"
        )
    return loaded


def _full_replay(saved: SavedState, loaded: LoadedState) -> LoadedState:
    assert saved.full_events is not None
    point = saved.point
    if saved.journal_damage and point is not None:
        # A damaged journal replayed from seq 1 would miss what the point still
        # holds; keep the point and only summarise the journal.
        loaded.source += "; the whole journal was read but is damaged, so the point was kept"
        loaded.journal = summarise_journal(saved.full_events)
        return loaded
    try:
        rebuilt = SessionView.replay(saved.full_events)
    except CorruptRecord:
        loaded.source += "; the whole journal could not be replayed (no session event)"
        return loaded
    if point is not None:
        # Points carry what the journal does not: the captured project state.
        rebuilt.project_state = point.project_state.model_copy(deep=True)
        rebuilt.conversation_context = point.conversation_context.model_copy(deep=True)
        rebuilt.code_context = point.code_context.model_copy(deep=True)
        rebuilt.ai_agent_state = point.ai_agent_state.model_copy(deep=True)
    warnings = [*loaded.warnings, *_task_disagreements(loaded.view, rebuilt)]
    return LoadedState(
        rebuilt,
        f"the whole journal replayed from seq 1 ({len(saved.full_events)} event(s)), "
        + (f"checked against recovery point {point.id}" if point else "no valid recovery point"),
        summarise_journal(saved.full_events),
        full_replay=True,
        warnings=warnings,
    )
