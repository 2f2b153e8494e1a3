"""``memory:``: a store that lives in one process. For tests and embedding.

It keeps the same contract as the durable stores (ids, fencing, checksums of
its encoded records, retention), so code tested against it behaves the same
on disk. It is not shared across processes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from agent_continuity import ids
from agent_continuity.errors import (
    CorruptRecord,
    DuplicateRecord,
    RecoveryPointNotFound,
    SessionNotFound,
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
    utc_now,
)

from . import codec, leases, retention
from .base import JournalRead, LeaseRequest, VerifyReport
from .index import missing_journal_detail, missing_journal_error, missing_journal_read
from .tombstones import interleave, lost_in_order, tombstone, tombstones


class MemoryStore:
    """A store held in this process's memory. See :class:`~.base.Store`."""

    shared_across_processes = False

    def __init__(self, url: str = "memory:", durability: str = "sync") -> None:
        self.url = url
        self.durability = durability
        self._lock = threading.RLock()
        self._sessions: dict[str, SessionRecord] = {}
        self._journals: dict[str, list[bytes]] = {}
        self._last_seq: dict[str, int] = {}
        self._leases: dict[str, Lease] = {}
        self._points: dict[str, tuple[RecoveryPointInfo, bytes]] = {}
        self._snapshots: dict[str, bytes] = {}
        self._emergency: dict[str, bytes] = {}
        self._log: list[dict[str, Any]] = []
        self._quarantine: list[bytes] = []

    def close(self) -> None:
        """Nothing to release."""

    # -- sessions -------------------------------------------------------

    def create_session(
        self, draft: SessionRecord, lease: LeaseRequest
    ) -> tuple[SessionRecord, Lease]:
        with self._lock:
            day = draft.created.date()
            prefix = f"SESSION-{ids.day_code(day)}-"
            taken = [ids.parse_session_id(s).number for s in self._sessions if s.startswith(prefix)]
            session_id = ids.make_session_id(day, max(taken, default=0) + 1)
            record = draft.model_copy(update={"id": session_id, "last_seq": 1})
            granted = leases.grant(session_id, None, lease, steal=False, expect_token=None)
            first = Event(
                seq=1,
                kind=EventKind.SESSION,
                at=draft.created,
                payload=leases.creation_payload(record, granted),
            )
            self._journals[session_id] = [codec.encode_event(first)]
            self._last_seq[session_id] = 1
            self._sessions[session_id] = record
            self._leases[session_id] = granted
            return record, granted

    def get_session(self, session_id: str) -> SessionRecord:
        ids.validate_session_id(session_id)
        with self._lock:
            try:
                return self._sessions[session_id]
            except KeyError:
                raise SessionNotFound(
                    f"no session {session_id} in {self.url}; `continuity list` shows the sessions"
                ) from None

    def list_sessions(self) -> list[SessionRecord]:
        with self._lock:
            return sorted(self._sessions.values(), key=lambda r: (r.created, r.id))

    def put_session(self, record: SessionRecord) -> None:
        with self._lock:
            self.get_session(record.id)
            self._sessions[record.id] = record

    # -- leases ---------------------------------------------------------

    def read_lease(self, session_id: str) -> Lease | None:
        ids.validate_session_id(session_id)
        with self._lock:
            return self._leases.get(session_id)

    def acquire_lease(
        self,
        session_id: str,
        request: LeaseRequest,
        *,
        steal: bool = False,
        expect_token: int | None = None,
    ) -> Lease:
        with self._lock:
            self.get_session(session_id)
            if session_id not in self._journals:
                raise missing_journal_error(session_id, f"{self.url}{session_id}")
            granted = leases.grant(
                session_id,
                self._leases.get(session_id),
                request,
                steal=steal,
                expect_token=expect_token,
            )
            self._leases[session_id] = granted
            self._append_locked(
                session_id,
                [
                    EventDraft(
                        kind=EventKind.LEASE,
                        at=request.now,
                        payload={"token": granted.token, "holder": granted.holder},
                    )
                ],
            )
            return granted

    def renew_lease(self, lease: Lease, request: LeaseRequest) -> Lease:
        with self._lock:
            renewed = leases.renewed(self._leases.get(lease.session_id), lease, request)
            self._leases[lease.session_id] = renewed
            return renewed

    def release_lease(self, lease: Lease) -> None:
        with self._lock:
            current = self._leases.get(lease.session_id)
            if current is not None and current.token == lease.token:
                # Keep the token so the next holder still gets a higher one.
                self._leases[lease.session_id] = current.model_copy(
                    update={"expires": current.heartbeat}
                )

    # -- journal --------------------------------------------------------

    def append(self, lease: Lease, drafts: Sequence[EventDraft]) -> list[Event]:
        with self._lock:
            leases.check_current(self._leases.get(lease.session_id), lease)
            return self._append_locked(lease.session_id, drafts)

    def _append_locked(self, session_id: str, drafts: Sequence[EventDraft]) -> list[Event]:
        journal = self._journals.get(session_id)
        if journal is None:
            raise missing_journal_error(session_id, f"{self.url}{session_id}")
        # The counter, not the last line, allocates: a damaged last record must
        # not stop the journal from growing (the disk stores behave the same).
        seq = self._last_seq.get(session_id, 0)
        events = []
        for draft in drafts:
            seq += 1
            events.append(Event(seq=seq, kind=draft.kind, at=draft.at, payload=draft.payload))
        # Encode everything before changing anything: a value that cannot be
        # stored must leave the journal as it was.
        lines = [codec.encode_event(e) for e in events]
        journal.extend(lines)
        self._last_seq[session_id] = seq
        return events

    def read_events(self, session_id: str, after_seq: int = 0) -> JournalRead:
        ids.validate_session_id(session_id)
        with self._lock:
            if session_id not in self._journals:
                if session_id in self._sessions:
                    return missing_journal_read(session_id, f"{self.url}{session_id}")
                raise SessionNotFound(f"no session {session_id} in {self.url}")
            lines = list(self._journals[session_id])
        result = JournalRead(events=[])
        expected = 1
        for index, line in enumerate(lines):
            try:
                event = codec.decode_event(line, f"{session_id}#{index}")
            except CorruptRecord as exc:
                result.damage.append(
                    Damage(location=exc.location, kind="checksum", detail=str(exc))
                )
                continue
            if event.seq != expected:
                result.damage.append(
                    Damage(
                        location=f"{session_id}#{index}",
                        kind="gap",
                        detail=f"events {expected} to {event.seq - 1} are missing",
                    )
                )
            expected = event.seq + 1
            result.end_seq = max(result.end_seq, event.seq)
            if event.seq > after_seq:
                result.events.append(event)
        return result

    # -- recovery points ------------------------------------------------

    def save_point(self, point: RecoveryPoint) -> RecoveryPointInfo:
        ids.validate_recovery_id(point.id)
        data = codec.dump_compressed(point.to_wire())
        info = RecoveryPointInfo(
            id=point.id,
            session_id=point.session_id,
            seq=point.seq,
            created=point.created,
            trigger=point.trigger,
            location=f"memory:{point.id}",
        )
        with self._lock:
            self.get_session(point.session_id)
            if point.id in self._points:
                raise DuplicateRecord(f"recovery point {point.id} exists already")
            self._points[point.id] = (info, data)
        return info

    def load_point(self, point_id: str) -> RecoveryPoint:
        ids.validate_recovery_id(point_id)
        with self._lock:
            entry = self._points.get(point_id)
        if entry is None:
            raise RecoveryPointNotFound(f"no recovery point {point_id} in {self.url}")
        doc = codec.load_compressed(entry[1], f"memory:{point_id}")
        return RecoveryPoint.model_validate(doc)

    def list_points(self, session_id: str) -> list[RecoveryPointInfo]:
        ids.validate_session_id(session_id)
        with self._lock:
            infos = [info for info, _ in self._points.values() if info.session_id == session_id]
        return sorted(infos, key=lambda i: (i.seq, i.created, i.id))

    def prune_points(self, session_id: str, keep_automatic: int) -> list[str]:
        with self._lock:
            doomed = retention.prunable(
                self.list_points(session_id), keep_automatic, self._is_valid
            )
            for info in doomed:
                del self._points[info.id]
            return [info.id for info in doomed]

    def _is_valid(self, info: RecoveryPointInfo) -> bool:
        try:
            self.load_point(info.id)
        except CorruptRecord:
            return False
        return True

    # -- snapshots, emergency backups, log -----------------------------

    def save_context_snapshot(self, snapshot: ContextSnapshot) -> None:
        data = codec.dump_document(snapshot.to_wire())
        with self._lock:
            self.get_session(snapshot.session_id)
            self._snapshots[snapshot.session_id] = data

    def load_context_snapshot(self, session_id: str) -> ContextSnapshot | None:
        ids.validate_session_id(session_id)
        with self._lock:
            data = self._snapshots.get(session_id)
        if data is None:
            return None
        return ContextSnapshot.model_validate(codec.load_document(data, f"memory:{session_id}"))

    def save_emergency(self, backup: EmergencyBackup) -> None:
        ids.validate_session_id(backup.session_id)
        data = codec.dump_document(backup.to_wire())
        with self._lock:
            self._emergency[backup.session_id] = data

    def load_emergency(self, session_id: str) -> EmergencyBackup | None:
        ids.validate_session_id(session_id)
        with self._lock:
            data = self._emergency.get(session_id)
        if data is None:
            return None
        return EmergencyBackup.model_validate(codec.load_document(data, f"memory:{session_id}"))

    def list_emergency(self) -> tuple[list[EmergencyBackup], list[Damage]]:
        backups, damage = [], []
        with self._lock:
            keys = sorted(self._emergency)
        for key in keys:
            try:
                backup = self.load_emergency(key)
            except CorruptRecord as exc:
                damage.append(Damage(location=exc.location, kind="checksum", detail=str(exc)))
                continue
            if backup is not None:
                backups.append(backup)
        return backups, damage

    def log_recovery(self, entry: dict[str, Any]) -> None:
        codec.dump_document(entry)  # refuse what could not be stored durably either
        with self._lock:
            self._log.append(dict(entry))

    def read_recovery_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._log]

    # -- maintenance ----------------------------------------------------

    def verify(self, repair: bool = False) -> VerifyReport:
        report = VerifyReport()
        with self._lock:
            for session_id in self.lost_journals():
                location = f"{self.url}{session_id}"
                detail = missing_journal_detail(session_id)
                report.damage.append(Damage(location=location, kind="missing", detail=detail))
                if repair:
                    self._rebuild_journal(session_id, report)
            session_ids = list(self._journals)
            point_ids = list(self._points)
        for session_id in session_ids:
            read = self.read_events(session_id)
            report.checked += len(read.events) + len(read.damage)
            report.damage.extend(read.damage)
            if repair and read.damage:
                self._mend_journal(session_id, report)
        for point_id in point_ids:
            report.checked += 1
            try:
                self.load_point(point_id)
            except CorruptRecord as exc:
                report.damage.append(
                    Damage(location=exc.location, kind="checksum", detail=str(exc))
                )
        return report

    def _mend_journal(self, session_id: str, report: VerifyReport) -> None:
        """Quarantine damaged lines and close each lost number with a tombstone."""
        with self._lock:
            lines = self._journals[session_id]
            records: list[int | bytes] = []
            valid: list[tuple[int, bytes]] = []
            events: list[Event] = []
            damaged = []
            for line in lines:
                try:
                    event = codec.decode_event(line)
                except CorruptRecord:
                    damaged.append(line)
                    records.append(line)
                    continue
                records.append(event.seq)
                valid.append((event.seq, line))
                events.append(event)
            where = None
            if damaged:
                self._quarantine.append(b"".join(damaged))
                where = f"{self.url}quarantine/{len(self._quarantine)}"
                report.quarantined.append(where)
            lost = lost_in_order(records, quarantine=where, seen=self._last_seq.get(session_id, 0))
            self._journals[session_id] = interleave(valid, tombstones(events, lost, utc_now()))
            report.repaired.append(f"{self.url}{session_id}: closed {len(lost)} lost event(s)")

    def _rebuild_journal(self, session_id: str, report: VerifyReport) -> None:
        """A lost journal again: a ``missing`` tombstone at every number it handed out."""
        record = self._sessions[session_id]
        newest = max((p.seq for p in self.list_points(session_id)), default=0)
        seen = max(self._last_seq.get(session_id, 0), record.last_seq, newest, 1)
        now = utc_now()
        at = record.last_activity
        self._journals[session_id] = [
            codec.encode_event(
                tombstone(seq, reason="missing", quarantine=None, at=at, repaired_at=now)
            )
            for seq in range(1, seen + 1)
        ]
        self._last_seq[session_id] = seen
        report.repaired.append(
            f"{self.url}{session_id}: the journal was missing; rebuilt with a tombstone at each "
            f"of events 1..{seen}"
        )

    def lost_journals(self) -> list[str]:
        with self._lock:
            return [s for s in self._sessions if s not in self._journals]

    def index_damage(self) -> list[Damage]:
        """Always empty: nothing of this store's index is kept as bytes that could be damaged."""
        return []
