"""The threads a ContinuitySaver has read, and the sessions that hold them.

A thread is a session of type ``langgraph`` whose task is the thread id. The
process that writes a thread owns its session: killed, it leaves the session
``interrupted``. The next writer continues the newest session when it is
active without a live owner (``continuity recover`` resumed it, or its owner
died unnoticed so far), and otherwise starts one, recording the interrupted
session it continues. Reading a thread reads all its sessions, oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol

from agent_continuity import EventKind, LiveSession, SessionManager, SessionRecord
from agent_continuity.errors import LeaseHeld, NoActiveSession

from .codec import ROLES, MessageRefs, message_payload
from .index import OP_KEY, SessionReader, ThreadIndex

#: The type of the sessions that hold LangGraph threads.
SESSION_TYPE = "langgraph"


@dataclass
class Thread:
    """A thread this process has read: its index, its sessions, and the one it writes."""

    id: str
    index: ThreadIndex
    records: list[SessionRecord]
    # The reader of each session read, by id: the newest one's state is where
    # a writer adopting that session carries on from.
    readers: dict[str, SessionReader] = field(default_factory=dict)
    live: LiveSession | None = None
    refs: MessageRefs = field(default_factory=MessageRefs)
    # ns -> (encoded checkpoint, encoded metadata, id) last written in the live session
    last: dict[str, tuple[dict[str, Any], dict[str, Any], str | None]] = field(default_factory=dict)


class Threads:
    """Finds, reads and writes threads through a session manager.

    Args:
        manager: The session manager of the store.
    """

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager
        self.read: dict[str, Thread] = {}

    def close(self) -> None:
        """End the sessions written through this object (their threads go on later)."""
        for thread in self.read.values():
            if thread.live is not None and not thread.live.closed:
                thread.live.end()
            thread.live = None

    def _records(self) -> dict[str, list[SessionRecord]]:
        found: dict[str, list[SessionRecord]] = {}
        for record in self.manager.sessions():
            task = record.context.current_task
            if record.type == SESSION_TYPE and task is not None:
                found.setdefault(task, []).append(record)
        return found

    def get(self, thread_id: str, serde: SerializerProtocol) -> Thread:
        """A thread, read from the store the first time it is asked for.

        Args:
            thread_id: The thread.
            serde: The asking saver's serializer, for the values it reads.

        Raises:
            CorruptRecord: If one of its journals is damaged: nothing is skipped silently.
        """
        thread = self.read.get(thread_id)
        if thread is not None:
            return thread
        thread = Thread(thread_id, ThreadIndex(thread_id), self._records().get(thread_id, []))
        for record in thread.records:
            reader = SessionReader(thread.index, serde)
            reader.read(self.manager.events(record.id))
            thread.readers[record.id] = reader
        self.read[thread_id] = thread
        return thread

    def all_ids(self) -> list[str]:
        """Every thread of the store, and those only this process has written so far."""
        found = list(self._records())
        return found + [t for t in self.read if t not in found]

    def live(self, thread: Thread) -> LiveSession:
        """The session this process writes the thread to, adopted or started on first use.

        Raises:
            LeaseHeld: If another live process writes the thread.
        """
        if thread.live is not None and not thread.live.closed:
            return thread.live
        newest = thread.records[-1] if thread.records else None
        live: LiveSession | None = None
        if newest is not None:
            try:
                live = self.manager.adopt(newest.id)
            except NoActiveSession:
                live = None
            except LeaseHeld as exc:
                raise LeaseHeld(
                    f"thread {thread.id!r} is being written by another live process ({exc}); "
                    "one process at a time writes a thread",
                    exc.holder,
                ) from exc
        if live is not None and newest is not None:
            reader = thread.readers.get(newest.id)
            thread.last = dict(reader.last) if reader is not None else {}
        else:
            interrupted = (
                newest is not None and self.manager.get(newest.id).status.value == "interrupted"
            )
            live = self.manager.start(
                type=SESSION_TYPE,
                task=thread.id,
                auto_save=False,  # every put is a durable write already
                recovered_from=newest.id if interrupted and newest is not None else None,
            )
            thread.records.append(live.record)
            thread.last = {}
        thread.live = live
        thread.refs = MessageRefs()
        return live

    def append(self, thread: Thread, op: dict[str, Any], text: str) -> None:
        """Write one operation, after the message events it refers to, as one durable group."""
        live = self.live(thread)
        refs = thread.refs
        drafts = [
            live.draft(EventKind.MESSAGE, message_payload(form, ROLES[message.type]))  # type: ignore[attr-defined]
            for message, form in refs.pending
        ]
        if drafts:
            op["n"] = len(drafts)
        drafts.append(live.draft(EventKind.NOTE, {"text": text, OP_KEY: op}))
        try:
            events = live.append_group(drafts)
        except BaseException:
            refs.abandon()
            raise
        refs.committed([event.seq for event in events[:-1]])
