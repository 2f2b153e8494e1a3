"""``files:PATH``: the default store, plain folders of JSON a person can read with ``cat``.

The layout is described in :mod:`.files_layout`. The rules that make it
crash-safe:

* **Journal appends** go out as one ``os.write`` of complete lines through a
  cached descriptor opened with ``O_APPEND``. With ``durability="sync"`` an
  append returns after ``fdatasync``. With ``"batched"`` it returns after the
  ``write`` (so ``kill -9`` loses nothing: the bytes are in the kernel) and a
  background thread calls ``fdatasync`` at most :data:`FLUSH_INTERVAL` later;
  a power failure can lose the appends of the last ~50 ms plus the flush in
  progress. Recovery points, leases and documents are always synced, and a
  point first flushes the journal it covers.
* **Documents** (registry, snapshots, leases, backups, points) are replaced
  atomically: temporary file, fsync, rename, fsync of the folder.
* **Fencing**: a writer holds ``sessions/leases/ID.lock`` (``flock``) while it
  checks the lease token and writes. Every takeover appends a ``lease``
  event, so a writer whose journal is still the size it left it knows the
  token has not moved and re-reads nothing; otherwise it re-reads the lease
  and the tail.
* **Ids** are allocated under ``sessions/session-registry.lock``: the day's
  highest number among the journals, plus one, created with ``O_EXCL``.
* **A damaged index** (registry, lease document) is worked around, never a
  reason to refuse: reads derive it from the journals, writes quarantine the
  damaged bytes and rebuild it first (:mod:`.files_index`).
* Lock order is registry lock, then a session lock; never the reverse.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agent_continuity import ids
from agent_continuity.errors import (
    ConfigError,
    CorruptRecord,
    DuplicateRecord,
    InvalidIdentifier,
    InvalidInput,
    RecoveryPointNotFound,
    SessionNotFound,
    StoreError,
)
from agent_continuity.model import (
    ContextSnapshot,
    Damage,
    EmergencyBackup,
    Event,
    EventDraft,
    EventKind,
    Lease,
    RecoveryPoint,
    RecoveryPointInfo,
    SessionRecord,
    SessionStatus,
)

from . import codec, leases, retention
from .atomic import (
    FileLock,
    append_durably,
    ensure_folder,
    fsync_folder,
    is_temp_name,
    replace_atomically,
    store_error,
)
from .base import DURABILITY_MODES, JournalRead, LeaseRequest, VerifyReport
from .files_layout import (
    RECOVERY_PROTOCOLS,
    Entries,
    Layout,
    active_document,
    parse_point_file_name,
    parse_point_name,
    parse_registry,
    point_file_name,
    registry_document,
)
from .index import IndexDamage
from .journal_file import JournalHandle, read_journal, split_lines

FLUSH_INTERVAL = 0.05  # seconds between fdatasync calls in batched mode
_MAX_POINT_NAMES = 100_000  # parsed point names remembered per store

_Model = TypeVar("_Model", bound=BaseModel)
_ARCHIVED = (SessionStatus.COMPLETED, SessionStatus.ARCHIVED)


@dataclass(slots=True)
class _Session:
    """What this process keeps open for a session it writes to."""

    session_id: str
    lock: FileLock
    journal: JournalHandle
    lease: Lease | None = None
    lease_known: bool = False


@dataclass(slots=True)
class _Registry:
    """The registry as last read: its bytes, wire entries, and records validated on first use."""

    data: bytes
    entries: Entries
    records: dict[str, SessionRecord] = field(default_factory=dict)


class FileStore:
    """The files store. See :class:`~.base.Store` for the contract of each method.

    Args:
        root: The store's folder (``projectDocs/tracking`` by default); created if missing.
        durability: ``"sync"`` or ``"batched"`` (see the module documentation).
        url: The URL it was opened from; ``files:ROOT`` when not given.

    Raises:
        ConfigError: If ``durability`` is not a known mode.
        StoreError: If the folders cannot be created.

    Each session this process writes to keeps two descriptors open (its lock
    file and its journal) until :meth:`close`.
    """

    shared_across_processes = True

    def __init__(
        self, root: Path | str, *, durability: str = "sync", url: str | None = None
    ) -> None:
        if durability not in DURABILITY_MODES:
            raise ConfigError(
                f"durability must be one of {', '.join(DURABILITY_MODES)}, not {durability!r}"
            )
        self.root = Path(root)
        self.url = url if url is not None else f"files:{self.root}"
        self.durability = durability
        self.layout = Layout(self.root)
        self._sync = durability == "sync"
        self._mutex = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self._registry_lock = FileLock(self.layout.registry_lock)
        self._registry_cache: _Registry | None = None
        self._dirty: set[str] = set()
        # Point file name -> its parsed listing. A name says everything about the
        # point's listing, so entries never go stale; recovery lists a long
        # session's thousands of points several times.
        self._point_names: dict[tuple[str, str], RecoveryPointInfo] = {}
        self._flush_error: StoreError | None = None
        self._index_damage = IndexDamage()
        self._flusher: threading.Thread | None = None
        self._stop_flusher = threading.Event()
        for folder in self.layout.folders():
            ensure_folder(folder)
        if not self.layout.protocols.exists():
            replace_atomically(self.layout.protocols, codec.dump_document(RECOVERY_PROTOCOLS))
        with self._registry_lock.exclusive():
            # A missing registry is written empty only for a new store; with journals
            # present it must be rebuilt (verify --repair), never silently emptied.
            if not self.layout.registry.exists() and not self.layout.journal_ids():
                self._write_registry({}, None)
            else:
                self._finish_interrupted_writes()

    def _finish_interrupted_writes(self) -> None:
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
            entries = self._registry().entries
            listed = self._read_document(self.layout.active)
        except CorruptRecord:
            return
        created: Entries = {}
        for session_id in self.layout.journal_ids():
            if session_id in entries:
                continue
            read, damaged = read_journal(self.layout.journal(session_id))
            if damaged or len(read.events) != 1 or read.events[0].kind is not EventKind.SESSION:
                continue
            record = read.events[0].payload.get("record")
            if isinstance(record, dict) and record.get("id") == session_id:
                created[session_id] = record
        if created:
            self._write_registry({**entries, **created}, None)
        elif listed != active_document(entries):
            replace_atomically(self.layout.active, codec.dump_document(active_document(entries)))

    def close(self) -> None:
        """Flush batched appends and close every descriptor. Safe to call twice.

        The store stays usable: descriptors are reopened when next needed.
        """
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            self._stop_flusher.set()
            flusher.join()
            self._stop_flusher.clear()
        self._flush_dirty()
        with self._mutex:
            sessions, self._sessions = self._sessions, {}
        for entry in sessions.values():
            with entry.lock.exclusive():
                entry.journal.close()
            entry.lock.close()
        self._registry_lock.close()

    # -- sessions -------------------------------------------------------

    def create_session(
        self, draft: SessionRecord, lease: LeaseRequest
    ) -> tuple[SessionRecord, Lease]:
        day = draft.created.date()
        with self._registry_lock.exclusive():
            entries = self._entries_for_write()
            number = self._highest_number(day, entries)
            while True:
                number += 1
                session_id = ids.make_session_id(day, number)
                path = self.layout.journal(session_id)
                if not path.exists():
                    break
                # A journal without a registry entry still owns its number.
            record = draft.model_copy(update={"id": session_id, "last_seq": 1})
            granted = leases.grant(session_id, None, lease, steal=False, expect_token=None)
            first = Event(
                seq=1,
                kind=EventKind.SESSION,
                at=draft.created,
                payload=leases.creation_payload(record, granted),
            )
            line = codec.encode_event(first)
            # Lease first, then the journal, whole, under its final name, then the
            # registry: a kill between two steps leaves a journal that is either
            # absent or complete and leased, which the next open indexes.
            temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            fd = -1
            try:
                self._write_lease(granted)
                try:
                    fd = os.open(temp, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o644)
                    size = append_durably(fd, temp, 0, line, sync=True)
                    os.rename(temp, path)
                    fsync_folder(path.parent)
                except OSError as exc:
                    raise store_error(exc, "create", path) from exc
                self._write_registry({**entries, session_id: record.to_wire()}, entries)
            except BaseException:
                if fd >= 0:
                    os.close(fd)
                with contextlib.suppress(OSError):
                    temp.unlink(missing_ok=True)
                self._undo_create(session_id)
                raise
        entry = self._session(session_id)
        with entry.lock.exclusive():
            entry.journal.close()
            entry.journal.fd, entry.journal.inode = fd, os.fstat(fd).st_ino
            entry.journal.size, entry.journal.last_seq = size, 1
            entry.lease, entry.lease_known = granted, True
        return record, granted

    def _undo_create(self, session_id: str) -> None:
        # Best effort: the caller gets the original error either way, and a
        # journal left behind is still found and indexed by `verify --repair`.
        for path in (self.layout.lease(session_id), self.layout.journal(session_id)):
            try:
                path.unlink(missing_ok=True)
                fsync_folder(path.parent)
            except OSError:
                pass

    def _highest_number(self, day: date, entries: Entries) -> int:
        prefix = f"SESSION-{ids.day_code(day)}-"
        try:
            names = os.listdir(self.layout.journals)
        except OSError as exc:
            raise store_error(exc, "list", self.layout.journals) from exc
        taken = [n.removesuffix(".jsonl") for n in names if n.startswith(prefix)]
        taken += [s for s in entries if s.startswith(prefix)]
        numbers = [0]
        for session_id in taken:
            try:
                numbers.append(ids.parse_session_id(session_id).number)
            except InvalidIdentifier:
                continue
        return max(numbers)

    def get_session(self, session_id: str) -> SessionRecord:
        ids.validate_session_id(session_id)
        try:
            registry = self._registry()
        except CorruptRecord as exc:
            from .files_index import derived_record

            return derived_record(self, session_id, exc)
        if session_id not in registry.entries:
            raise SessionNotFound(
                f"no session {session_id} in {self.url}; `continuity list` shows the sessions"
            )
        return self._record(registry, session_id)

    def list_sessions(self) -> list[SessionRecord]:
        try:
            registry = self._registry()
        except CorruptRecord as exc:
            from .files_index import derived_records

            records = derived_records(self, exc)
        else:
            records = [self._record(registry, session_id) for session_id in registry.entries]
        return sorted(records, key=lambda r: (r.created, r.id))

    def put_session(self, record: SessionRecord) -> None:
        ids.validate_session_id(record.id)
        entry = record.to_wire()
        with self._registry_lock.exclusive():
            entries = self._entries_for_write()
            if record.id not in entries and not self.layout.journal(record.id).exists():
                raise SessionNotFound(
                    f"no session {record.id} in {self.url}; create it before updating it"
                )
            if entries.get(record.id) == entry:
                return  # nothing changed: spare the rewrite and its fsyncs
            if record.status in _ARCHIVED:
                replace_atomically(self.layout.archived(record.id), codec.dump_document(entry))
            self._write_registry({**entries, record.id: entry}, entries)

    def _registry(self) -> _Registry:
        """The registry as on disk now; parsed again only when its bytes changed.

        The bytes are compared rather than size and mtime: two rewrites within
        one timestamp tick can reuse the inode and keep the size, and a stale
        copy under the lock would lose another process's update.
        """
        path = self.layout.registry
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CorruptRecord(
                f"{path} is missing; run `continuity verify --repair` to rebuild it from the "
                "journals",
                str(path),
            ) from None
        except OSError as exc:
            raise store_error(exc, "read", path) from exc
        cache = self._registry_cache
        if cache is not None and cache.data == data:
            return cache
        try:
            doc = codec.load_document(data, str(path))
        except CorruptRecord as exc:
            raise CorruptRecord(
                f"{exc.message}; run `continuity verify --repair` to rebuild it from the journals",
                str(path),
            ) from None
        entries = parse_registry(doc, str(path))
        self._registry_cache = _Registry(data, entries)
        return self._registry_cache

    def _entries_for_write(self) -> Entries:
        """The registry's entries, for a write to build on (registry lock held).

        A damaged or missing registry is first moved to the quarantine and
        rebuilt from the journals: rewriting it from what is readable would
        drop every session it lost.
        """
        try:
            return self._registry().entries
        except CorruptRecord as exc:
            from .files_index import rebuild_registry

            return rebuild_registry(self, exc)

    def _record(self, registry: _Registry, session_id: str) -> SessionRecord:
        record = registry.records.get(session_id)
        if record is None:
            try:
                record = self._validate(
                    SessionRecord, registry.entries[session_id], self.layout.registry
                )
            except CorruptRecord as exc:
                from .files_index import derived_record

                return derived_record(self, session_id, exc)  # one bad entry, the rest stands
            registry.records[session_id] = record
        return record

    def _write_registry(self, entries: Entries, previous: Entries | None) -> None:
        """Replace the registry (registry lock held) and the active list if it moved.

        ``previous`` is the registry as read; None rewrites the active list unconditionally.
        """
        replace_atomically(self.layout.registry, codec.dump_document(registry_document(entries)))
        active = active_document(entries)
        if (
            previous is None
            or active != active_document(previous)
            or not self.layout.active.exists()
        ):
            try:
                self._read_document(self.layout.active)
            except CorruptRecord as exc:
                from .files_index import set_aside

                set_aside(self, self.layout.active, exc)
            replace_atomically(self.layout.active, codec.dump_document(active))
        self._registry_cache = None

    # -- leases ---------------------------------------------------------

    def read_lease(self, session_id: str) -> Lease | None:
        return self._current_lease(ids.validate_session_id(session_id))[0]

    def acquire_lease(
        self,
        session_id: str,
        request: LeaseRequest,
        *,
        steal: bool = False,
        expect_token: int | None = None,
    ) -> Lease:
        entry = self._session(session_id)
        with entry.lock.exclusive():
            self._sync_entry(entry)
            # Read afresh: a heartbeat elsewhere moves `expires` without touching the journal.
            current, derived = self._current_lease(session_id)
            granted = leases.grant(
                session_id,
                current,
                request,
                steal=steal,
                expect_token=expect_token,
                fence_above=entry.journal.last_seq if derived else 0,
            )
            size, last_seq = entry.journal.size, entry.journal.last_seq
            self._append_locked(
                entry,
                [
                    EventDraft(
                        kind=EventKind.LEASE,
                        at=request.now,
                        payload={"token": granted.token, "holder": granted.holder},
                    )
                ],
                sync=True,
            )
            try:
                self._write_lease(granted, derived)
            except StoreError:
                entry.journal.cut_back(size)
                entry.journal.last_seq = last_seq
                raise
            entry.lease, entry.lease_known = granted, True
            return granted

    def renew_lease(self, lease: Lease, request: LeaseRequest) -> Lease:
        entry = self._session(lease.session_id)
        with entry.lock.exclusive():
            current, derived = self._current_lease(lease.session_id)
            renewed = leases.renewed(current, lease, request)
            self._write_lease(renewed, derived)  # a live holder's heartbeat mends its document
            entry.lease_known = False
            return renewed

    def release_lease(self, lease: Lease) -> None:
        entry = self._session(lease.session_id)
        with entry.lock.exclusive():
            current, derived = self._current_lease(lease.session_id)
            if current is not None and current.token == lease.token:
                # Keep the token so the next holder still gets a higher one.
                kept = lease if derived else current
                self._write_lease(kept.model_copy(update={"expires": kept.heartbeat}), derived)
                entry.lease_known = False

    def _current_lease(self, session_id: str) -> tuple[Lease | None, bool]:
        """The session's lease, and whether it had to be derived from the journal.

        A damaged or missing lease document does not stop the session: the
        journal says who holds it (:func:`.leases.from_journal`).
        """
        try:
            lease = self._read_lease_file(session_id)
            if lease is not None:
                return lease, False
            problem = None
        except CorruptRecord as exc:
            problem = exc
        from .files_index import derived_lease

        derived = derived_lease(self, session_id, problem)
        return derived, derived is not None

    def _read_lease_file(self, session_id: str) -> Lease | None:
        return self._read_model(self.layout.lease(session_id), Lease)

    def _write_lease(self, lease: Lease, replaces_damage: bool = False) -> None:
        if replaces_damage:
            from .files_index import set_aside_lease

            set_aside_lease(self, lease.session_id, lease)
        replace_atomically(
            self.layout.lease(lease.session_id), codec.dump_document(lease.to_wire())
        )

    # -- journal --------------------------------------------------------

    def append(self, lease: Lease, drafts: Sequence[EventDraft]) -> list[Event]:
        # The hot path: one stat, two flocks, one write (and fdatasync when synced).
        entry = self._sessions.get(lease.session_id) or self._session(lease.session_id)
        entry.lock.acquire()
        try:
            self._sync_entry(entry)
            leases.check_current(entry.lease, lease)
            return self._append_locked(entry, drafts, sync=self._sync)
        finally:
            entry.lock.release()

    def _session(self, session_id: str) -> _Session:
        entry = self._sessions.get(session_id)
        if entry is None:
            lock_path = self.layout.session_lock(session_id)  # validates the id
            with self._mutex:
                entry = self._sessions.get(session_id)
                if entry is None:
                    journal = JournalHandle(self.layout.journal(session_id))
                    entry = _Session(session_id, FileLock(lock_path), journal)
                    self._sessions[session_id] = entry
        return entry

    def _sync_entry(self, entry: _Session) -> None:
        """Bring the cached journal state and lease up to date (session lock held)."""
        changed = entry.journal.refresh()
        if changed:
            # A journal cut short (an older copy put back) must not hand out again
            # the numbers a recovery point covers: replay from it would skip them.
            covered = max((p.seq for p in self.list_points(entry.session_id)), default=0)
            entry.journal.last_seq = max(entry.journal.last_seq, covered)
        if changed or not entry.lease_known:
            entry.lease = self._current_lease(entry.session_id)[0]
            entry.lease_known = True

    def _append_locked(
        self, entry: _Session, drafts: Sequence[EventDraft], *, sync: bool
    ) -> list[Event]:
        if self._flush_error is not None:
            raise StoreError(
                f"an earlier batched append could not be made durable ({self._flush_error}); "
                "run `continuity verify`, then reopen the store"
            )
        seq = entry.journal.last_seq
        events = [
            Event(seq=seq + n, kind=d.kind, at=d.at, payload=d.payload)
            for n, d in enumerate(drafts, start=1)
        ]
        if not events:
            return events
        # Encode everything before writing anything: a value that cannot be stored
        # leaves the journal as it was.
        data = b"".join([codec.encode_event(e) for e in events])
        entry.journal.append(data, sync=sync)
        entry.journal.last_seq = events[-1].seq
        if not sync:
            self._mark_dirty(entry.session_id)
        return events

    def read_events(self, session_id: str, after_seq: int = 0) -> JournalRead:
        path = self.layout.journal(session_id)
        read, _ = read_journal(path, after_seq)
        if any(d.kind == "torn-tail" for d in read.damage):
            # Perhaps a write in progress rather than a torn one: look again with writers held off.
            with self._session(session_id).lock.shared():
                read, _ = read_journal(path, after_seq)
        return read

    # -- batched mode ---------------------------------------------------

    def _mark_dirty(self, session_id: str) -> None:
        if session_id in self._dirty:
            return  # already queued; the flusher swaps the set under the mutex
        with self._mutex:
            self._dirty.add(session_id)
            if self._flusher is None:
                self._flusher = threading.Thread(
                    target=self._flush_loop, name=f"continuity-flush {self.root}", daemon=True
                )
                self._flusher.start()

    def _flush_loop(self) -> None:
        while not self._stop_flusher.wait(FLUSH_INTERVAL):
            self._flush_dirty()

    def _flush_dirty(self) -> None:
        with self._mutex:
            dirty, self._dirty = self._dirty, set()
            entries = [self._sessions[s] for s in dirty if s in self._sessions]
        for entry in entries:
            with entry.lock.exclusive():
                try:
                    entry.journal.flush()
                except StoreError as exc:
                    self._flush_error = exc

    # -- recovery points ------------------------------------------------

    def save_point(self, point: RecoveryPoint) -> RecoveryPointInfo:
        ids.validate_recovery_id(point.id)
        if ids.session_of_recovery_id(point.id) != point.session_id:
            raise InvalidInput(
                f"recovery point {point.id} names another session than {point.session_id}; "
                "build its id with make_recovery_id(session_id, ...)"
            )
        data = codec.dump_compressed(point.to_wire())
        folder = self.layout.point_folder(point.session_id)
        info = RecoveryPointInfo(
            id=point.id,
            session_id=point.session_id,
            seq=point.seq,
            created=point.created,
            trigger=point.trigger,
        )
        path = folder / point_file_name(info)
        entry = self._session(point.session_id)
        with entry.lock.exclusive():
            if not entry.journal.path.exists():
                raise SessionNotFound(f"no session {point.session_id} in {self.url}")
            # The point must never cover events that a power failure could still take back.
            entry.journal.flush()
            ensure_folder(folder)
            existing = self._find_point(point.session_id, point.id)
            if existing is not None:
                raise DuplicateRecord(
                    f"recovery point {point.id} exists already ({existing[1]}); points are "
                    "never overwritten, save under a new id"
                )
            replace_atomically(path, data)
        parsed = parse_point_file_name(point.session_id, path)
        assert parsed is not None  # we just built this name
        return parsed

    def load_point(self, point_id: str) -> RecoveryPoint:
        session_id = ids.session_of_recovery_id(point_id)
        found = self._find_point(session_id, point_id)
        if found is None:
            raise RecoveryPointNotFound(f"no recovery point {point_id} in {self.url}")
        return self._read_point(*found)

    def _read_point(self, info: RecoveryPointInfo, path: Path) -> RecoveryPoint:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise RecoveryPointNotFound(f"recovery point {info.id} was just pruned") from None
        except OSError as exc:
            raise store_error(exc, "read", path) from exc
        point = self._validate(RecoveryPoint, codec.load_compressed(data, str(path)), path)
        if (point.id, point.session_id, point.seq) != (info.id, info.session_id, info.seq):
            raise CorruptRecord(f"{path}: the point inside does not match its file name", str(path))
        return point

    def list_points(self, session_id: str) -> list[RecoveryPointInfo]:
        infos = self._scan_points(session_id)
        return sorted(infos, key=lambda i: (i.seq, i.created, i.id))

    def prune_points(self, session_id: str, keep_automatic: int) -> list[str]:
        entry = self._session(session_id)
        with entry.lock.exclusive():
            doomed = retention.prunable(
                self.list_points(session_id), keep_automatic, self._is_valid
            )
            folder = self.layout.point_folder(session_id)
            # No fsync of the folder: an unlink that a power failure undoes brings
            # back an old, valid point, which the next pruning removes again. Only
            # what is kept must be durable, and it already is.
            try:
                for info in doomed:
                    Path(info.location).unlink(missing_ok=True)
            except OSError as exc:
                raise store_error(exc, "delete old recovery points in", folder) from exc
        return [info.id for info in doomed]

    def _is_valid(self, info: RecoveryPointInfo) -> bool:
        try:
            self.load_point(info.id)
        except (CorruptRecord, RecoveryPointNotFound):
            return False
        return True

    def _scan_points(self, session_id: str) -> list[RecoveryPointInfo]:
        folder = self.layout.point_folder(session_id)
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise store_error(exc, "list", folder) from exc
        if len(self._point_names) > _MAX_POINT_NAMES:
            self._point_names.clear()
        found = []
        folder_text = str(folder)
        for name in names:
            known = self._point_names.get((session_id, name))
            if known is None:
                known = parse_point_name(session_id, folder_text, name)
                if known is None:
                    continue
                self._point_names[(session_id, name)] = known
            found.append(known)
        return found

    def _find_point(self, session_id: str, point_id: str) -> tuple[RecoveryPointInfo, Path] | None:
        # Only the names starting with the id are parsed: a long session has
        # thousands of points, and every save and load looks one up.
        folder = self.layout.point_folder(session_id)
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise store_error(exc, "list", folder) from exc
        prefix = point_id + "."
        for name in names:
            if name.startswith(prefix):
                info = parse_point_file_name(session_id, folder / name)
                if info is not None and info.id == point_id:
                    return info, folder / name
        return None

    # -- snapshots, emergency backups, log -----------------------------

    def save_context_snapshot(self, snapshot: ContextSnapshot) -> None:
        path = self.layout.snapshot(snapshot.session_id)
        data = codec.dump_document(snapshot.to_wire())
        if not self.layout.journal(snapshot.session_id).exists():
            raise SessionNotFound(f"no session {snapshot.session_id} in {self.url}")
        replace_atomically(path, data)

    def load_context_snapshot(self, session_id: str) -> ContextSnapshot | None:
        return self._read_model(self.layout.snapshot(session_id), ContextSnapshot)

    def save_emergency(self, backup: EmergencyBackup) -> None:
        path = self.layout.emergency_backup(backup.session_id)
        replace_atomically(path, codec.dump_document(backup.to_wire()))

    def load_emergency(self, session_id: str) -> EmergencyBackup | None:
        return self._read_model(self.layout.emergency_backup(session_id), EmergencyBackup)

    def list_emergency(self) -> tuple[list[EmergencyBackup], list[Damage]]:
        backups: list[EmergencyBackup] = []
        damage: list[Damage] = []
        try:
            paths = sorted(self.layout.emergency.iterdir())
        except OSError as exc:
            raise store_error(exc, "list", self.layout.emergency) from exc
        for path in paths:
            if is_temp_name(path.name):
                continue
            try:
                backup = self._read_model(path, EmergencyBackup)
            except CorruptRecord as exc:
                damage.append(Damage(location=str(path), kind="checksum", detail=exc.message))
                continue
            if backup is not None:
                backups.append(backup)
        return backups, damage

    def log_recovery(self, entry: dict[str, Any]) -> None:
        # One line per entry, checksummed the way the codec seals documents.
        sealed = json.loads(codec.dump_document(entry))
        line = json.dumps(sealed, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        path = self.layout.log
        with self._registry_lock.exclusive():
            try:
                created = not path.exists()
                fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError as exc:
                raise store_error(exc, "open", path) from exc
            try:
                append_durably(fd, path, os.fstat(fd).st_size, line, sync=True)
                if created:
                    fsync_folder(path.parent)
            except (OSError, StoreError) as exc:
                if created:  # a failed write leaves the store as it was: no empty log
                    path.unlink(missing_ok=True)
                if isinstance(exc, StoreError):
                    raise
                raise store_error(exc, "append to", path) from exc
            finally:
                os.close(fd)

    def read_recovery_log(self) -> list[dict[str, Any]]:
        entries, _ = self._read_log()
        return entries

    def _read_log(self) -> tuple[list[dict[str, Any]], list[Damage]]:
        path = self.layout.log
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return [], []
        except OSError as exc:
            raise store_error(exc, "read", path) from exc
        entries: list[dict[str, Any]] = []
        damage: list[Damage] = []
        for line in split_lines(data):
            try:
                entries.append(codec.load_document(line.data, str(path)))
            except CorruptRecord as exc:
                damage.append(
                    Damage(
                        location=str(path), kind="checksum", detail=exc.message, offset=line.offset
                    )
                )
        return entries, damage

    # -- shared helpers -------------------------------------------------

    def _read_model(self, path: Path, model: type[_Model]) -> _Model | None:
        """A checksummed document as ``model``; None when absent, CorruptRecord when damaged."""
        doc = self._read_document(path)
        return None if doc is None else self._validate(model, doc, path)

    @staticmethod
    def _read_document(path: Path) -> dict[str, Any] | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise store_error(exc, "read", path) from exc
        try:
            return codec.load_document(data, str(path))
        except CorruptRecord as exc:
            raise CorruptRecord(
                f"{exc.message}; run `continuity verify --repair` to move it aside", str(path)
            ) from None

    @staticmethod
    def _validate(model: type[_Model], doc: dict[str, Any], path: Path) -> _Model:
        try:
            return model.model_validate(doc)
        except ValidationError as exc:
            raise CorruptRecord(
                f"{path}: passes its checksum but is not a {model.__name__} "
                f"({exc.error_count()} problems); run `continuity verify --repair`",
                str(path),
            ) from None

    # -- maintenance ----------------------------------------------------

    def verify(self, repair: bool = False) -> VerifyReport:
        from .files_repair import verify_store

        return verify_store(self, repair=repair)

    def index_damage(self) -> list[Damage]:
        return self._index_damage.found()
