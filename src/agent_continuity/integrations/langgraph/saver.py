"""ContinuitySaver: a LangGraph checkpointer that keeps each thread as a session.

Each thread is a session of type ``langgraph`` whose task is the thread id,
owned by the process that writes it: a process killed mid-run leaves it
``interrupted``, where ``continuity list`` and ``continuity recover`` find
it, and the next process that writes the thread continues it (adopting the
session when ``recover`` resumed it, or starting one that records what it
continues). A thread's history can so span several sessions; reading a thread
reads them all, oldest first.

Every ``put`` and ``put_writes`` is one atomic, durable group of journal
events: a ``note`` event holding the checkpoint (only what changed since the
previous one, and only the channels whose versions changed) or the writes,
preceded by a ``message`` event for each LangChain message seen for the first
time, so the conversation reads as one in ``continuity show``. Deleting and
pruning are recorded as events too: the journal is append-only, so what they
remove is no longer read, though its bytes stay until the session is removed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from agent_continuity import EventKind, LiveSession, SessionManager, SessionRecord
from agent_continuity.errors import InvalidInput, LeaseHeld, NoActiveSession

from .codec import ROLES, Decoder, Encoder, MessageRefs, diff, message_payload
from .index import (
    EMPTY,
    OP_KEY,
    Delta,
    SessionReader,
    StoredCheckpoint,
    ThreadIndex,
    Version,
    abbreviated,
    prefix,
)

#: The type of the sessions that hold LangGraph threads.
SESSION_TYPE = "langgraph"

_T = TypeVar("_T")
# Spelled out here: inside the class, `list` is the saver's method.
_Tuples = list[CheckpointTuple]
_Ids = list[str]
_Writes = list[tuple[str, Any]]


@dataclass
class _Thread:
    """A thread this process has read: its index, its sessions, and the one it writes."""

    index: ThreadIndex
    records: list[SessionRecord]
    # The reader of each session, by id: the newest one's state is where a
    # writer adopting that session carries on from.
    readers: dict[str, SessionReader] = field(default_factory=dict)
    live: LiveSession | None = None
    refs: MessageRefs = field(default_factory=MessageRefs)
    # ns -> (encoded checkpoint, encoded metadata, id) last written in the live session
    last: dict[str, tuple[dict[str, Any], dict[str, Any], str | None]] = field(default_factory=dict)


class ContinuitySaver(BaseCheckpointSaver[int]):
    """A LangGraph checkpointer over an agent-continuity store.

    Args:
        manager: The session manager whose store keeps the threads.
        serde: The serializer for values that are not plain JSON or LangChain
            messages (default: LangGraph's).

    Example:
        >>> with ContinuitySaver.from_conn_string("sqlite:///graph.db") as saver:  # doctest: +SKIP
        ...     graph = builder.compile(checkpointer=saver)
        ...     graph.invoke(inputs, {"configurable": {"thread_id": "1"}})
    """

    def __init__(self, manager: SessionManager, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        self.manager = manager
        self._lock = threading.RLock()
        self._threads: dict[str, _Thread] = {}
        self._owned: SessionManager | None = None

    @classmethod
    @contextmanager
    def from_conn_string(
        cls,
        conn_string: str,
        *,
        project_dir: str = ".",
        user_id: str | None = None,
        serde: SerializerProtocol | None = None,
    ) -> Iterator[ContinuitySaver]:
        """A saver over the store at a URL (``files:PATH``, ``sqlite:///PATH``...).

        Leaving the block ends the sessions this process wrote (their threads
        stay readable and writable) and closes the store.

        Args:
            conn_string: The store URL.
            project_dir: The project the sessions belong to.
            user_id: Whose sessions they are (default: configuration, then login name).
            serde: As for the constructor.

        Yields:
            The saver.
        """
        manager = SessionManager(
            store=conn_string, project_dir=project_dir, user_id=user_id, observer=False
        )
        saver = cls(manager, serde=serde)
        saver._owned = manager
        with saver:
            yield saver

    def __enter__(self) -> ContinuitySaver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the sessions this saver wrote; close the store if it opened it."""
        with self._lock:
            try:
                for thread in self._threads.values():
                    if thread.live is not None and not thread.live.closed:
                        thread.live.end()
                    thread.live = None
            finally:
                if self._owned is not None:
                    self._owned.close()
                    self._owned = None

    # -- threads and sessions -------------------------------------------

    def _records(self) -> dict[str, list[SessionRecord]]:
        found: dict[str, list[SessionRecord]] = {}
        for record in self.manager.sessions():
            task = record.context.current_task
            if record.type == SESSION_TYPE and task is not None:
                found.setdefault(task, []).append(record)
        return found

    def _thread(self, thread_id: str) -> _Thread:
        thread = self._threads.get(thread_id)
        if thread is not None:
            return thread
        records = self._records().get(thread_id, [])
        return self._load(thread_id, records)

    def _load(self, thread_id: str, records: list[SessionRecord]) -> _Thread:
        thread = _Thread(ThreadIndex(thread_id), records)
        for record in records:
            reader = SessionReader(thread.index, self.serde)
            reader.read(self.manager.events(record.id))
            thread.readers[record.id] = reader
        self._threads[thread_id] = thread
        return thread

    def _all_threads(self) -> list[str]:
        found = list(self._records())
        return found + [t for t in self._threads if t not in found]

    def _live(self, thread_id: str, thread: _Thread) -> LiveSession:
        if thread.live is not None and not thread.live.closed:
            return thread.live
        newest = thread.records[-1] if thread.records else None
        live: LiveSession | None = None
        if newest is not None:
            try:
                # Active without a live owner: resumed by `continuity recover`
                # (a command-line lease), or its owner died unnoticed so far.
                live = self.manager.adopt(newest.id)
            except NoActiveSession:
                live = None
            except LeaseHeld as exc:
                raise LeaseHeld(
                    f"thread {thread_id!r} is being written by another live process ({exc}); "
                    "one process at a time writes a thread"
                ) from exc
        if live is not None and newest is not None:
            reader = thread.readers.get(newest.id)
            thread.last = dict(reader.last) if reader is not None else {}
        else:
            interrupted = newest is not None and (
                self.manager.get(newest.id).status.value == "interrupted"
            )
            live = self.manager.start(
                type=SESSION_TYPE,
                task=thread_id,
                auto_save=False,
                recovered_from=newest.id if interrupted and newest is not None else None,
            )
            thread.records.append(live.record)
            thread.last = {}
        thread.live = live
        thread.refs = MessageRefs()
        return live

    def _append(self, thread_id: str, thread: _Thread, op: dict[str, Any], text: str) -> None:
        live = self._live(thread_id, thread)
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

    # -- writing --------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint: durable when this returns.

        Only the channels in ``new_versions`` are written; a list channel's
        new version as the items added to the previous one.
        """
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        ns = str(configurable.get("checkpoint_ns", ""))
        with self._lock:
            thread = self._threads.get(thread_id) or self._thread(thread_id)
            self._put(
                thread_id,
                thread,
                ns,
                checkpoint,
                dict(get_checkpoint_metadata(config, metadata)),
                configurable.get("checkpoint_id"),
                new_versions,
            )
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    def _put(
        self,
        thread_id: str,
        thread: _Thread,
        ns: str,
        checkpoint: Checkpoint | dict[str, Any],
        metadata: dict[str, Any],
        parent: str | None,
        new_versions: ChannelVersions,
    ) -> None:
        self._live(thread_id, thread)
        index = thread.index
        pure = Encoder(self.serde)
        encoder = Encoder(self.serde, thread.refs)
        values: dict[str, Any] = checkpoint["channel_values"]
        ck = abbreviated(pure.value({k: v for k, v in checkpoint.items() if k != "channel_values"}))
        md = pure.value(metadata)
        before_ck, before_md, before_id = thread.last.get(ns, ({}, {}, None))
        blobs: dict[str, list[Any]] = {}
        stored: dict[str, tuple[Version, Any, tuple[Any, ...] | None]] = {}
        try:
            for channel, version in new_versions.items():
                if channel not in values:
                    blobs[channel] = [version]
                    stored[channel] = (version, EMPTY, None)
                    continue
                data, keep, items = self._blob(
                    index, ns, channel, version, values[channel], encoder
                )
                blobs[channel] = [version, data]
                stored[channel] = (version, keep, items)
        except BaseException:
            thread.refs.abandon()
            raise
        op: dict[str, Any] = {"op": "put"}
        if ns:
            op["ns"] = ns
        op["ck"] = diff(before_ck, ck)
        op["md"] = diff(before_md, md)
        if parent != before_id:
            op["pa"] = parent
        op["b"] = blobs
        # What `continuity recover` shows as the last action: where the graph was.
        self._append(thread_id, thread, op, f"LangGraph step {metadata.get('step')}")
        thread.last[ns] = (ck, md, checkpoint["id"])
        for channel, (version, keep, items) in stored.items():
            index.put_blob(ns, channel, version, keep)
            if items is not None:
                index.remember(ns, channel, version, items)
        decoder = Decoder(self.serde)
        index.checkpoints.setdefault(ns, {})[checkpoint["id"]] = StoredCheckpoint(
            decoder.value(abbreviated(ck, expand=True)), decoder.value(md), parent
        )

    @staticmethod
    def _blob(
        index: ThreadIndex, ns: str, channel: str, version: Version, value: Any, encoder: Encoder
    ) -> tuple[Any, Any, tuple[Any, ...] | None]:
        """(what to write, what to keep in the index, the list's items) for one channel."""
        if type(value) is not list:
            return encoder.value(value), value, None
        items = tuple(value)
        base = index.newest.get((ns, channel))
        if base is not None and base != version:
            before = index.items(ns, channel, base)
            shared = prefix(before, value) if before else 0
            if shared:
                added = value[shared:]
                data = {"$d": [base, shared, [encoder.value(item) for item in added]]}
                return data, Delta(base, shared, list(added)), items
        return encoder.value(value), list(value), items

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes to a checkpoint: durable when this returns."""
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        ns = str(configurable.get("checkpoint_ns", ""))
        checkpoint_id = str(configurable["checkpoint_id"])
        with self._lock:
            thread = self._threads.get(thread_id) or self._thread(thread_id)
            self._write(thread_id, thread, ns, checkpoint_id, task_id, task_path, list(writes))

    def _write(
        self,
        thread_id: str,
        thread: _Thread,
        ns: str,
        checkpoint_id: str,
        task_id: str,
        task_path: str,
        writes: list[tuple[str, Any]],
    ) -> None:
        self._live(thread_id, thread)
        index = thread.index
        encoder = Encoder(self.serde, thread.refs)
        rows: list[list[Any]] = []
        kept: list[tuple[str, int, str, Any, str]] = []
        try:
            for position, (channel, value) in enumerate(writes):
                idx = WRITES_IDX_MAP.get(channel, position)
                # As LangGraph's own savers: a regular write is stored once; the
                # special ones (errors, interrupts) replace what was there.
                if idx >= 0 and index.has_write(ns, checkpoint_id, task_id, idx):
                    continue
                rows.append([idx, channel, encoder.value(value)])
                kept.append((task_id, idx, channel, value, task_path))
        except BaseException:
            thread.refs.abandon()
            raise
        if not rows:
            return
        op: dict[str, Any] = {"op": "writes"}
        if ns:
            op["ns"] = ns
        if thread.last.get(ns, ({}, {}, None))[2] != checkpoint_id:
            op["id"] = checkpoint_id  # left out when it is the checkpoint just written
        op["t"] = task_id
        if task_path:
            op["tp"] = task_path
        op["w"] = rows
        self._append(thread_id, thread, op, "LangGraph writes")
        index.add_writes(ns, checkpoint_id, kept)

    # -- reading --------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint named by ``config``, or the thread's newest in its namespace."""
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        ns = str(configurable.get("checkpoint_ns", ""))
        with self._lock:
            thread = self._thread(thread_id)
            stored = thread.index.checkpoints.get(ns, {})
            checkpoint_id = get_checkpoint_id(config)
            if checkpoint_id:
                found = stored.get(checkpoint_id)
                return self._tuple(thread, ns, checkpoint_id, found, config) if found else None
            if not stored:
                return None
            newest = max(stored)
            return self._tuple(thread, ns, newest, stored[newest], None)

    def _tuple(
        self,
        thread: _Thread,
        ns: str,
        checkpoint_id: str,
        stored: StoredCheckpoint,
        config: RunnableConfig | None,
    ) -> CheckpointTuple:
        index = thread.index
        thread_id = index.thread_id
        checkpoint: dict[str, Any] = dict(stored.checkpoint)
        versions = dict(checkpoint.get("channel_versions", {}))
        checkpoint["channel_versions"] = versions
        seen = checkpoint.get("versions_seen")
        if isinstance(seen, dict):
            checkpoint["versions_seen"] = {
                k: dict(v) if isinstance(v, dict) else v for k, v in seen.items()
            }
        checkpoint["channel_values"] = {
            channel: index.value(ns, channel, version)
            for channel, version in versions.items()
            if index.has_value(ns, channel, version)
        }
        writes = index.writes.get((ns, checkpoint_id), {})
        ordered = sorted(writes.items(), key=lambda kv: writes_sort_key(kv[1][3], *kv[0]))
        parent = stored.parent
        return CheckpointTuple(
            config=config
            or {
                "configurable": {
                    "thread_id": thread_id,
                    "checkpoint_ns": ns,
                    "checkpoint_id": checkpoint_id,
                }
            },
            checkpoint=checkpoint,  # type: ignore[arg-type]
            metadata=dict(stored.metadata),  # type: ignore[arg-type]
            parent_config=(
                {
                    "configurable": {
                        "thread_id": thread_id,
                        "checkpoint_ns": ns,
                        "checkpoint_id": parent,
                    }
                }
                if parent
                else None
            ),
            pending_writes=[
                (task, channel, value) for task, channel, value, _ in (row for _, row in ordered)
            ],
        )

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints matching the criteria, newest first within each namespace."""
        with self._lock:
            found = self._select(config, filter, before, limit)
        yield from found

    def _select(
        self,
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> _Tuples:
        configurable = config["configurable"] if config else {}
        thread_ids = [str(configurable["thread_id"])] if config else self._all_threads()
        wanted_ns = configurable.get("checkpoint_ns")
        wanted_id = get_checkpoint_id(config) if config else None
        before_id = get_checkpoint_id(before) if before else None
        out: _Tuples = []
        for thread_id in thread_ids:
            thread = self._thread(thread_id)
            for ns, stored in thread.index.checkpoints.items():
                if wanted_ns is not None and ns != wanted_ns:
                    continue
                for checkpoint_id in sorted(stored, reverse=True):
                    if wanted_id and checkpoint_id != wanted_id:
                        continue
                    if before_id and checkpoint_id >= before_id:
                        continue
                    item = stored[checkpoint_id]
                    if filter and not all(item.metadata.get(k) == v for k, v in filter.items()):
                        continue
                    if limit is not None and len(out) >= limit:
                        return out
                    out.append(self._tuple(thread, ns, checkpoint_id, item, None))
        return out

    # -- deleting and copying -------------------------------------------

    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread's checkpoints and writes (recorded in the journal)."""
        with self._lock:
            thread = self._thread(str(thread_id))
            if thread.records or thread.live is not None:
                self._append(str(thread_id), thread, {"op": "delete"}, "LangGraph thread deleted")
            thread.index.clear()

    def _drop(self, thread_id: str, thread: _Thread, ns: str, ids: _Ids) -> None:
        if ids:
            self._append(
                thread_id,
                thread,
                {"op": "drop", "ns": ns, "ids": ids},
                "LangGraph checkpoints deleted",
            )
            thread.index.drop(ns, ids)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) that these runs made, in every thread."""
        runs = set(run_ids)
        if not runs:
            return
        with self._lock:
            for thread_id in self._all_threads():
                thread = self._thread(thread_id)
                for ns, stored in [*thread.index.checkpoints.items()]:
                    ids: _Ids = [c for c, s in stored.items() if s.metadata.get("run_id") in runs]
                    self._drop(thread_id, thread, ns, ids)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Keep the newest checkpoint of each namespace (``keep_latest``), or none (``delete``).

        Raises:
            InvalidInput: If the strategy is neither.
        """
        if strategy not in ("keep_latest", "delete"):
            raise InvalidInput(f"prune strategy must be keep_latest or delete, not {strategy!r}")
        with self._lock:
            for thread_id in thread_ids:
                thread = self._thread(str(thread_id))
                for ns, stored in [*thread.index.checkpoints.items()]:
                    ids = sorted(stored)
                    self._drop(
                        str(thread_id), thread, ns, ids[:-1] if strategy == "keep_latest" else ids
                    )

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write of a thread into another, oldest first."""
        with self._lock:
            source = self._thread(str(source_thread_id))
            target_id = str(target_thread_id)
            target = self._thread(target_id)
            index = source.index
            for ns, stored in [*index.checkpoints.items()]:
                for checkpoint_id in sorted(stored):
                    item = stored[checkpoint_id]
                    versions = item.checkpoint.get("channel_versions", {})
                    new_versions = {
                        ch: v for ch, v in versions.items() if (ns, ch, v) not in target.index.blobs
                    }
                    values = {
                        ch: index.value(ns, ch, v)
                        for ch, v in new_versions.items()
                        if index.has_value(ns, ch, v)
                    }
                    checkpoint = {**item.checkpoint, "channel_values": values}
                    self._put(
                        target_id,
                        target,
                        ns,
                        checkpoint,
                        dict(item.metadata),
                        item.parent,
                        new_versions,
                    )
                    by_task: dict[tuple[str, str], _Writes] = {}
                    for (task_id, _), (_, channel, value, path) in sorted(
                        index.writes.get((ns, checkpoint_id), {}).items(),
                        key=lambda kv: writes_sort_key(kv[1][3], *kv[0]),
                    ):
                        by_task.setdefault((task_id, path), []).append((channel, value))
                    for (task_id, path), writes in by_task.items():
                        self._write(target_id, target, ns, checkpoint_id, task_id, path, writes)

    def get_next_version(self, current: int | None, channel: None) -> int:
        """The next version of a channel: whole numbers, which keep checkpoints small."""
        if current is None:
            return 1
        if isinstance(current, str):  # a thread written by a saver with string versions
            return int(current.split(".")[0]) + 1
        return int(current) + 1

    # -- async: the same work in a worker thread ------------------------

    async def _run(self, call: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(None, call)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """As :meth:`get_tuple`."""
        return await self._run(lambda: self.get_tuple(config))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """As :meth:`list`."""

        def select() -> _Tuples:
            with self._lock:
                return self._select(config, filter, before, limit)

        for item in await self._run(select):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """As :meth:`put`."""
        return await self._run(lambda: self.put(config, checkpoint, metadata, new_versions))

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """As :meth:`put_writes`."""
        await self._run(lambda: self.put_writes(config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        """As :meth:`delete_thread`."""
        await self._run(lambda: self.delete_thread(thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """As :meth:`delete_for_runs`."""
        await self._run(lambda: self.delete_for_runs(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """As :meth:`copy_thread`."""
        await self._run(lambda: self.copy_thread(source_thread_id, target_thread_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """As :meth:`prune`."""
        await self._run(lambda: self.prune(thread_ids, strategy=strategy))
