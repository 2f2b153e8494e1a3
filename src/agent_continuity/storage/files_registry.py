"""The files store's session registry and list of active sessions, read and replaced.

``sessions/session-registry.json`` maps every session id to its record and
``sessions/active-sessions.json`` lists the active ones. Both are an index
over the journals (see :mod:`.index`): they are written under the registry
lock, replaced atomically, and rebuilt from the journals when damaged
(:mod:`.files_index`). Like that module, these functions use the store's
internals on purpose.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from agent_continuity import ids
from agent_continuity.errors import CorruptRecord, InvalidIdentifier
from agent_continuity.model import EventKind, SessionRecord

from . import codec
from .atomic import replace_atomically, store_error
from .files_documents import read_document, validate
from .files_layout import Entries, Layout, active_document, parse_registry, registry_document
from .journal_file import read_journal

if TYPE_CHECKING:
    from .files import FileStore


@dataclass(slots=True)
class RegistryCopy:
    """The registry as last read: its bytes, wire entries, and records validated on first use."""

    data: bytes
    entries: Entries
    records: dict[str, SessionRecord] = field(default_factory=dict)


def finish_interrupted_writes(store: FileStore) -> None:
    """Complete the registry updates of a writer killed half-way (registry lock held).

    A new session's journal appears before its registry entry, and the
    active list is replaced after the registry; ``kill -9`` between the two
    leaves the index behind the journals. That is a crash, not damage, so
    the next process to open the store finishes the job: a journal holding
    exactly one whole creation event is indexed, and an active list that is
    missing or disagrees with the registry is rewritten. Anything else (a damaged
    registry, a registry entry lost with later events) is damage, left for
    ``continuity verify`` to report and ``--repair`` to rebuild.
    """
    try:
        entries = read_registry(store).entries
        listed = read_document(store.layout.active)
    except CorruptRecord:
        return
    created: Entries = {}
    for session_id in store.layout.journal_ids():
        if session_id in entries:
            continue
        read, damaged, _ = read_journal(store.layout.journal(session_id), sealer=store.sealer)
        if damaged or len(read.events) != 1 or read.events[0].kind is not EventKind.SESSION:
            continue
        record = read.events[0].payload.get("record")
        if isinstance(record, dict) and record.get("id") == session_id:
            created[session_id] = record
    if created:
        write_registry(store, {**entries, **created}, None)
    elif listed != active_document(entries):
        replace_atomically(store.layout.active, codec.dump_document(active_document(entries)))


def highest_number(layout: Layout, day: date, entries: Entries) -> int:
    """The highest number among ``day``'s sessions, by journal, registry entry or
    recovery points; 0 if none."""
    prefix = f"SESSION-{ids.day_code(day)}-"
    try:
        names = os.listdir(layout.journals)
    except OSError as exc:
        raise store_error(exc, "list", layout.journals) from exc
    taken = [n.removesuffix(".jsonl") for n in names if n.startswith(prefix)]
    taken += [s for s in entries if s.startswith(prefix)]
    # A session whose journal and registry entry are both lost still owns its
    # number while its recovery points hold it.
    taken += [s for s in layout.point_session_ids() if s.startswith(prefix)]
    numbers = [0]
    for session_id in taken:
        try:
            numbers.append(ids.parse_session_id(session_id).number)
        except InvalidIdentifier:
            continue
    return max(numbers)


def read_registry(store: FileStore) -> RegistryCopy:
    """The registry as on disk now; parsed again only when its bytes changed.

    The bytes are compared rather than size and mtime: two rewrites within
    one timestamp tick can reuse the inode and keep the size, and a stale
    copy under the lock would lose another process's update.
    """
    path = store.layout.registry
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CorruptRecord(
            f"{path} is missing; run `continuity verify --repair` to rebuild it from the journals",
            str(path),
        ) from None
    except OSError as exc:
        raise store_error(exc, "read", path) from exc
    cache = store._registry_cache
    if cache is not None and cache.data == data:
        return cache
    try:
        doc = codec.load_sealed_document(data, str(path), store.sealer, "registry")
    except CorruptRecord as exc:
        raise CorruptRecord(
            f"{exc.message}; run `continuity verify --repair` to rebuild it from the journals",
            str(path),
        ) from None
    entries = parse_registry(doc, str(path))
    store._registry_cache = RegistryCopy(data, entries)
    return store._registry_cache


def entries_for_write(store: FileStore) -> Entries:
    """The registry's entries, for a write to build on (registry lock held).

    A damaged or missing registry is first moved to the quarantine and
    rebuilt from the journals: rewriting it from what is readable would
    drop every session it lost.
    """
    try:
        return read_registry(store).entries
    except CorruptRecord as exc:
        from .files_index import rebuild_registry

        return rebuild_registry(store, exc)


def session_record(store: FileStore, registry: RegistryCopy, session_id: str) -> SessionRecord:
    """The record of ``session_id`` in ``registry``, validated once; derived if its entry is bad."""
    record = registry.records.get(session_id)
    if record is None:
        try:
            record = validate(SessionRecord, registry.entries[session_id], store.layout.registry)
        except CorruptRecord as exc:
            from .files_index import derived_record

            return derived_record(store, session_id, exc)  # one bad entry, the rest stands
        registry.records[session_id] = record
    return record


def write_registry(store: FileStore, entries: Entries, previous: Entries | None) -> None:
    """Replace the registry (registry lock held) and the active list if it moved.

    ``previous`` is the registry as read; None rewrites the active list unconditionally.
    """
    data = codec.dump_document(registry_document(entries), store.sealer, "registry")
    replace_atomically(store.layout.registry, data)
    active = active_document(entries)
    if previous is None or active != active_document(previous) or not store.layout.active.exists():
        try:
            read_document(store.layout.active)
        except CorruptRecord as exc:
            from .files_index import set_aside

            set_aside(store, store.layout.active, exc)
        replace_atomically(store.layout.active, codec.dump_document(active))
    store._registry_cache = None
