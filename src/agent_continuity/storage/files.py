"""``files:PATH``: the default store, plain folders of JSON a person can read with ``cat``.

The layout is described in :mod:`.files_layout`. The rules that make it
crash-safe:

* **Journal appends** go out as one ``os.write`` of complete lines through a
  cached descriptor opened with ``O_APPEND``. With ``durability="sync"`` an
  append returns after ``fdatasync``. With ``"batched"`` it returns after the
  ``write`` (so ``kill -9`` loses nothing: the bytes are in the kernel) and a
  background thread (:mod:`.files_flusher`) calls ``fdatasync`` at most
  50 ms later; a power failure can lose the appends of the last ~50 ms plus
  the flush in progress. Recovery points (:mod:`.files_points`), leases and
  documents are always synced, and a point first flushes the journal it
  covers.
* **Documents** (registry, snapshots, leases, backups, points) are replaced
  atomically: temporary file, fsync, rename, fsync of the folder. The
  registry and active list live in :mod:`.files_registry`, the other
  documents and the recovery log in :mod:`.files_documents`.
* **Fencing**: a writer holds ``sessions/leases/ID.lock`` (``flock``) while it
  checks the lease token and writes. Every takeover appends a ``lease``
  event, so a writer whose journal is still the size it left it knows the
  token has not moved and re-reads nothing; otherwise it re-reads the lease
  and the tail. A batched writer keeps the ``flock`` from one append to the
  next until the flusher's sync (at most ~50 ms), and while it holds it
  without a gap it checks nothing at all: no other writer can have been in.
  Another process that wants the session waits for that sync.
* **Ids** are allocated under ``sessions/session-registry.lock``: the day's
  highest number among the journals, plus one, created with ``O_EXCL``.
* **A damaged index** (registry, lease document) is worked around, never a
  reason to refuse: reads derive it from the journals, writes quarantine the
  damaged bytes and rebuild it first (:mod:`.files_index`).
* Lock order is registry lock, then a session lock; never the reverse.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_continuity import ids
from agent_continuity.errors import (
    ConfigError,
    CorruptRecord,
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

from . import codec, leases
from .atomic import (
    FILE_MODE,
    FOLDER_MODE,
    FileLock,
    append_durably,
    ensure_folder,
    fsync_folder,
    is_temp_name,
    make_private,
    replace_atomically,
    store_error,
)
from .base import DURABILITY_MODES, JournalRead, LeaseRequest, VerifyReport
from .encryption import attach
from .envelope import Sealer
from .files_documents import append_log_line, read_log, read_model
from .files_flusher import JournalFlusher
from .files_layout import (
    RECOVERY_PROTOCOLS,
    Layout,
    session_sort_key,
)
from .files_points import PointFiles
from .files_registry import (
    RegistryCopy,
    entries_for_write,
    finish_interrupted_writes,
    highest_number,
    read_registry,
    session_record,
    write_registry,
)
from .index import IndexDamage, missing_journal_error, missing_journal_read
from .journal_file import JournalHandle, read_journal

_ARCHIVED = (SessionStatus.COMPLETED, SessionStatus.ARCHIVED)


@dataclass(slots=True)
class _Session:
    """What this process keeps open for a session it writes to."""

    session_id: str
    lock: FileLock
    journal: JournalHandle
    lease: Lease | None = None
    lease_known: bool = False


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
        self._registry_cache: RegistryCopy | None = None
        self._points = PointFiles(self.layout, self.url, self._session)
        attach(self)  # an encrypted store's sealer, before anything below reads a record
        self._index_damage = IndexDamage()
        self._flusher = JournalFlusher(f"continuity-flush {self.root}", self._flush_journal)
        for folder in self.layout.folders():
            ensure_folder(folder)
        # A store made before it was private by default: with its root 0700
        # nothing inside can be reached by others (verify --repair narrows the rest).
        make_private(self.root, FOLDER_MODE)
        if not self.layout.protocols.exists():
            replace_atomically(self.layout.protocols, codec.dump_document(RECOVERY_PROTOCOLS))
        with self._registry_lock.exclusive():
            # A missing registry is written empty only for a new store; with journals
            # present it must be rebuilt (verify --repair), never silently emptied.
            if not self.layout.registry.exists() and not self.layout.journal_ids():
                write_registry(self, {}, None)
            else:
                finish_interrupted_writes(self)

    @property
    def sealer(self) -> Sealer | None:
        """The sealer of an encrypted store (see :func:`.encryption.attach`), else None."""
        return self._points.sealer

    @sealer.setter
    def sealer(self, value: Sealer | None) -> None:
        self._points.sealer = value

    def close(self) -> None:
        """Flush batched appends and close every descriptor. Safe to call twice.

        The store stays usable: descriptors are reopened when next needed.
        """
        self._flusher.stop()
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
            entries = entries_for_write(self)
            number = highest_number(self.layout, day, entries)
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
            line = codec.encode_event(first, self.sealer, session_id)
            # Lease first, then the journal, whole, under its final name, then the
            # registry: a kill between two steps leaves a journal that is either
            # absent or complete and leased, which the next open indexes.
            temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            fd = -1
            try:
                self._write_lease(granted)
                try:
                    fd = os.open(temp, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC, FILE_MODE)
                    size = append_durably(fd, temp, 0, line, sync=True)
                    os.rename(temp, path)
                    fsync_folder(path.parent)
                except OSError as exc:
                    raise store_error(exc, "create", path) from exc
                write_registry(self, {**entries, session_id: record.to_wire()}, entries)
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

    def get_session(self, session_id: str) -> SessionRecord:
        ids.validate_session_id(session_id)
        try:
            registry = read_registry(self)
        except CorruptRecord as exc:
            from .files_index import derived_record

            return derived_record(self, session_id, exc)
        if session_id not in registry.entries:
            raise SessionNotFound(
                f"no session {session_id} in {self.url}; `continuity list` shows the sessions"
            )
        return session_record(self, registry, session_id)

    def list_sessions(self) -> list[SessionRecord]:
        try:
            registry = read_registry(self)
        except CorruptRecord as exc:
            from .files_index import derived_records

            records = derived_records(self, exc)
        else:
            records = [
                session_record(self, registry, session_id) for session_id in registry.entries
            ]
        return sorted(records, key=lambda r: (r.created, r.id))

    def put_session(self, record: SessionRecord) -> None:
        ids.validate_session_id(record.id)
        entry = record.to_wire()
        with self._registry_lock.exclusive():
            entries = entries_for_write(self)
            if record.id not in entries and not self.layout.journal(record.id).exists():
                raise SessionNotFound(
                    f"no session {record.id} in {self.url}; create it before updating it"
                )
            if entries.get(record.id) == entry:
                return  # nothing changed: spare the rewrite and its fsyncs
            if record.status in _ARCHIVED:
                archived = codec.dump_document(entry, self.sealer, "archive", record.id)
                replace_atomically(self.layout.archived(record.id), archived)
            write_registry(self, {**entries, record.id: entry}, entries)

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
        return read_model(self.layout.lease(session_id), Lease)

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
        # Batched appends keep the flock until the flusher's next sync (at most
        # FLUSH_INTERVAL): while this process holds it without a gap nobody else
        # can have written, so the next append needs neither the flocks nor the stat.
        entry = self._sessions.get(lease.session_id) or self._session(lease.session_id)
        lock = entry.lock
        lock.acquire()
        keep = False
        try:
            if not (lock.resumed and entry.lease_known):
                self._sync_entry(entry)
            leases.check_current(entry.lease, lease)
            events = self._append_locked(entry, drafts, sync=self._sync)
            keep = not self._sync and bool(events)  # marked dirty: the flusher will unlock
            return events
        finally:
            lock.release(keep=keep)

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
        """Bring the cached journal state and lease up to date (session lock held).

        Raises:
            JournalMissing: If the store knows the session but its journal is gone:
                nothing is written to it until ``verify --repair`` rebuilds it.
        """
        try:
            changed = entry.journal.refresh()
        except SessionNotFound:
            if self._journal_lost(entry.session_id):
                raise missing_journal_error(entry.session_id, str(entry.journal.path)) from None
            raise
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
        if self._flusher.error is not None:
            raise StoreError(
                f"an earlier batched append could not be made durable ({self._flusher.error}); "
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
        data = b"".join([codec.encode_event(e, self.sealer, entry.session_id) for e in events])
        entry.journal.append(data, sync=sync)
        entry.journal.last_seq = events[-1].seq
        if not sync:
            self._flusher.mark(entry.session_id)
        return events

    def read_events(self, session_id: str, after_seq: int = 0) -> JournalRead:
        path = self.layout.journal(session_id)
        # A point read from `after_seq` lends its mark: the lines it covers need no check.
        mark = self._points.mark(session_id, after_seq)
        entry = self._sessions.get(session_id)
        # A writer here learns what it needs to mark its own points from this read.
        seal = entry is not None and entry.journal.verified is None and entry.journal.fd >= 0
        try:
            read, _, found = read_journal(path, after_seq, mark, seal=seal, sealer=self.sealer)
        except SessionNotFound:
            if self._journal_lost(session_id):
                return missing_journal_read(session_id, str(path))
            raise
        if any(d.kind == "torn-tail" for d in read.damage):
            # Perhaps a write in progress rather than a torn one: look again with writers held off.
            with self._session(session_id).lock.shared():
                read, _, found = read_journal(path, after_seq, mark, seal=seal, sealer=self.sealer)
        if found is not None and entry is not None:
            with entry.lock.shared():
                entry.journal.seed(found)
        return read

    def _journal_lost(self, session_id: str) -> bool:
        """Whether ``session_id`` has no journal though a registry entry or a point knows it."""
        if self.layout.journal(session_id).exists():
            return False
        try:
            if session_id in read_registry(self).entries:
                return True
        except CorruptRecord:
            pass  # the points may still know it
        return bool(self.list_points(session_id))

    def lost_journals(self) -> list[str]:
        present = set(self.layout.journal_ids())
        try:
            known = set(read_registry(self).entries)
        except CorruptRecord:
            known = set()
        known.update(
            s
            for s in self.layout.point_session_ids()
            if s not in present and s not in known and self.list_points(s)
        )
        return sorted(known - present, key=session_sort_key)

    def _flush_journal(self, session_id: str) -> None:
        entry = self._sessions.get(session_id)
        if entry is not None:
            with entry.lock.exclusive():
                entry.journal.flush()

    # -- recovery points ------------------------------------------------

    def save_point(self, point: RecoveryPoint) -> RecoveryPointInfo:
        return self._points.save(point)

    def load_point(self, point_id: str) -> RecoveryPoint:
        return self._points.load(point_id)

    def list_points(self, session_id: str) -> list[RecoveryPointInfo]:
        return self._points.listing(session_id)

    def prune_points(self, session_id: str, keep_automatic: int) -> list[str]:
        return self._points.prune(session_id, keep_automatic)

    # -- snapshots, emergency backups, log -----------------------------

    def save_context_snapshot(self, snapshot: ContextSnapshot) -> None:
        path = self.layout.snapshot(snapshot.session_id)
        data = codec.dump_document(snapshot.to_wire(), self.sealer, "snapshot", snapshot.session_id)
        if not self.layout.journal(snapshot.session_id).exists():
            raise SessionNotFound(f"no session {snapshot.session_id} in {self.url}")
        replace_atomically(path, data)

    def load_context_snapshot(self, session_id: str) -> ContextSnapshot | None:
        return read_model(
            self.layout.snapshot(session_id), ContextSnapshot, self.sealer, "snapshot"
        )

    def save_emergency(self, backup: EmergencyBackup) -> None:
        path = self.layout.emergency_backup(backup.session_id)
        data = codec.dump_document(backup.to_wire(), self.sealer, "emergency", backup.session_id)
        replace_atomically(path, data)

    def load_emergency(self, session_id: str) -> EmergencyBackup | None:
        return read_model(
            self.layout.emergency_backup(session_id), EmergencyBackup, self.sealer, "emergency"
        )

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
                backup = read_model(path, EmergencyBackup, self.sealer, "emergency")
            except CorruptRecord as exc:
                damage.append(Damage(location=str(path), kind="checksum", detail=exc.message))
                continue
            if backup is not None:
                backups.append(backup)
        return backups, damage

    def log_recovery(self, entry: dict[str, Any]) -> None:
        with self._registry_lock.exclusive():
            append_log_line(self.layout.log, entry, self.sealer)

    def read_recovery_log(self) -> list[dict[str, Any]]:
        entries, _ = read_log(self.layout.log, self.sealer)
        return entries

    # -- maintenance ----------------------------------------------------

    def verify(self, repair: bool = False) -> VerifyReport:
        from .files_repair import verify_store

        return verify_store(self, repair=repair)

    def index_damage(self) -> list[Damage]:
        return self._index_damage.found()
