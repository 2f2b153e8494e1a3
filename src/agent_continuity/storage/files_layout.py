"""Where the files store keeps each record, and the shape of its documents.

The layout is the specification's, so people and agents can read it with
``cat`` and a team can commit it to git::

    sessions/session-registry.json        {"sessionRegistry": {"metadata", "sessions"}, "checksum"}
    sessions/active-sessions.json         {"activeSessions": [ids], "checksum"}
    sessions/session-archive/ID.json      the record of a completed or archived session
    sessions/leases/ID.json, ID.lock      the session's lease; the lock its writers take
    snapshots/context-snapshots/ID.json   the latest context snapshot
    snapshots/conversation-history/ID.jsonl   the journal, append-only
    snapshots/recovery-points/ID/RECOVERY-….seqN.YYYYMMDDTHHMMSSmmmZ.TRIGGER.json.gz
    recovery/recovery-protocols.json      the quick, full and emergency protocols
    recovery/recovery-logs/recovery-log.jsonl   one checksummed JSON line per recovery
    recovery/emergency-backups/ID.json    critical facts, kept apart from the rest
    quarantine/                           damaged bytes moved aside by ``verify --repair``

A recovery point's file name carries its id, ``seq``, creation time and
trigger, so listing and pruning never decompress a body. Every path is built
from an id that passed :mod:`agent_continuity.ids`, so no id can name a file
outside the store.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from agent_continuity import ids
from agent_continuity.errors import CorruptRecord, InvalidIdentifier
from agent_continuity.model import (
    SYSTEM_VERSION,
    RecoveryPointInfo,
    SessionStatus,
    Trigger,
)

Entries = dict[str, dict[str, Any]]  # session id -> SessionRecord in wire form

POINT_SUFFIX = ".json.gz"
EMPTY_LAST_SESSION = "SESSION-000000"  # the specification's value for an empty registry

RECOVERY_PROTOCOLS: dict[str, Any] = {
    "recoveryProtocols": {
        "quickRecovery": {
            "description": "Fast context restoration for same-day sessions",
            "timeLimit": "24 hours",
            "steps": [
                "load-session-snapshot",
                "restore-conversation-context",
                "verify-project-state",
                "resume-current-task",
            ],
            "estimatedTime": "30 seconds",
        },
        "fullRecovery": {
            "description": "Complete context reconstruction for older sessions",
            "timeLimit": "unlimited",
            "steps": [
                "analyze-project-changes",
                "rebuild-context-from-logs",
                "update-knowledge-base",
                "synchronize-with-current-state",
                "generate-recovery-summary",
            ],
            "estimatedTime": "2-5 minutes",
        },
        "emergencyRecovery": {
            "description": "Minimal context for critical situations",
            "timeLimit": "unlimited",
            "steps": [
                "load-critical-project-info",
                "identify-urgent-tasks",
                "establish-basic-context",
            ],
            "estimatedTime": "15 seconds",
        },
    }
}


@dataclass(frozen=True, slots=True)
class Layout:
    """The paths of one files store under ``root``."""

    root: Path

    @property
    def sessions(self) -> Path:
        """``sessions/``."""
        return self.root / "sessions"

    @property
    def registry(self) -> Path:
        """The session registry document."""
        return self.sessions / "session-registry.json"

    @property
    def registry_lock(self) -> Path:
        """The store-wide lock: id allocation, registry and recovery log updates."""
        return self.sessions / "session-registry.lock"

    @property
    def active(self) -> Path:
        """The list of active sessions."""
        return self.sessions / "active-sessions.json"

    @property
    def archive(self) -> Path:
        """Copies of completed and archived sessions' records."""
        return self.sessions / "session-archive"

    @property
    def leases(self) -> Path:
        """One lease document and one lock file per session."""
        return self.sessions / "leases"

    @property
    def snapshots(self) -> Path:
        """Latest context snapshot per session."""
        return self.root / "snapshots" / "context-snapshots"

    @property
    def journals(self) -> Path:
        """The journals."""
        return self.root / "snapshots" / "conversation-history"

    @property
    def points(self) -> Path:
        """Recovery points, one folder per session."""
        return self.root / "snapshots" / "recovery-points"

    @property
    def protocols(self) -> Path:
        """The recovery protocols document."""
        return self.root / "recovery" / "recovery-protocols.json"

    @property
    def logs(self) -> Path:
        """The recovery log's folder."""
        return self.root / "recovery" / "recovery-logs"

    @property
    def log(self) -> Path:
        """The recovery log."""
        return self.logs / "recovery-log.jsonl"

    @property
    def emergency(self) -> Path:
        """Emergency backups."""
        return self.root / "recovery" / "emergency-backups"

    @property
    def quarantine(self) -> Path:
        """Where ``verify --repair`` moves damaged bytes."""
        return self.root / "quarantine"

    def folders(self) -> list[Path]:
        """Every folder of the layout."""
        return [
            self.archive,
            self.leases,
            self.snapshots,
            self.journals,
            self.points,
            self.logs,
            self.emergency,
        ]

    def journal(self, session_id: str) -> Path:
        """A session's journal."""
        return self.journals / f"{ids.validate_session_id(session_id)}.jsonl"

    def lease(self, session_id: str) -> Path:
        """A session's lease document."""
        return self.leases / f"{ids.validate_session_id(session_id)}.json"

    def session_lock(self, session_id: str) -> Path:
        """The lock file a session's writers hold."""
        return self.leases / f"{ids.validate_session_id(session_id)}.lock"

    def snapshot(self, session_id: str) -> Path:
        """A session's latest context snapshot."""
        return self.snapshots / f"{ids.validate_session_id(session_id)}.json"

    def emergency_backup(self, session_id: str) -> Path:
        """A session's emergency backup."""
        return self.emergency / f"{ids.validate_session_id(session_id)}.json"

    def archived(self, session_id: str) -> Path:
        """The archive copy of a session's record."""
        return self.archive / f"{ids.validate_session_id(session_id)}.json"

    def point_folder(self, session_id: str) -> Path:
        """A session's recovery points."""
        return self.points / ids.validate_session_id(session_id)

    def journal_ids(self) -> list[str]:
        """The session ids that have a journal, in id order."""
        found = []
        for path in self.journals.glob("SESSION-*.jsonl"):
            try:
                found.append(ids.validate_session_id(path.stem))
            except InvalidIdentifier:
                continue
        return sorted(found, key=session_sort_key)

    def point_session_ids(self) -> list[str]:
        """The session ids that have a folder of recovery points, in id order."""
        try:
            names = os.listdir(self.points)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            try:
                found.append(ids.validate_session_id(name))
            except InvalidIdentifier:
                continue
        return sorted(found, key=session_sort_key)


