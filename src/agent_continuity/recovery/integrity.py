"""Conversation integrity: damaged records, tool calls that never returned, cut-off turns.

A session killed mid-turn leaves traces a model provider would reject (a tool
call without its result) or an agent would misread (half an assistant
message). This module finds them and builds the repair events the caller
appends when it restores the session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from agent_continuity.model import Damage, Event, EventDraft, EventKind, LostEvent, ToolCall
from agent_continuity.replay import SessionView

INTERRUPTED_TOOL_OUTPUT = "interrupted: the session ended before this tool call returned"

# Damage kinds that mean a record failed verification, as opposed to records
# that are simply absent (a torn tail, a gap in the sequence numbers).
_CHECKSUM_KINDS = frozenset({"checksum", "decode"})
#: A recovery point's file-state chunk (its code context's file stamps, stored
#: apart) that is missing or damaged: the point was used, its code context not.
FILE_STATE = "file-state"
# What an emergency backup keeps (see EmergencyBackup), in a user's words.
_CRITICAL_FACTS = "task, phase, step, progress, next steps, blockers, last decision"


@dataclass(frozen=True, slots=True)
class Integrity:
    """What is wrong with the saved conversation, if anything.

    Attributes:
        journal_damage: Damage met reading the journal.
        point_damage: Newer recovery points that failed their checksum.
        emergency_damage: The emergency backup, when it failed its checksum.
        dangling_calls: Tool calls that never received a result, oldest first.
        lost_events: Events lost to damage that ``verify --repair`` replaced with
            tombstones: the journal is whole again, but their content is gone.
        partial_message_seq: Sequence number of a half-written last assistant
            message, or None.
    """

    journal_damage: tuple[Damage, ...] = ()
    point_damage: tuple[Damage, ...] = ()
    emergency_damage: tuple[Damage, ...] = ()
    dangling_calls: tuple[ToolCall, ...] = ()
    partial_message_seq: int | None = None
    lost_events: tuple[LostEvent, ...] = ()

    @property
    def checksums_ok(self) -> bool:
        """No journal record, recovery point or emergency backup failed its checksum."""
        return (
            not self.point_damage
            and not self.emergency_damage
            and not any(d.kind in _CHECKSUM_KINDS for d in self.journal_damage)
        )

    @property
    def journal_intact(self) -> bool:
        """No torn tail, gap or lost event, no dangling tool call, no half-written turn."""
        return (
            not any(d.kind not in _CHECKSUM_KINDS for d in self.journal_damage)
            and not self.lost_events
            and not self.dangling_calls
            and self.partial_message_seq is None
        )

    @property
    def ok(self) -> bool:
        """Nothing at all is wrong."""
        return self.checksums_ok and self.journal_intact

    def problems(self, kept_in: str | None = None) -> list[str]:
        """One warning per problem, in the words a user needs to act on it.

        Args:
            kept_in: What still holds the critical facts of a damaged emergency
                backup (a recovery point, the journal); None when nothing does.
        """
        found: list[str] = []
        for damage in self.journal_damage:
            found.append(
                f"journal damage ({damage.kind}) in {damage.location}: {damage.detail}; "
                "events in the damaged part are lost"
            )
        for damage in self.point_damage:
            if damage.kind == FILE_STATE:
                found.append(
                    f"{damage.detail} ({damage.location}); the point was used without its "
                    "code context, so files changed since the save cannot be listed; "
                    "`continuity verify` reports it"
                )
                continue
            found.append(
                f"recovery point {damage.location} failed verification ({damage.kind}: "
                f"{damage.detail}) and was skipped; an older point and the journal were used"
            )
        for damage in self.emergency_damage:
            found.append(
                f"the emergency backup {damage.location} failed verification ({damage.kind}: "
                f"{damage.detail}) and was not used; "
                + (
                    f"its critical information ({_CRITICAL_FACTS}) is still recoverable from "
                    f"{kept_in}"
                    if kept_in
                    else f"nothing else holds its critical information ({_CRITICAL_FACTS})"
                )
            )
        for lost in self.lost_events:
            kept = f"; its damaged bytes are in {lost.quarantine}" if lost.quarantine else ""
            found.append(
                f"event {lost.seq} was lost to damage ({lost.reason}) and `continuity verify "
                f"--repair` left a tombstone in its place{kept}; what it recorded is missing"
            )
        for call in self.dangling_calls:
            found.append(
                f"tool call {call.name or '?'} (callId {call.call_id}, seq {call.seq}) never "
                "returned; recorded as interrupted"
            )
        if self.partial_message_seq is not None:
            found.append(
                f"the last assistant message (seq {self.partial_message_seq}) was cut off "
                "mid-way; the next agent should finish or repeat it"
            )
        return found


def index_problems(damage: Sequence[Damage]) -> list[str]:
    """One warning per damaged index record (registry, active list, lease) worked around."""
    return [
        f"the session index {d.location} is damaged ({d.kind}): {d.detail}; sessions are "
        "read from their journals, which are intact; `continuity verify --repair` rebuilds it"
        for d in damage
    ]


def assess_integrity(
    view: SessionView | None,
    journal_damage: Sequence[Damage] = (),
    point_damage: Sequence[Damage] = (),
    emergency_damage: Sequence[Damage] = (),
) -> Integrity:
    """Collect every integrity problem of a recovered view and the records behind it."""
    calls: tuple[ToolCall, ...] = ()
    partial: int | None = None
    lost: tuple[LostEvent, ...] = ()
    if view is not None:
        calls = tuple(sorted(view.pending_calls.values(), key=lambda c: (c.seq, c.call_id)))
        partial = view.partial_message_seq
        lost = tuple(view.lost_events)
    return Integrity(
        journal_damage=tuple(journal_damage),
        point_damage=tuple(point_damage),
        emergency_damage=tuple(emergency_damage),
        dangling_calls=calls,
        partial_message_seq=partial,
        lost_events=lost,
    )


def repair_events(calls: Sequence[ToolCall], at: datetime) -> list[EventDraft]:
    """A synthetic, failed tool result for each call that never returned.

    Providers refuse a conversation in which a tool call has no result, so the
    restored session must close every one; marking the result ``synthetic``
    keeps it distinguishable from a real tool failure.
    """
    return [
        EventDraft(
            kind=EventKind.TOOL_RESULT,
            at=at,
            payload={
                "callId": call.call_id,
                "output": INTERRUPTED_TOOL_OUTPUT,
                "isError": True,
                "synthetic": True,
            },
        )
        for call in calls
    ]


def apply_repairs(view: SessionView, drafts: Sequence[EventDraft]) -> None:
    """Fold repair events into ``view`` as if they had been appended next.

    The caller appends the same drafts to the journal, where they receive
    exactly these sequence numbers (the journal continues without a gap).
    """
    for draft in drafts:
        view.apply(Event(seq=view.seq + 1, kind=draft.kind, at=draft.at, payload=draft.payload))
