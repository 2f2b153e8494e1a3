"""The index, derived from the journals when its own records are damaged.

A session's registry entry and its lease document are an index over its
journal, which is the truth. When one of them is damaged or lost, a store
does not refuse: reads derive what they need from the journal (this module),
writes first move the damaged bytes to the quarantine and rebuild, and every
such event is noted in an :class:`IndexDamage` so that the caller can warn
the user (``Store.index_damage``).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from agent_continuity.errors import (
    ContinuityError,
    CorruptRecord,
    JournalMissing,
    RecoveryPointNotFound,
)
from agent_continuity.model import Damage, SessionRecord
from agent_continuity.replay import SessionView

from .base import JournalRead

if TYPE_CHECKING:
    from .base import Store


# -- a session whose journal is gone ---------------------------------------------
#
# The journal is the truth, but its loss is damage to one session, not to the
# store: reads report it and fall back on the session's newest valid recovery
# point and emergency backup, every other session goes on, and writes to that
# session are refused (never a silently recreated journal) until
# `verify --repair` rebuilds it with a tombstone at every number it held.


def missing_journal_detail(session_id: str) -> str:
    """What to tell a user about a session whose journal is gone."""
    return (
        f"the journal of {session_id} is missing; its newest valid recovery point and "
        "emergency backup still hold what they saved, the events after them are lost. "
        "`continuity verify --repair` rebuilds the journal (each lost event marked)"
    )


def missing_journal_read(session_id: str, location: str) -> JournalRead:
    """``read_events`` of a session the store knows whose journal is gone: no events, one damage."""
    detail = missing_journal_detail(session_id)
    return JournalRead(events=[], damage=[Damage(location=location, kind="missing", detail=detail)])


def missing_journal_error(session_id: str, location: str) -> JournalMissing:
    """The error of a write to a session whose journal is gone."""
    return JournalMissing(
        f"{location}: {missing_journal_detail(session_id)}; until then nothing can be written "
        f"to {session_id} (`continuity recover {session_id}` still shows what it holds)",
        location,
    )


def derive_record(store: Store, session_id: str) -> SessionRecord:
    """A session's registry entry as its journal tells it, exactly as recovery would.

    The newest valid recovery point plus the events after it; without one,
    the whole journal replayed from its first (``session``) event.

    Raises:
        SessionNotFound: If the session has no journal.
        CorruptRecord: If neither a valid point nor the journal's first event survives.
    """
    events = store.read_events(session_id).events
    for info in reversed(store.list_points(session_id)):
        try:
            point = store.load_point(info.id)
        except (CorruptRecord, RecoveryPointNotFound):
            continue
        return SessionView.replay([e for e in events if e.seq > point.seq], point).record
    try:
        return SessionView.replay(events).record
    except (ContinuityError, ValueError) as exc:
        raise CorruptRecord(
            f"cannot rebuild {session_id} from its journal: its first event is lost and it has "
            f"no valid recovery point ({exc}); `continuity emergency` shows what its emergency "
            "backup still holds",
            session_id,
        ) from None


class IndexDamage:
    """The index damage one store handle met and worked around, one entry per record.

    A later note about the same record replaces the earlier one (a read that
    derived around a damaged registry, then the write that quarantined and
    rebuilt it), so the list says where each record stands now.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: dict[str, Damage] = {}

    def note(self, location: str, kind: str, detail: str) -> None:
        """Record damage to the index record at ``location`` and what was done about it."""
        with self._lock:
            self._found.pop(location, None)
            self._found[location] = Damage(location=location, kind=kind, detail=detail)

    def found(self) -> list[Damage]:
        """Every noted damage, oldest first."""
        with self._lock:
            return list(self._found.values())