@lru_cache(maxsize=4096)  # the registry sorts every id on every write
def session_sort_key(session_id: str) -> tuple[datetime, int]:
    """Sort session ids by day, then number (``-1000`` after ``-999``)."""
    key = ids.parse_session_id(session_id)
    return datetime(key.day.year, key.day.month, key.day.day), key.number


def point_file_name(info: RecoveryPointInfo) -> str:
    """``RECOVERY-….seqN.YYYYMMDDTHHMMSSmmmZ.TRIGGER.json.gz`` for a point."""
    return point_name(info.id, info.seq, info.created, info.trigger)


def point_name(point_id: str, seq: int, created: datetime, trigger: Trigger) -> str:
    """:func:`point_file_name` from the listing's parts."""
    created = created.astimezone(UTC)
    stamp = created.strftime("%Y%m%dT%H%M%S") + f"{created.microsecond // 1000:03d}Z"
    return f"{point_id}.seq{seq}.{stamp}.{trigger.value}{POINT_SUFFIX}"


def parse_point_file_name(session_id: str, path: Path) -> RecoveryPointInfo | None:
    """The listing of a point from its file name, or None if the name is not one of ours."""
    return parse_point_name(session_id, str(path.parent), path.name)


def parse_point_name(session_id: str, folder: str, name: str) -> RecoveryPointInfo | None:
    """:func:`parse_point_file_name` for a name listed in ``folder`` (no Path objects made)."""
    match = _POINT_NAME.fullmatch(name) if name.isascii() else None
    if match is None:
        return None
    point_id, time = match["id"], match["time"]
    try:
        # One regular expression does what ids.validate_recovery_id does, except
        # checking the day when it is not the session's own (already valid) one:
        # recovery lists a long session's thousands of points.
        if match["short"] != session_id[len("SESSION-") :]:
            ids.validate_recovery_id(point_id)
        if time is not None and (int(time[:2]) > 23 or int(time[2:4]) > 59 or int(time[4:]) > 59):
            return None
        return RecoveryPointInfo(
            id=point_id,
            session_id=session_id,
            seq=int(match["seq"]),
            created=_parse_stamp(match["stamp"]),
            trigger=Trigger(match["trigger"]),
            location=os.path.join(folder, name),
        )
    except (InvalidIdentifier, ValueError):
        return None


