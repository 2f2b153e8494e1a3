"""The search index of a store: where it lives, catching it up, querying and rebuilding it.

Where the index lives: a files store's ``search/index.sqlite`` inside its
folder; beside an SQLite store's database, ``NAME.db.search``; in memory for
``memory:``. A store may bring its own (``search_index()``: the PostgreSQL
store's tsvector table).

An encrypted store's index is never written to disk: it would hold in plain
text the words the encryption protects. It is kept in memory for the life of
the process instead: built from the journals on the first query (which
therefore reads, and decrypts, every journal), caught up like any other after
that. ``continuity serve`` and ``continuity mcp`` keep it between queries
(by store URL, even across store handles); a ``continuity search`` command
builds it each time. A plaintext index left
from before the store was encrypted is deleted when found (and by
``keys new``, :func:`discard_disk_index`).

Before each query the index is caught up: the journals' heads
(:mod:`.heads`) are compared with the index's marks, and only the journals
that moved are read, after the sequence number already indexed. An index
that cannot be read is deleted and rebuilt from the journals, which it never
touches.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_continuity.errors import InvalidIdentifier, InvalidInput
from agent_continuity.storage import Store

from .heads import journal_heads
from .index import IndexedEvent, Mark, SearchHit, SearchIndex, SqliteSearchIndex, query_words
from .text import searchable_text

__all__ = [
    "SearchHit",
    "SearchResults",
    "discard_disk_index",
    "encrypted",
    "index_path",
    "rebuild_index",
    "search_store",
]

#: The most results one query returns.
MAX_LIMIT = 1000

# One open index per store handle: opening costs more than a query. Kept until
# the store handle is gone (an index is derived data: nothing to flush).
_OPEN: weakref.WeakKeyDictionary[Any, SearchIndex] = weakref.WeakKeyDictionary()
# An encrypted store's in-memory index, by store URL and key ids: kept for the
# process even when each call opens the store afresh (the MCP server does), as
# building it reads and decrypts every journal.
_MEMORY: dict[tuple[str, str], SearchIndex] = {}
# One search or rebuild at a time in a process: the open indexes and the heads
# readers are shared by every thread (a server's requests), their connections too.
_LOCK = threading.RLock()


@dataclass(slots=True)
class SearchResults:
    """The answer to ``continuity search`` (``to_wire()`` is its ``--json`` object).

    Attributes:
        query: The query as given.
        hits: The matching events, best first.
        rebuilt: How many events a rebuild asked for indexed (None: no rebuild).
        in_memory: The store is encrypted, so its index is kept in memory only.
    """

    query: str
    hits: list[SearchHit] = field(default_factory=list)
    rebuilt: int | None = None
    in_memory: bool = False

    def to_wire(self) -> dict[str, Any]:
        """``{"query", "results": [{"sessionId", "seq", "kind", "snippet", "score"}]}``.

        Plus ``"rebuilt": N`` after a rebuild, and ``"indexInMemory": true`` for
        an encrypted store (its index is never written to disk).
        """
        wire: dict[str, Any] = {"query": self.query, "results": [h.to_wire() for h in self.hits]}
        if self.rebuilt is not None:
            wire["rebuilt"] = self.rebuilt
        if self.in_memory:
            wire["indexInMemory"] = True
        return wire


def encrypted(store: Store) -> bool:
    """Whether the store seals its records (its index must then stay in memory)."""
    return getattr(store, "sealer", None) is not None


def index_path(store: Store) -> Path | None:
    """Where a store's search index file is (None: in memory or the store's own)."""
    if encrypted(store):
        return None
    return _disk_path(store)


def _disk_path(store: Store) -> Path | None:
    """Where a plaintext store keeps its index file (also where an old one may be left)."""
    root = getattr(store, "root", None)
    if store.url.startswith("files:") and isinstance(root, Path):
        return root / "search" / "index.sqlite"
    path = getattr(store, "path", None)
    if store.url.startswith("sqlite:") and isinstance(path, Path):
        return path.with_name(path.name + ".search")
    return None


def _discard(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def discard_disk_index(store: Store) -> None:
    """Delete the index file a plaintext store kept (``keys new``: it holds readable text).

    An index this process has open on it is closed and forgotten too; the next
    query builds the index again, in memory once the store is encrypted.
    """
    with _LOCK:
        opened = _OPEN.pop(store, None)
        if opened is not None:
            _close(opened)
        path = _disk_path(store)
        if path is not None:
            _discard(path)


def _open(store: Store) -> SearchIndex:
    opened = _OPEN.get(store)
    if opened is not None:
        return opened
    own = getattr(store, "search_index", None)
    if callable(own):
        opened = own()
    else:
        path = index_path(store)
        if encrypted(store):
            stale = _disk_path(store)
            if stale is not None:
                _discard(stale)  # left from before the store was encrypted: readable text
            key = _memory_key(store)
            opened = _MEMORY.get(key)
            if opened is None:
                opened = _MEMORY[key] = SqliteSearchIndex(":memory:")
        elif path is None:
            opened = SqliteSearchIndex(":memory:")
        else:
            try:
                opened = SqliteSearchIndex(path)
                opened.marks()
            except sqlite3.DatabaseError:
                # Derived data: a damaged index is thrown away and built again from the journals.
                _discard(path)
                opened = SqliteSearchIndex(path)
    _OPEN[store] = opened
    return opened


def _memory_key(store: Store) -> tuple[str, str]:
    sealer = getattr(store, "sealer", None)
    kids = sorted(sealer.key_ids) if sealer is not None else []
    return (store.url, ",".join(kids))


def _close(opened: SearchIndex) -> None:
    for key in [k for k, index in _MEMORY.items() if index is opened]:
        del _MEMORY[key]
    opened.close()


def _drop(store: Store) -> None:
    """Close and forget a store's index after it failed; a damaged file is deleted."""
    opened = _OPEN.pop(store, None)
    if opened is not None:
        _close(opened)
    path = index_path(store)
    if path is not None:
        _discard(path)


