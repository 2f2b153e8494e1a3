"""A framework's conversation kept as sessions: the items it stores, as journal events.

A framework names a conversation (an OpenAI Agents session id, a Claude Agent
SDK transcript key) and stores opaque items in it. Here each process that works
on a conversation is one session of ours, a *run*, and every run of a
conversation carries the conversation's key as its task. So ``continuity
list``, ``recover`` and ``resume-task`` see the runs like any other session; a
run killed with ``kill -9`` is found interrupted, and the next run of the
conversation starts from it with ``start_recovered`` (the interruption is
logged and answered; nothing is dropped).

Each item is one event whose payload keeps the item verbatim (after redaction)
under ``item``, beside the readable fields the recovery reads (a message's role
and text, a tool call's name and arguments). Items another kind of event
cannot describe ride on a ``state`` event, which replay ignores. The journal
is append-only, so taking an item back (``pop``) or clearing the conversation
appends a marker that reading applies.

Reading follows the journals of every run: a damaged journal raises
:class:`~agent_continuity.errors.CorruptRecord`, it never reads as a shorter
history.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent_continuity import (
        Event,
        EventKind,
        LiveSession,
        RecoveryResult,
        SessionManager,
        SessionRecord,
    )

#: Payload key holding a framework's item verbatim.
ITEM = "item"
#: Payload key naming whose item it is, so two frameworks never read each other's.
ITEM_OF = "itemOf"
#: Payload key of a marker taking back one item: ``{"session": ID, "seq": N}``.
RETRACT = "retract"
#: Payload key of a marker forgetting every earlier item of the conversation.
CLEAR = "clear"
#: Payload key mapping a readable field to where its text sits in the item, which
#: then holds "" there: the text is stored once, not twice.
MOVED = "moved"
# Shorter texts are not worth the bookkeeping.
_MOVE_AT_LEAST = 24

# A mapping of an item to the kind of event and the readable fields it is recorded as.
Describe = Callable[[Mapping[str, Any]], "tuple[EventKind, dict[str, Any]]"]


@dataclass(frozen=True)
class Item:
    """One stored item and where it is: the run's session id and the event's sequence number."""

    session_id: str
    seq: int
    at: datetime
    value: dict[str, Any]
    payload: dict[str, Any]

    @property
    def extra(self) -> dict[str, Any]:
        """The payload's fields beside the item (readable fields, a sub-transcript...)."""
        return {k: v for k, v in self.payload.items() if k not in _INTERNAL}


# Sorts this process's run after every run listed before it, when two events share a time.
_OWN_RUN = 1 << 30


