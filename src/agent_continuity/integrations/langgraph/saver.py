"""ContinuitySaver: a LangGraph checkpointer that keeps each thread as a session.

Every ``put`` and ``put_writes`` is one atomic, durable group of journal
events (see :mod:`.threads` for which session): a ``note`` event holding the
checkpoint (only what changed since the previous one, and only the channels
whose versions changed) or the writes, preceded by a ``message`` event for
each LangChain message seen for the first time, so the conversation reads as
one in ``continuity show`` and ``continuity recover``. Deleting and pruning
are recorded as events too: the journal is append-only, so what they remove
is no longer read, though its bytes stay until the session is removed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
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

from agent_continuity import SessionManager
from agent_continuity.errors import InvalidInput

from .codec import Decoder, Encoder, diff
from .index import EMPTY, Delta, StoredCheckpoint, ThreadIndex, Version, abbreviated, prefix
from .threads import Thread, Threads

_T = TypeVar("_T")
# Spelled out here: inside the class, `list` is the saver's method.
_Tuples = list[CheckpointTuple]
_Ids = list[str]
_Writes = list[tuple[str, Any]]


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
        # Shared with the clones LangGraph makes (`with_allowlist`): one index per process.
        self._book = Threads(manager)
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
                self._book.close()
            finally:
                if self._owned is not None:
                    self._owned.close()
                    self._owned = None

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
            thread = self._book.get(thread_id, self.serde)
            self._put(
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
        thread: Thread,
        ns: str,
        checkpoint: Checkpoint | dict[str, Any],
        metadata: dict[str, Any],
        parent: str | None,
        new_versions: ChannelVersions,
    ) -> None:
        self._book.live(thread)
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
        self._book.append(thread, op, f"LangGraph step {metadata.get('step')}")
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
            thread = self._book.get(thread_id, self.serde)
            self._write(thread, ns, checkpoint_id, task_id, task_path, list(writes))

    def _write(
        self,
        thread: Thread,
        ns: str,
        checkpoint_id: str,
        task_id: str,
        task_path: str,
        writes: list[tuple[str, Any]],
    ) -> None:
        self._book.live(thread)
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
        self._book.append(thread, op, "LangGraph writes")
        index.add_writes(ns, checkpoint_id, kept)

    # -- reading --------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint named by ``config``, or the thread's newest in its namespace."""
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        ns = str(configurable.get("checkpoint_ns", ""))
        with self._lock:
            thread = self._book.get(thread_id, self.serde)
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
        thread: Thread,
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
        thread_ids = [str(configurable["thread_id"])] if config else self._book.all_ids()
        wanted_ns = configurable.get("checkpoint_ns")
        wanted_id = get_checkpoint_id(config) if config else None
        before_id = get_checkpoint_id(before) if before else None
        out: _Tuples = []
        for thread_id in thread_ids:
            thread = self._book.get(thread_id, self.serde)
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
            thread = self._book.get(str(thread_id), self.serde)
            if thread.records or thread.live is not None:
                self._book.append(thread, {"op": "delete"}, "LangGraph thread deleted")
            thread.index.clear()

    def _drop(self, thread: Thread, ns: str, ids: _Ids) -> None:
        if ids:
            self._book.append(
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
            for thread_id in self._book.all_ids():
                thread = self._book.get(thread_id, self.serde)
                for ns, stored in [*thread.index.checkpoints.items()]:
                    ids: _Ids = [c for c, s in stored.items() if s.metadata.get("run_id") in runs]
                    self._drop(thread, ns, ids)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Keep the newest checkpoint of each namespace (``keep_latest``), or none (``delete``).

        Raises:
            InvalidInput: If the strategy is neither.
        """
        if strategy not in ("keep_latest", "delete"):
            raise InvalidInput(f"prune strategy must be keep_latest or delete, not {strategy!r}")
        with self._lock:
            for thread_id in thread_ids:
                thread = self._book.get(str(thread_id), self.serde)
                for ns, stored in [*thread.index.checkpoints.items()]:
                    ids = sorted(stored)
                    self._drop(thread, ns, ids[:-1] if strategy == "keep_latest" else ids)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write of a thread into another, oldest first."""
        with self._lock:
            source = self._book.get(str(source_thread_id), self.serde)
            target_id = str(target_thread_id)
            target = self._book.get(target_id, self.serde)
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
                        self._write(target, ns, checkpoint_id, task_id, path, writes)

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