_POINT_NAME = re.compile(
    r"(?P<id>RECOVERY-(?P<short>\d{6}-\d{3,9})-(?:(?P<time>\d{6})|AUTO-SAVE-[1-9]\d{0,9}))"
    r"\.seq(?P<seq>\d+)\.(?P<stamp>\d{8}T\d{9}Z)\.(?P<trigger>[a-z-]+)" + re.escape(POINT_SUFFIX)
)


def _parse_stamp(stamp: str) -> datetime:
    """``YYYYMMDDTHHMMSSmmmZ`` (as :func:`point_file_name` writes it) as a UTC time.

    Raises:
        ValueError: If ``stamp`` is not one.
    """
    digits = stamp[:8] + stamp[9:18]
    if len(stamp) != 19 or stamp[8] != "T" or stamp[18] != "Z" or not digits.isdigit():
        raise ValueError(f"not a point time stamp: {stamp!r}")
    return datetime(
        int(stamp[0:4]),
        int(stamp[4:6]),
        int(stamp[6:8]),
        int(stamp[9:11]),
        int(stamp[11:13]),
        int(stamp[13:15]),
        int(stamp[15:18]) * 1000,
        tzinfo=UTC,
    )


def _created(entry: dict[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(str(entry.get("created")))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


def _is_active(entry: dict[str, Any]) -> bool:
    return entry.get("status") == SessionStatus.ACTIVE.value


def registry_document(entries: Entries) -> dict[str, Any]:
    """The registry in the specification's shape (the codec adds the checksum).

    Args:
        entries: Session id to the session's record in wire form.
    """
    ordered = sorted(entries, key=lambda s: (_created(entries[s]), session_sort_key(s)))
    return {
        "sessionRegistry": {
            "metadata": {
                "totalSessions": len(entries),
                "activeSessions": sum(_is_active(e) for e in entries.values()),
                "lastSessionId": max(entries, key=session_sort_key, default=EMPTY_LAST_SESSION),
                "systemVersion": SYSTEM_VERSION,
            },
            "sessions": {session_id: entries[session_id] for session_id in ordered},
        }
    }


def parse_registry(doc: dict[str, Any], location: str) -> Entries:
    """The entries of a checksum-verified registry document (validated one by one on use).

    Raises:
        CorruptRecord: If the document does not have the registry's shape.
    """
    registry = doc.get("sessionRegistry") if isinstance(doc, dict) else None
    sessions = registry.get("sessions") if isinstance(registry, dict) else None
    if not isinstance(sessions, dict) or not all(
        isinstance(entry, dict) and entry.get("id") == key for key, entry in sessions.items()
    ):
        raise CorruptRecord(
            f"{location}: not a session registry; run `continuity verify --repair`", location
        )
    return sessions


def active_document(entries: Entries) -> dict[str, Any]:
    """``active-sessions.json``: the ids of the active sessions, oldest first."""
    active = [key for key, entry in entries.items() if _is_active(entry)]
    return {"activeSessions": sorted(active, key=session_sort_key)}
