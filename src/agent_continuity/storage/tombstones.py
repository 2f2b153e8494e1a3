"""How ``verify --repair`` closes the numbers a journal lost: the stores' side.

Which numbers a journal of lines lost, and why (:func:`lost_in_order`), and the
journal's lines again with each tombstone in its place (:func:`interleave`).
The tombstone itself, its format and how to read one are the core's
(:mod:`agent_continuity.lost_events`), re-exported here for the stores.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from agent_continuity.lost_events import (
    LOST_REASONS,
    Lost,
    lost_in,
    lost_numbers,
    lost_of,
    tombstone,
    tombstones,
)
from agent_continuity.model import Event

from .codec import cut_short, encode_event
from .envelope import Sealer

__all__ = [
    "LOST_REASONS",
    "Lost",
    "interleave",
    "lost_in",
    "lost_in_order",
    "lost_numbers",
    "lost_of",
    "tombstone",
    "tombstones",
]


def lost_in_order(records: Sequence[int | bytes], *, quarantine: str | None, seen: int = 0) -> Lost:
    """The numbers a journal of lines lost, and why, from its records in order.

    A damaged line stands for the numbers lost right after the intact event
    before it (one line per event, as the appends wrote them); damaged lines
    after the last intact one used up numbers too, as many as there are lines.

    Args:
        records: The journal in order: the ``seq`` of each intact line, the
            bytes of each damaged one.
        quarantine: Where the damaged lines' bytes were moved.
        seen: The highest number another record saw (the registry, a
            recovery point): a journal cut short lost the numbers up to it.
    """
    near: dict[int, list[bytes]] = {}  # intact seq before -> damaged lines after it
    present: list[int] = []
    previous = 0
    for record in records:
        if isinstance(record, int):
            present.append(record)
            previous = max(previous, record)
        else:
            near.setdefault(previous, []).append(record)
    present.sort()
    handed_out = previous + len(near.get(previous, []))
    lost: Lost = {}
    for seq in lost_numbers(present, max(handed_out, seen)):
        index = bisect.bisect_left(present, seq)
        damaged = near.get(present[index - 1] if index else 0)
        if damaged:
            lost[seq] = (
                "torn" if any(cut_short(line) for line in damaged) else "checksum",
                quarantine,
            )
        else:
            lost[seq] = ("truncated" if seq > handed_out else "missing", None)
    return lost


def interleave(
    valid: Sequence[tuple[int, bytes]],
    stones: Sequence[Event],
    sealer: Sealer | None = None,
    session_id: str = "",
) -> list[bytes]:
    """The journal's lines again: the valid ones in their order, each tombstone in its place.

    Args:
        valid: Each intact line's ``seq`` and bytes (newline-terminated), in journal order.
        stones: The tombstones, in sequence order.
        sealer: The store's sealer when it is encrypted (tombstones are sealed too).
        session_id: The session the journal belongs to.
    """
    pending = list(stones)
    out: list[bytes] = []
    for seq, line in valid:
        while pending and pending[0].seq < seq:
            out.append(encode_event(pending.pop(0), sealer, session_id))
        out.append(line)
    out.extend(encode_event(stone, sealer, session_id) for stone in pending)
    return out