def catch_up(store: Store, index: SearchIndex) -> int:
    """Index what the journals gained since the index last saw them.

    Returns:
        How many events were indexed.
    """
    heads = journal_heads(store)
    marks = index.marks()
    todo: Sequence[tuple[str, int | None]]
    if heads is None:
        todo = [(record.id, None) for record in store.list_sessions()]
    else:
        gone = [sid for sid in marks if sid not in heads]
        if gone:
            index.forget(gone)
        todo = [
            (sid, head)
            for sid, head in heads.items()
            if (mark := marks.get(sid)) is None or mark.head != head
        ]
    indexed = 0
    for session_id, head in todo:
        try:
            indexed += _catch_up_session(store, index, session_id, head, marks.get(session_id))
        except InvalidIdentifier:
            continue  # a journal file named like a session but of no real day
    return indexed


def _catch_up_session(
    store: Store, index: SearchIndex, session_id: str, head: int | None, mark: Mark | None
) -> int:
    restart = mark is not None and head is not None and head < mark.head
    after = 0 if mark is None or restart else mark.seq
    user = "" if mark is None or restart else mark.user
    read = store.read_events(session_id, after_seq=after)
    docs: list[IndexedEvent] = []
    for event in read.events:
        kind = event.kind.value
        if kind == "session":
            record = event.payload.get("record")
            if isinstance(record, dict) and isinstance(record.get("userId"), str):
                user = record["userId"]
            continue
        text = searchable_text(kind, event.payload)
        if text is not None:
            docs.append(IndexedEvent(event.seq, kind, text))
    seq = max(after, read.last_seq)
    if mark is not None and not restart and seq == mark.seq and head == mark.head:
        return 0
    index.add(session_id, docs, Mark(seq, head if head is not None else seq, user), restart=restart)
    return len(docs)


def _limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"--limit must be a whole number from 1 to {MAX_LIMIT}, not {limit!r}")
    return limit


def search_store(
    store: Store, query: str, *, user: str | None = None, limit: int = 20
) -> list[SearchHit]:
    """Search every session's journal; the index is caught up first.

    Args:
        store: The store.
        query: Words to look for; an event must hold them all (any, when none holds all).
        user: Only this user's sessions; None for every user's.
        limit: The most results.

    Raises:
        InvalidInput: If the query has no word or the limit is out of range.
    """
    words = query_words(query)
    if not words:
        raise InvalidInput(f"search for at least one word, not {query!r}")
    limit = _limit(limit)
    with _LOCK:
        return _search(store, words, user, limit)


def _search(store: Store, words: list[str], user: str | None, limit: int) -> list[SearchHit]:
    for attempt in (1, 2):
        index = _open(store)
        try:
            catch_up(store, index)
            return index.query(words, user, limit)
        except sqlite3.DatabaseError:
            if attempt == 2:
                raise
            _drop(store)  # damaged while in use: rebuilt on the second attempt
    raise AssertionError("unreachable")


def rebuild_index(store: Store, *, only_if_present: bool = False) -> int | None:
    """Build the search index again from the journals.

    Args:
        store: The store.
        only_if_present: Do nothing (return None) when the store has no index yet.

    Returns:
        How many events were indexed, or None when nothing was done.
    """
    with _LOCK:
        return _rebuild(store, only_if_present)


def _rebuild(store: Store, only_if_present: bool) -> int | None:
    path = index_path(store)
    if only_if_present:
        present = path.exists() if path is not None else store in _OPEN
        present = present or (encrypted(store) and _memory_key(store) in _MEMORY)
        if not present and not callable(getattr(store, "search_index", None)):
            return None
    try:
        index = _open(store)
        index.clear()
    except sqlite3.DatabaseError:
        _drop(store)
        index = _open(store)
    return catch_up(store, index)
