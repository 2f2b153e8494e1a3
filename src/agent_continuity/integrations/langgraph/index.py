"""One thread's checkpoints, writes and channel values, as ContinuitySaver holds them.

The journal is the truth; this is what reading it gives, kept in memory for
the threads a process touches. Channel values are stored the way LangGraph's
own savers store them, one blob per channel version, written only when the
version changes; a list channel's new version (the ``messages`` of
``MessagesState``) is stored as the items it added to an earlier version
(:class:`Delta`), so a conversation of N messages costs N messages on disk,
not N squared.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agent_continuity import Event, EventKind
from agent_continuity.errors import CorruptRecord

from .codec import Decoder, form_of_event, patch

Version = str | int | float

#: The key of a note event's payload that holds the saver's operation.
OP_KEY = "lg"
#: Short names for a checkpoint's usual keys, written when none of them is a key already.
_SHORT = {"channel_versions": "cv", "versions_seen": "vs", "updated_channels": "uc"}
_LONG = {short: long for long, short in _SHORT.items()}

#: A channel version written without a value (LangGraph's "empty" blob).
EMPTY: Any = object()
_MEMO = 16  # materialised list values kept (the newest version of each list channel, mostly)


@dataclass(frozen=True, slots=True)
class Delta:
    """A list value stored as ``base[:keep] + items``."""

    base: Version
    keep: int
    items: list[Any]


@dataclass(slots=True)
class StoredCheckpoint:
    """A checkpoint without its channel values, its metadata and its parent's id."""

    checkpoint: dict[str, Any]
    metadata: dict[str, Any]
    parent: str | None


class ThreadIndex:
    """What the journal says of one thread: checkpoints, pending writes and blobs."""

    def __init__(self, thread_id: str) -> None:
        self.thread_id = thread_id
        # ns -> checkpoint id -> checkpoint
        self.checkpoints: dict[str, dict[str, StoredCheckpoint]] = {}
        # (ns, checkpoint id) -> (task id, idx) -> (task id, channel, value, task path)
        self.writes: dict[tuple[str, str], dict[tuple[str, int], tuple[str, str, Any, str]]] = {}
        self.blobs: dict[tuple[str, str, Version], Any] = {}
        # (ns, channel) -> the newest version stored: the base of the next delta.
        self.newest: dict[tuple[str, str], Version] = {}
        self._memo: OrderedDict[tuple[str, str, Version], tuple[Any, ...]] = OrderedDict()

    def clear(self) -> None:
        """Forget everything (the thread was deleted)."""
        self.checkpoints.clear()
        self.writes.clear()
        self.blobs.clear()
        self.newest.clear()
        self._memo.clear()

    # -- channel values ---------------------------------------------------

    def put_blob(self, ns: str, channel: str, version: Version, stored: Any) -> None:
        """Keep a channel version's value (a value, a :class:`Delta` or :data:`EMPTY`)."""
        key = (ns, channel, version)
        self.blobs[key] = stored
        self._memo.pop(key, None)
        self.newest[(ns, channel)] = version

    def remember(self, ns: str, channel: str, version: Version, items: tuple[Any, ...]) -> None:
        """Keep a list version's items materialised (what was just written)."""
        self._memo[(ns, channel, version)] = items
        self._memo.move_to_end((ns, channel, version))
        while len(self._memo) > _MEMO:
            self._memo.popitem(last=False)

    def has_value(self, ns: str, channel: str, version: Version) -> bool:
        """Whether a value (not an empty blob) is stored for this channel version."""
        stored = self.blobs.get((ns, channel, version), EMPTY)
        return stored is not EMPTY

    def value(self, ns: str, channel: str, version: Version) -> Any:
        """A channel version's value (a fresh list for list values).

        Raises:
            CorruptRecord: If a delta's base version is not in the journal.
        """
        items = self.items(ns, channel, version)
        if items is not None:
            return list(items)
        return self.blobs[(ns, channel, version)]

    def items(self, ns: str, channel: str, version: Version) -> tuple[Any, ...] | None:
        """A list version's items (None when the version holds something else)."""
        key = (ns, channel, version)
        memo = self._memo.get(key)
        if memo is not None:
            return memo
        chain: list[Delta] = []
        cursor = key
        while True:
            stored = self.blobs.get(cursor, EMPTY)
            if isinstance(stored, Delta):
                found = self._memo.get(cursor)
                if found is not None:
                    base: list[Any] = list(found)
                    break
                chain.append(stored)
                cursor = (ns, channel, stored.base)
                continue
            if stored is EMPTY and chain:
                raise CorruptRecord(
                    f"thread {self.thread_id}: channel {channel!r} version {cursor[2]!r}, "
                    f"on which a later version builds, is not in the journal; "
                    "`continuity verify` checks the store"
                )
            if type(stored) is not list:
                return None
            base = list(stored)
            break
        for delta in reversed(chain):
            del base[delta.keep :]
            base.extend(delta.items)
        materialised = tuple(base)
        self.remember(ns, channel, version, materialised)
        return materialised

    # -- checkpoints and writes ----------------------------------------

    def drop(self, ns: str, ids: Iterable[str]) -> None:
        """Forget some checkpoints of a namespace and their writes."""
        stored = self.checkpoints.get(ns, {})
        for checkpoint_id in ids:
            stored.pop(checkpoint_id, None)
            self.writes.pop((ns, checkpoint_id), None)

    def add_writes(
        self, ns: str, checkpoint_id: str, writes: Iterable[tuple[str, int, str, Any, str]]
    ) -> None:
        """Keep writes as (task id, idx, channel, value, task path)."""
        stored = self.writes.setdefault((ns, checkpoint_id), {})
        for task_id, idx, channel, value, task_path in writes:
            stored[(task_id, idx)] = (task_id, channel, value, task_path)

    def has_write(self, ns: str, checkpoint_id: str, task_id: str, idx: int) -> bool:
        """Whether this write is kept already."""
        return (task_id, idx) in self.writes.get((ns, checkpoint_id), {})