class Conversation:
    """The runs of one conversation: its items across processes, durable when written.

    Args:
        manager: The session manager (its store and user).
        key: The conversation's key, the task every run of it carries.
        of: Whose items these are (``openai-agents``, ``claude-agent-sdk``).
        describe: Maps an item to its event kind and readable fields.
        session_type: The type of the sessions the runs are.
    """

    def __init__(
        self,
        manager: SessionManager,
        key: str,
        *,
        of: str,
        describe: Describe,
        session_type: str = "conversation",
    ) -> None:
        self._manager = manager
        self.key = key
        self._of = of
        self._describe = describe
        self._type = session_type
        self._lock = threading.RLock()
        self._live: LiveSession | None = None
        self._mine: list[Event] = []
        # Finished runs cannot change while they stay finished: read once.
        self._finished: dict[tuple[str, str, int], list[Event]] = {}
        # The live items as of this run's first `_applied` events (see _live_items).
        self._others: tuple[tuple[str, str, int], ...] | None = None
        self._applied = 0
        self._state: dict[tuple[str, int], Event] = {}
        self.recovery: RecoveryResult | None = None

    # -- runs --------------------------------------------------------------

    def runs(self) -> list[SessionRecord]:
        """This conversation's sessions, oldest first."""
        found = [
            r
            for r in self._manager.sessions(user=self._manager.user_id)
            if r.context.current_task == self.key
        ]
        return sorted(found, key=lambda r: (r.created, r.id))

    @property
    def session_id(self) -> str | None:
        """The session this process writes to, once it has written."""
        return self._live.id if self._live is not None else None

    def _run(self) -> LiveSession:
        """This process's run, started on its first write."""
        if self._live is not None:
            return self._live
        from agent_continuity import AgentInfo

        # A run whose process died is still listed active until someone looks.
        self._manager.detect_interruptions()
        earlier = self.runs()
        if earlier and earlier[-1].status.value == "interrupted":
            # The last run died: answer its interruption with a run that continues it,
            # so `continuity recover` logs it and stops offering it.
            self.recovery = self._manager.start_recovered(earlier[-1].id)
            new_id = self.recovery.new_session_id
            assert new_id is not None  # start_recovered always starts one
            self._live = self._manager.adopt(new_id)
        else:
            self._live = self._manager.start(
                type=self._type, task=self.key, agent=AgentInfo(type=self._of)
            )
        return self._live

    def close(self) -> None:
        """End this process's run (completed); the conversation stays readable."""
        with self._lock:
            if self._live is not None and not self._live.closed:
                self._live.end()

    # -- writing -----------------------------------------------------------

    def add(
        self,
        items: Iterable[Mapping[str, Any]],
        extra: Mapping[str, Any] | None = None,
        marker: Mapping[str, Any] | None = None,
    ) -> None:
        """Append items as one atomic group; durable when this returns.

        Args:
            items: The framework's items (JSON values), in order.
            extra: Fields added to every item's payload (for example a sub-transcript).
            marker: A marker written in the same group, after the items.
        """
        from agent_continuity import EventKind

        with self._lock:
            run = self._run()
            drafts = []
            for item in items:
                kind, readable = self._describe(item)
                payload = {**readable, **(extra or {}), ITEM_OF: self._of}
                payload[ITEM], moved = _slim(item, readable)
                if moved:
                    payload[MOVED] = moved
                drafts.append(run.draft(kind, payload))
            if drafts and marker is not None:
                drafts.append(run.draft(EventKind.STATE, {**marker, ITEM_OF: self._of}))
            if drafts:
                self._mine += run.append_group(drafts)

    def mark(self, marker: Mapping[str, Any]) -> None:
        """Append a marker (a retraction, a clear) that reading applies."""
        from agent_continuity import EventKind

        with self._lock:
            run = self._run()
            payload = {**marker, ITEM_OF: self._of}
            self._mine += run.append_group([run.draft(EventKind.STATE, payload)])

    # -- reading -----------------------------------------------------------

    def events(self) -> list[tuple[str, Event]]:
        """Every event of every run with its session id, in the order the conversation saw them.

        Raises:
            CorruptRecord: If a run's journal is damaged.
        """
        with self._lock:
            own = self.session_id
            merged: list[tuple[int, str, Event]] = []
            for index, record in enumerate(self.runs()):
                if record.id != own:
                    merged += [(index, record.id, e) for e in self._read(record)]
            # This run's events are the ones it appended (it holds the lease).
            merged += [(_OWN_RUN, own or "", e) for e in self._mine]
            # Runs that overlapped interleave by time; each run keeps its own order.
            merged.sort(key=lambda m: (m[2].at, m[0], m[2].seq))
            return [(session_id, event) for _, session_id, event in merged]

    def _read(self, record: SessionRecord) -> list[Event]:
        if record.status.value == "active":
            return self._manager.events(record.id)
        cached = (record.id, record.status.value, record.last_seq)
        if cached not in self._finished:
            self._finished[cached] = self._manager.events(record.id)
        return self._finished[cached]

    def items(self, where: Callable[[dict[str, Any]], bool] = lambda p: True) -> list[Item]:
        """The conversation's live items (retracted and cleared ones left out), oldest first.

        Args:
            where: Keeps only the items whose payload it accepts.

        Raises:
            CorruptRecord: If a run's journal is damaged.
        """
        with self._lock:
            live = self._live_items()
            return [
                Item(session_id, event.seq, event.at, _whole(event.payload), event.payload)
                for (session_id, _), event in live.items()
                if where(event.payload)
            ]

    def _live_items(self) -> dict[tuple[str, int], Event]:
        """The item events not taken back, by (session id, sequence number), in order.

        Kept between calls while the other runs are finished (they cannot change):
        only this run's new events are applied then. A run of another process that
        is still active means reading everything again each time.
        """
        own = self.session_id
        others = tuple((r.id, r.status.value, r.last_seq) for r in self.runs() if r.id != own)
        if others != self._others or any(status == "active" for _, status, _ in others):
            # Everything again, this run's events included, interleaved by time.
            self._others, self._state = others, {}
            for session_id, event in self.events():
                _apply(self._state, self._of, session_id, event)
            self._applied = len(self._mine)
        for event in self._mine[self._applied :]:
            _apply(self._state, self._of, own or "", event)
        self._applied = len(self._mine)
        return self._state


_INTERNAL = (ITEM, ITEM_OF, MOVED)


def _apply(live: dict[tuple[str, int], Event], of: str, session_id: str, event: Event) -> None:
    """Fold one event into the live items: an item, a retraction or a clear."""
    payload = event.payload
    if payload.get(ITEM_OF) != of:
        return
    if ITEM in payload:
        live[(session_id, event.seq)] = event
    elif RETRACT in payload:
        ref = payload[RETRACT]
        live.pop((str(ref.get("session")), int(ref.get("seq", 0))), None)
    elif CLEAR in payload:
        live.clear()


def _slim(
    item: Mapping[str, Any], readable: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The item with the long texts its readable fields repeat blanked, and where they were.

    Raises:
        InvalidInput: If the item nests too deeply to be searched (or stored).
    """
    from agent_continuity.errors import InvalidInput

    moved: dict[str, list[Any]] = {}
    try:
        slim = copy.deepcopy(dict(item))
        for name, text in readable.items():
            if isinstance(text, str) and len(text) >= _MOVE_AT_LEAST:
                path = _find(slim, text, [])
                if path is not None:
                    _put(slim, path, "")
                    moved[name] = path
    except RecursionError:
        # What the encoder would refuse as well: nothing of the batch is written.
        raise InvalidInput("an item cannot be stored as JSON: it nests too deeply") from None
    return slim, moved


def _find(value: Any, text: str, path: list[Any]) -> list[Any] | None:
    """The path of the first string equal to ``text`` in ``value`` (depth first)."""
    if isinstance(value, str):
        return path if value == text else None
    children = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in children:
        found = _find(child, text, [*path, key])
        if found is not None:
            return found
    return None


def _put(value: Any, path: list[Any], text: str) -> None:
    for key in path[:-1]:
        value = value[key]
    value[path[-1]] = text


def _whole(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A stored item as it was given: the moved texts put back (a fresh copy)."""
    item: dict[str, Any] = _copy(payload[ITEM])
    for name, path in payload.get(MOVED, {}).items():
        _put(item, path, payload[name])
    return item


def _copy(value: Any) -> Any:
    """A copy of a JSON value (a fresh item per read, as a database would give; 5x deepcopy)."""
    if isinstance(value, dict):
        return {k: _copy(v) if isinstance(v, dict | list) else v for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) if isinstance(v, dict | list) else v for v in value]
    return value
