"""Tombstones: the ``note`` events that stand at the numbers a journal lost.

A journal's sequence numbers run 1, 2, 3, ... without a hole, and a recovery
point covers every number up to its own. When damage takes events away (a
record failing its checksum, an append torn by a crash, a journal cut short),
repair moves the damaged bytes to the quarantine and writes, at each lost
number, a ``note`` event that says so::

    {"text": "event 7 was lost to damage (checksum); its bytes are in <path>",
     "lost": {"reason": "checksum", "quarantine": "<path>",
              "repairedAt": "2024-11-24T10:00:00Z"}}

``reason`` is one of :data:`LOST_REASONS`: ``checksum`` (a whole record that
fails its checksum), ``torn`` (a record cut short by a crash), ``truncated``
(the journal ends before events that other records saw) or ``missing`` (the
number is absent and no damaged bytes are at hand, e.g. an earlier repair
quarantined them). ``quarantine`` names where the damaged bytes are, or is
null when there are none. A tombstone is timed like the intact event before
it, so it never makes a session look more recent than it was; ``repairedAt``
says when the loss was closed.

A tombstone is only ever written at a number that no intact event holds.

This is the format, part of the core: replay and recovery read tombstones and
import nothing of the stores; the stores write them (:mod:`agent_continuity.storage.tombstones`
lays them out in a journal).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from agent_continuity.model import Event, EventKind, format_time

LOST_REASONS = ("checksum", "torn", "truncated", "missing")

Lost = dict[int, tuple[str, str | None]]  # lost number -> (reason, quarantine or None)


def lost_numbers(present: Iterable[int], end: int) -> list[int]:
    """The numbers from 1 to ``end`` that no intact event holds, in order."""
    held = set(present)
    return [seq for seq in range(1, end + 1) if seq not in held]


def tombstones(
    events: list[Event],
    lost: Mapping[int, tuple[str, str | None]],
    repaired_at: datetime,
) -> list[Event]:
    """The tombstones for ``lost`` numbers, in order.

    Args:
        events: The journal's intact events, in sequence order.
        lost: Each lost number -> (reason, where its damaged bytes are or None).
        repaired_at: When the repair runs.

    Raises:
        ValueError: If a number in ``lost`` is held by an intact event.
    """
    ordered = sorted(events, key=lambda e: e.seq)
    seqs = [e.seq for e in ordered]
    made = []
    for seq in sorted(lost):
        index = bisect.bisect_left(seqs, seq)
        if seq < 1 or (index < len(seqs) and seqs[index] == seq):
            raise ValueError(f"event {seq} exists; a tombstone never replaces an event")
        if index:
            at = ordered[index - 1].at
        else:
            at = ordered[0].at if ordered else repaired_at
        reason, quarantine = lost[seq]
        made.append(
            tombstone(seq, reason=reason, quarantine=quarantine, at=at, repaired_at=repaired_at)
        )
    return made


def tombstone(
    seq: int, *, reason: str, quarantine: str | None, at: datetime, repaired_at: datetime
) -> Event:
    """The ``note`` event that stands at lost number ``seq`` (see the module documentation)."""
    if reason not in LOST_REASONS:
        raise ValueError(f"unknown reason {reason!r}; one of {', '.join(LOST_REASONS)}")
    text = f"event {seq} was lost to damage ({reason})"
    text += f"; its bytes are in {quarantine}" if quarantine else "; no damaged bytes were left"
    payload: dict[str, Any] = {
        "text": text,
        "lost": {
            "reason": reason,
            "quarantine": quarantine,
            "repairedAt": format_time(repaired_at),
        },
    }
    return Event(seq=seq, kind=EventKind.NOTE, at=at, payload=payload)


def lost_of(event: Event) -> dict[str, Any] | None:
    """The ``lost`` part of a tombstone's payload, or None for any other event."""
    return lost_in(event.payload) if event.kind is EventKind.NOTE else None


def lost_in(note: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``lost`` part of a ``note`` event's payload if it is a tombstone, else None."""
    lost = note.get("lost")
    return lost if isinstance(lost, dict) else None