def abbreviated(checkpoint: dict[str, Any], *, expand: bool = False) -> dict[str, Any]:
    """An encoded checkpoint with its usual keys shortened (or, with ``expand``, restored).

    A checkpoint that already has a key named like a short one is left as it
    is, and marked so with ``"~": 1`` to be left as it is when read.
    """
    if expand:
        if checkpoint.get("~") == 1:
            return {k: v for k, v in checkpoint.items() if k != "~"}
        return {_LONG.get(k, k): v for k, v in checkpoint.items()}
    if any(k in _LONG or k == "~" for k in checkpoint):
        return {**checkpoint, "~": 1}
    return {_SHORT.get(k, k): v for k, v in checkpoint.items()}


class SessionReader:
    """Folds one session's journal into a thread's index.

    The encodings that refer back (messages, checkpoint and metadata diffs, the
    parent id left out when it is the previous checkpoint) are per session, so
    each session is read with a fresh reader, in the order the sessions were made.
    """

    def __init__(self, index: ThreadIndex, serde: Any) -> None:
        self.index = index
        self.serde = serde
        self.messages: dict[int, dict[str, Any]] = {}
        self.last: dict[str, tuple[dict[str, Any], dict[str, Any], str | None]] = {}

    def read(self, events: Iterable[Event]) -> None:
        """Apply the saver's events of the session, in order."""
        for event in events:
            payload = event.payload
            if event.kind is EventKind.MESSAGE:
                if "lg" in payload:
                    self.messages[event.seq] = form_of_event(payload)
                continue
            op = payload.get(OP_KEY) if event.kind is EventKind.NOTE else None
            if isinstance(op, dict):
                self.apply(op, event.seq)

    def _form(self, seq: int) -> dict[str, Any]:
        try:
            return self.messages[seq]
        except KeyError:
            raise CorruptRecord(
                f"thread {self.index.thread_id}: message event {seq} is missing from the "
                "journal; `continuity verify` checks the store"
            ) from None

    def apply(self, op: dict[str, Any], seq: int) -> None:
        """Apply one operation the saver recorded at ``seq``."""
        index = self.index
        decoder = Decoder(self.serde, self._form, seq - int(op.get("n", 0)))
        what = op.get("op")
        ns = str(op.get("ns", ""))
        if what == "put":
            before_ck, before_md, before_id = self.last.get(ns, ({}, {}, None))
            ck = patch(before_ck, op["ck"])
            md = patch(before_md, op["md"])
            parent = op["pa"] if "pa" in op else before_id
            checkpoint = decoder.value(abbreviated(ck, expand=True))
            self.last[ns] = (ck, md, checkpoint["id"])
            for channel, blob in op.get("b", {}).items():
                index.put_blob(ns, channel, blob[0], self._blob(decoder, blob))
            index.checkpoints.setdefault(ns, {})[checkpoint["id"]] = StoredCheckpoint(
                checkpoint, decoder.value(md), parent
            )
        elif what == "writes":
            index.add_writes(
                ns,
                op["id"] if "id" in op else self.last.get(ns, ({}, {}, ""))[2] or "",
                (
                    (op["t"], idx, channel, decoder.value(value), op.get("tp", ""))
                    for idx, channel, value in op["w"]
                ),
            )
        elif what == "drop":
            index.drop(ns, op["ids"])
        elif what == "delete":
            index.clear()
        self.messages.update(decoder.patched)

    @staticmethod
    def _blob(decoder: Decoder, blob: list[Any]) -> Any:
        if len(blob) == 1:
            return EMPTY
        data = blob[1]
        if type(data) is dict and "$d" in data:
            base, keep, items = data["$d"]
            return Delta(base, int(keep), [decoder.value(item) for item in items])
        return decoder.value(data)


def prefix(old: tuple[Any, ...], new: list[Any]) -> int:
    """How many leading items ``new`` shares with ``old`` (the same objects, or equal text/ints).

    Identity, not equality: LangGraph's reducers build each new list from the
    same message objects, and equality would take ``1`` for ``True``.
    """
    size = len(old)
    if len(new) >= size and all(map(operator.is_, old, new[:size])):
        return size  # the common case, at C speed: items were only added
    shared = 0
    for before, after in zip(old, new, strict=False):
        if before is after or (
            type(before) in (str, int) and type(before) is type(after) and before == after
        ):
            shared += 1
        else:
            break
    return shared


def is_saver_message(event: Event) -> bool:
    """Whether ``event`` is a message the saver wrote (it carries the message's fields)."""
    return event.kind is EventKind.MESSAGE and "lg" in event.payload
