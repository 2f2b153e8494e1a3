"""A session read back from its store: the newest valid recovery point plus the journal after it."""

from __future__ import annotations

from agent_continuity.errors import CorruptRecord
from agent_continuity.ids import validate_session_id
from agent_continuity.model import Damage, Event, RecoveryPoint
from agent_continuity.replay import SessionView
from agent_continuity.storage import Store


class LoadedSession:
    """A session read back from the store: its state and what was damaged on the way."""

    def __init__(
        self,
        view: SessionView,
        point: RecoveryPoint | None,
        events_after_point: list[Event],
        journal_damage: list[Damage],
        point_damage: list[Damage],
    ) -> None:
        self.view = view
        self.point = point
        self.events_after_point = events_after_point
        self.journal_damage = journal_damage
        self.point_damage = point_damage


def newest_valid_point(store: Store, session_id: str) -> tuple[RecoveryPoint | None, list[Damage]]:
    """The newest recovery point that passes verification, and the newer ones that failed.

    The damage also lists what the point itself was loaded without (a
    file-state chunk of its code context, see :attr:`RecoveryPoint.damage`).
    """
    damage: list[Damage] = []
    for info in reversed(store.list_points(session_id)):
        try:
            point = store.load_point(info.id)
            return point, [*damage, *point.damage]
        except CorruptRecord as exc:
            damage.append(
                Damage(location=exc.location or info.location, kind="checksum", detail=str(exc))
            )
    return None, damage


def load_session(store: Store, session_id: str, *, whole_journal: bool = False) -> LoadedSession:
    """Materialise a session: newest valid recovery point plus the journal after it.

    Damaged points are skipped (and reported); a damaged journal yields what
    precedes and follows the damage (and reports it).

    Raises:
        CorruptRecord: If neither a valid point nor the journal's start survives.
    """
    validate_session_id(session_id)
    point, point_damage = newest_valid_point(store, session_id)
    # A point may refer to the journal for its recent messages: read from there.
    after = 0 if point is None or whole_journal else point.replay_from
    read = store.read_events(session_id, after_seq=after)
    events = read.events
    if point is not None and not whole_journal:
        view = SessionView.replay(events, start=point)
    elif events:
        view = SessionView.replay(events)
    else:
        raise CorruptRecord(
            f"{session_id}: neither a valid recovery point nor a readable journal start; "
            "`continuity emergency` shows what the emergency backups still hold"
        )
    tail = [e for e in events if point is None or e.seq > point.seq]
    return LoadedSession(view, point, tail, read.damage, point_damage)
