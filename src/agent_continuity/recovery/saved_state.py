"""The recovery engine's input: everything the caller loaded about one session."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from agent_continuity.model import Damage, EmergencyBackup, Event, RecoveryPoint, SessionRecord


@dataclass(frozen=True)
class SavedState:
    """What survived of a session, as the caller read it from the store.

    Attributes:
        record: The registry entry of the session being recovered.
        point: The newest recovery point that passed verification; None if none did.
        events: Journal events after ``point.seq`` (the whole journal from seq 1
            when ``point`` is None), in order.
        window: The journal events the point refers to for its recent messages
            (after ``point.replay_from``, up to ``point.seq``); empty for a point
            that holds them.
        full_events: The whole journal, when the caller loaded it (full mode);
            None otherwise.
        journal_damage: Torn tail, checksum failures and gaps met reading the journal.
        point_damage: Newer recovery points that failed their checksum and were skipped.
        emergency: The session's emergency backup, if one could be read.
        emergency_damage: The emergency backup, when it failed verification (and
            ``emergency`` is therefore None).
        index_damage: The store's index records (registry, active list, leases)
            found damaged or missing and worked around by reading the journals.
    """

    record: SessionRecord
    point: RecoveryPoint | None = None
    events: Sequence[Event] = ()
    window: Sequence[Event] = ()
    full_events: Sequence[Event] | None = None
    journal_damage: Sequence[Damage] = field(default_factory=tuple)
    point_damage: Sequence[Damage] = field(default_factory=tuple)
    emergency: EmergencyBackup | None = None
    emergency_damage: Sequence[Damage] = field(default_factory=tuple)
    index_damage: Sequence[Damage] = field(default_factory=tuple)
