"""Which session a command means when none is named: the newest one with something in it.

A session that holds nothing (no message, task, step or decision: a command
that died at once, a `start` nobody followed up) must never outrank one with
work in it when recovery looks for "the user's most recent interrupted
session".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agent_continuity.errors import ContinuityError
from agent_continuity.model import EventKind, SessionRecord
from agent_continuity.storage import Store

# Events every session has, whatever it did: they are not its content.
_BOOKKEEPING = frozenset({EventKind.SESSION, EventKind.LEASE, EventKind.LIFECYCLE})


def has_content(store: Store, record: SessionRecord) -> bool:
    """Whether a session holds anything of its own: a message, task, step, decision, file...

    The registry entry answers for most sessions; one whose entry shows
    nothing (a conversation without a task) is read from its journal. A journal
    that cannot be read counts as content: never hide what may be work.
    """
    context, state = record.context, record.state
    if (
        context.current_task
        or context.current_phase
        or context.key_decisions
        or context.conversation_summary
        or context.active_files
        or state.completed_steps
        or state.current_step
        or state.next_steps
        or state.blockers
        or state.progress
    ):
        return True
    try:
        read = store.read_events(record.id)
    except ContinuityError:
        return True
    return bool(read.damage) or any(e.kind not in _BOOKKEEPING for e in read.events)


def most_recent(
    store: Store, records: Sequence[SessionRecord], key: Callable[[SessionRecord], Any]
) -> SessionRecord:
    """The newest of ``records`` by ``key`` that has content; the newest of all if none has.

    Raises:
        ValueError: If ``records`` is empty.
    """
    ordered = sorted(records, key=key, reverse=True)
    if not ordered:
        raise ValueError("no sessions to choose from")
    return next((r for r in ordered if has_content(store, r)), ordered[0])
