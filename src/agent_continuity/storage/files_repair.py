"""``verify`` for the files store: check every record, and with ``repair`` mend what is derivable.

This module is the maintenance half of :class:`~.files.FileStore` and uses
its internals on purpose. Repair follows one rule: **never delete the only
copy of anything**. Damaged bytes are first written to ``quarantine/``
(fsynced), and only then is the original replaced or moved. The registry,
the active list and lost lease documents are rebuilt from the journals; a
session's state comes from its newest valid recovery point plus the events
after it, exactly as recovery would compute it. Each number a journal lost
gets a tombstone (:mod:`.tombstones`), so a repaired store verifies clean
and the loss stays on record.

Repair holds the registry lock throughout and each session's lock while it
rewrites that session's journal (the store's lock order).
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from agent_continuity import ids
from agent_continuity.errors import CorruptRecord, InvalidIdentifier, RecoveryPointNotFound
from agent_continuity.model import (
    ContextSnapshot,
    Damage,
    EmergencyBackup,
    EventKind,
    Lease,
    SessionRecord,
)

from . import codec
from .atomic import (
    FILE_MODE,
    FOLDER_MODE,
    fsync_folder,
    is_temp_name,
    make_private,
    replace_atomically,
    store_error,
)
from .base import VerifyReport
from .files_documents import read_document, read_log, read_model, validate
from .files_index import quarantine_copy, quarantine_target
from .files_layout import RECOVERY_PROTOCOLS, Entries, active_document, parse_point_file_name
from .files_registry import read_registry, write_registry
from .index import derive_record, missing_journal_detail
from .journal_file import parse_lines, read_journal, split_lines
from .tombstones import interleave, lost_in_order, tombstone, tombstones

if TYPE_CHECKING:
    from .files import FileStore

STALE_TEMP_SECONDS = 60.0


def verify_store(store: FileStore, *, repair: bool) -> VerifyReport:
    """Check (and with ``repair``, mend) everything under ``store.root``.

    See :meth:`~.base.Store.verify`. Damage found is always reported, also
    when it was repaired; ``repaired`` and ``quarantined`` say what was done.
    """
    report = VerifyReport()
    try:
        with store._registry_lock.exclusive() if repair else nullcontext():
            _Verifier(store, report, repair).run()
        if repair:
            narrowed = narrow_modes(store.root)
            if narrowed:
                report.repaired.append(f"narrowed {narrowed} files and folders to 0600/0700")
    except OSError as exc:
        raise store_error(exc, "verify", exc.filename or store.root) from exc
    return report


def narrow_modes(root: Path) -> int:
    """Make every file 0600 and folder 0700 under ``root``; how many were looser.

    A store made before stores were private by default: opening it narrows
    only its root (enough to shut others out); this narrows the rest.
    """
    narrowed = 0
    for folder, _folders, files in os.walk(root):
        narrowed += make_private(Path(folder), FOLDER_MODE)
        narrowed += sum(make_private(Path(folder, name), FILE_MODE) for name in files)
    return narrowed


class _Verifier:
    def __init__(self, store: FileStore, report: VerifyReport, repair: bool) -> None:
        self.store = store
        self.layout = store.layout
        self.report = report
        self.repair = repair

    def run(self) -> None:
        for folder in (
            self.layout.sessions,
            self.layout.leases,
            self.layout.journals,
            self.layout.protocols.parent,
            self.layout.logs,
        ):
            self.leftovers(folder)
        session_ids = self.layout.journal_ids()
        if self.lost_journals(session_ids) and self.repair:
            session_ids = self.layout.journal_ids()
        for session_id in session_ids:
            self.journal(session_id)
        self.points()
        self.documents(self.layout.snapshots, ContextSnapshot, "snapshot")
        self.documents(self.layout.emergency, EmergencyBackup, "emergency")
        self.documents(self.layout.archive, SessionRecord, "archive")
        self.leases(session_ids)
        self.log()
        self.protocols()
        self.registry(session_ids)

    # -- helpers --------------------------------------------------------

    def damage(self, path: Path | str, kind: str, detail: str, offset: int | None = None) -> None:
        self.report.damage.append(
            Damage(location=str(path), kind=kind, detail=detail, offset=offset)
        )

    def quarantine_bytes(self, original: Path, data: bytes) -> Path:
        target = quarantine_copy(self.layout, original, data)
        self.report.quarantined.append(str(target))
        return target

    def quarantine_file(self, path: Path) -> Path:
        target = quarantine_target(self.layout, path)
        try:
            os.replace(path, target)
            fsync_folder(target.parent)
            fsync_folder(path.parent)
        except OSError as exc:
            raise store_error(exc, "move to quarantine", path) from exc
        self.report.quarantined.append(str(target))
        return target

    def leftovers(self, folder: Path) -> list[Path]:
        """The records in a folder; with repair, stale temporary files go to quarantine.

        A temporary file is what an interrupted atomic write left behind. One
        younger than :data:`STALE_TEMP_SECONDS` may belong to a write still in
        progress in another process, so it is left alone.
        """
        try:
            paths = sorted(folder.iterdir())
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise store_error(exc, "list", folder) from exc
        kept = []
        for path in paths:
            if is_temp_name(path.name):
                if self.repair and time.time() - path.stat().st_mtime > STALE_TEMP_SECONDS:
                    self.quarantine_file(path)
            elif not path.name.endswith(".lock"):
                kept.append(path)
        return kept

    # -- journals -------------------------------------------------------

    def journal(self, session_id: str) -> None:
        path = self.layout.journal(session_id)
        read, damaged, _ = read_journal(path, sealer=self.store.sealer)
        seen, source = self.journal_end(session_id)
        if read.damage or seen > read.last_seq:
            # Look again with writers held off: a torn tail may be a write in progress.
            lock = self.store._session(session_id).lock
            with lock.exclusive() if self.repair else lock.shared():
                read, damaged, _ = read_journal(path, sealer=self.store.sealer)
                seen, source = self.journal_end(session_id)
                if self.repair and (read.damage or seen > read.last_seq):
                    self.mend_journal(path, seen)
        self.report.checked += len(read.events) + len(damaged)
        self.report.damage.extend(read.damage)
        if not read.damage and seen > read.last_seq:
            # Cut at a line boundary (an older copy put back), a journal has no
            # damaged line to show; the other records still know how far it went.
            self.damage(
                path,
                "truncated",
                f"the journal ends at event {read.last_seq} but {source} saw event {seen}; "
                f"events {read.last_seq + 1}..{seen} are lost",
            )

    def lost_journals(self, session_ids: list[str]) -> list[str]:
        """Report each session known to the registry or its points whose journal is gone;
        with repair, rebuild it (see :meth:`rebuild_journal`)."""
        lost = self.store.lost_journals()
        for session_id in lost:
            self.report.checked += 1
            path = self.layout.journal(session_id)
            self.damage(path, "missing", missing_journal_detail(session_id))
            if self.repair:
                self.rebuild_journal(session_id, path)
        return lost

    def rebuild_journal(self, session_id: str, path: Path) -> None:
        """Write a lost journal again: a tombstone at every number another record saw.

        What the session's recovery points, emergency backup and registry
        entry hold is kept as it is; the journal says, number by number, that
        the events themselves are lost (reason ``missing``). Recovery then
        replays the tombstones after the newest valid point, the session can
        be resumed and written to again, and the store verifies clean.
        """
        seen, source = self.journal_end(session_id)
        seen = max(seen, 1)
        at = self.last_known_time(session_id)
        now = datetime.now(UTC)
        stones = [
            tombstone(seq, reason="missing", quarantine=None, at=at, repaired_at=now)
            for seq in range(1, seen + 1)
        ]
        with self.store._session(session_id).lock.exclusive():
            if path.exists():
                return  # a creation or another repair got there first
            lines = (codec.encode_event(e, self.store.sealer, session_id) for e in stones)
            replace_atomically(path, b"".join(lines))
        self.report.repaired.append(
            f"{path}: the journal was missing; rebuilt with a tombstone at each of events "
            f"1..{seen} ({source or 'the registry'} saw event {seen}); what the recovery "
            "points and the emergency backup hold is kept"
        )

    def last_known_time(self, session_id: str) -> datetime:
        """When the session was last known active, to time its tombstones (never later)."""
        times = []
        try:
            entry = read_registry(self.store).entries.get(session_id)
            if entry is not None:
                times.append(validate(SessionRecord, entry, self.layout.registry).last_activity)
        except CorruptRecord:
            pass
        points = self.store.list_points(session_id)
        if points:
            times.append(points[-1].created)
        return max(times, default=datetime.now(UTC))

    def journal_end(self, session_id: str) -> tuple[int, str]:
        """The highest event number that a record other than the journal saw, and which one.

        The registry entry, the recovery points and the emergency backup each
        know how far the journal went when they were written.
        """
        known: list[tuple[int, str]] = [(0, "")]
        try:
            entry = read_registry(self.store).entries.get(session_id, {})
            known.append((int(entry.get("lastSeq", 0)), "the registry"))
        except (CorruptRecord, TypeError, ValueError):
            pass  # reported with the registry
        points = self.store.list_points(session_id)
        if points:
            known.append((points[-1].seq, f"recovery point {points[-1].id}"))
        try:
            backup = self.store.load_emergency(session_id)
            if backup is not None:
                known.append((backup.seq, "the emergency backup"))
        except CorruptRecord:
            pass  # reported with the emergency backups
        return max(known)

    def mend_journal(self, path: Path, seen: int) -> None:
        """Quarantine a journal's damaged lines and put a tombstone at every number it lost.

        The new journal (the valid lines, in their order, with the tombstones
        where the lost numbers belong) replaces the old one atomically; the
        session's lock is held. A damaged line stands for the numbers lost
        right after the valid event before it: one line per event, as the
        appends that wrote them.
        """
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise store_error(exc, "read", path) from exc
        lines = split_lines(data)
        session_id = path.name.removesuffix(".jsonl")
        read, damaged = parse_lines(lines, str(path), 0, self.store.sealer, session_id)
        bad = {line.offset for line in damaged}
        kept = (
            self.quarantine_bytes(path, b"".join(line.data + b"\n" for line in damaged))
            if damaged
            else None
        )
        events = iter(read.events)  # one per intact line, in order
        records: list[int | bytes] = []
        valid: list[tuple[int, bytes]] = []
        for line in lines:
            if line.offset in bad:
                records.append(line.data)
            else:
                seq = next(events).seq
                records.append(seq)
                valid.append((seq, line.data + b"\n"))
        lost = lost_in_order(records, quarantine=None if kept is None else str(kept), seen=seen)
        stones = tombstones(read.events, lost, datetime.now(UTC))
        out = interleave(valid, stones, self.store.sealer, session_id)
        replace_atomically(path, b"".join(out))
        done = [f"kept the {len(valid)} valid line(s)"]
        if kept is not None:
            done.insert(0, f"moved {len(damaged)} damaged line(s) to {kept}")
        if lost:
            done.append(f"closed lost event(s) {_ranges(sorted(lost))} with tombstones")
        self.report.repaired.append(f"{path}: " + "; ".join(done))

    def drop_damaged_lines(self, path: Path) -> None:
        """Quarantine the recovery log's damaged lines, then replace it with only its valid ones."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise store_error(exc, "read", path) from exc
        lines = split_lines(data)
        bad = {d.offset for d in read_log(self.layout.log, self.store.sealer)[1]}
        target = self.quarantine_bytes(
            path, b"".join(line.data + b"\n" for line in lines if line.offset in bad)
        )
        replace_atomically(
            path, b"".join(line.data + b"\n" for line in lines if line.offset not in bad)
        )
        self.report.repaired.append(
            f"{path}: moved {len(bad)} damaged line(s) to {target}; kept the "
            f"{len(lines) - len(bad)} valid one(s)"
        )

    # -- recovery points and documents ---------------------------------

    def points(self) -> None:
        for folder in self.leftovers(self.layout.points):
            try:
                session_id = ids.validate_session_id(folder.name)
            except InvalidIdentifier:
                self.damage(folder, "decode", "not a session's recovery point folder")
                continue
            for path in self.leftovers(folder):
                self.report.checked += 1
                info = parse_point_file_name(session_id, path)
                if info is None:
                    self.damage(
                        path, "decode", "file name is not RECOVERY-….seqN.TIME.TRIGGER.json.gz"
                    )
                    continue
                try:
                    # A damaged file-state chunk leaves the point valid, its code context unknown.
                    self.report.damage += self.store._points.read(info, path).damage
                except (CorruptRecord, RecoveryPointNotFound) as exc:
                    self.damage(path, "checksum", exc.message)
                    if self.repair:
                        self.quarantine_file(path)

    def documents(self, folder: Path, model: type[BaseModel], kind: str) -> None:
        for path in self.leftovers(folder):
            self.report.checked += 1
            try:
                ids.validate_session_id(path.name.removesuffix(".json"))
                read_model(path, model, self.store.sealer, kind)
            except InvalidIdentifier:
                self.damage(path, "decode", "file name is not SESSION-YYMMDD-NNN.json")
            except CorruptRecord as exc:
                self.damage(path, "checksum", exc.message)
                if self.repair:
                    self.quarantine_file(path)

    def leases(self, session_ids: list[str]) -> None:
        for session_id in session_ids:
            path = self.layout.lease(session_id)
            self.report.checked += 1
            try:
                if self.store._read_lease_file(session_id) is not None:
                    continue
                self.damage(path, "missing", f"{session_id} has no lease document")
            except CorruptRecord as exc:
                self.damage(path, "checksum", exc.message)
            if self.repair:
                self.rebuild_lease(session_id, path)

    def rebuild_lease(self, session_id: str, path: Path) -> None:
        entry = self.store._session(session_id)
        with entry.lock.exclusive():
            if path.exists():
                self.quarantine_file(path)
            path = self.layout.journal(session_id)
            events = read_journal(path, sealer=self.store.sealer)[0].events
            taken = [e for e in events if e.kind is EventKind.LEASE]
            last = taken[-1] if taken else None
            # Tokens only grow: the rebuilt lease keeps the newest token the journal
            # shows, already expired, so the next writer takes over with a higher one.
            token = int(last.payload.get("token", 1)) if last else 1
            holder = str(last.payload.get("holder", "unknown")) if last else "unknown"
            at = last.at if last else (events[0].at if events else datetime.now(UTC))
            self.store._write_lease(
                Lease(
                    session_id=session_id,
                    token=token,
                    holder=holder,
                    acquired=at,
                    heartbeat=at,
                    expires=at,
                )
            )
            entry.lease_known = False
        self.report.repaired.append(f"{path}: rebuilt from the journal (token {token}, expired)")

    def log(self) -> None:
        entries, damage = read_log(self.layout.log, self.store.sealer)
        self.report.checked += len(entries) + len(damage)
        self.report.damage.extend(damage)
        if damage and self.repair:
            self.drop_damaged_lines(self.layout.log)

    def protocols(self) -> None:
        path = self.layout.protocols
        self.report.checked += 1
        try:
            if read_document(path) == RECOVERY_PROTOCOLS:
                return
            self.damage(
                path,
                "missing" if not path.exists() else "stale",
                "not the recovery protocols this version writes",
            )
        except CorruptRecord as exc:
            self.damage(path, "checksum", exc.message)
        if self.repair:
            if path.exists():
                self.quarantine_file(path)
            replace_atomically(path, codec.dump_document(RECOVERY_PROTOCOLS))
            self.report.repaired.append(f"{path}: rewritten")

    # -- registry and active list ----------------------------------------

    def registry(self, session_ids: list[str]) -> None:
        path = self.layout.registry
        self.report.checked += 1
        entries: Entries | None
        try:
            entries = read_registry(self.store).entries
            for entry in entries.values():  # every entry must also be a valid record
                validate(SessionRecord, entry, path)
        except CorruptRecord as exc:
            self.damage(path, "checksum" if path.exists() else "missing", exc.message)
            entries = None
        known = entries or {}
        missing = [s for s in session_ids if s not in known]
        if entries is not None:
            for session_id in missing:
                self.damage(path, "missing", f"{session_id} has a journal but no registry entry")
        if not self.repair or (entries is not None and not missing):
            self.active(entries)
            return
        if entries is None and path.exists():
            self.quarantine_bytes(path, path.read_bytes())
        rebuilt = dict(known)
        for session_id in missing:
            record = self.rebuild_record(session_id)
            if record is not None:
                rebuilt[session_id] = record.to_wire()
        write_registry(self.store, rebuilt, None)  # and the active list with it
        self.report.repaired.append(
            f"{path}: rebuilt from the journals ({len(rebuilt)} sessions, {len(missing)} restored)"
        )

    def active(self, entries: Entries | None) -> None:
        """Check the active list against the registry (only its checksum if the registry
        cannot be read: the two are not compared against a registry nobody can see)."""
        path = self.layout.active
        self.report.checked += 1
        try:
            doc = read_document(path)
            if entries is None and doc is not None:
                return
            if entries is not None and doc == active_document(entries):
                return
            if doc is None:
                self.damage(path, "missing", "the list of active sessions is missing")
            else:
                self.damage(path, "stale", "does not list the registry's active sessions")
        except CorruptRecord as exc:
            self.damage(path, "checksum", exc.message)
        if self.repair and entries is not None:
            if path.exists():
                self.quarantine_bytes(path, path.read_bytes())
            replace_atomically(path, codec.dump_document(active_document(entries)))
            self.report.repaired.append(f"{path}: rewritten from the registry")

    def rebuild_record(self, session_id: str) -> SessionRecord | None:
        """The session as recovery would see it: newest valid point plus later events."""
        try:
            return derive_record(self.store, session_id)
        except CorruptRecord as exc:
            self.damage(self.layout.journal(session_id), "missing", exc.message)
            return None


def _ranges(numbers: list[int]) -> str:
    """``[3, 4, 5, 9]`` as ``3..5, 9``."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and runs[-1][-1] == n - 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0]}..{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)
