"""``continuity list --json`` read straight from the files store's documents.

An agent may list sessions on every turn, and the full path (open the store,
validate every registry entry as a :class:`~agent_continuity.model.SessionRecord`,
mark dead sessions interrupted) spends most of its time importing pydantic.
When the files store is in order, the answer is the registry's entries as they
are on disk: each was written as ``record.to_wire()``, and an entry in exactly
the model's wire form is what the full path prints (:func:`wire_form`).

This path answers only when it is certain to print what the full path prints
and when the full path would write nothing. Anything else returns None and the
caller takes the full path: another store, a folder or file the store would
create, a registry or lease document that is missing, damaged, of another
version or not exactly in the model's wire form, a journal the registry does
not index yet or a registry entry whose journal is gone (the full path marks
it damaged), an active list that disagrees, an active session whose owner is
gone (the full path marks it interrupted), or any error at all.

Nothing here imports the model or pydantic; tests/test_cli_list_fast.py checks
the wire form below against the model, so the two cannot drift apart.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from agent_continuity import ids
from agent_continuity.checksums import load_document
from agent_continuity.liveness import holder_gone

#: The registry version this path understands (``model.SYSTEM_VERSION``).
SYSTEM_VERSION = "1.0"
STATUSES = ("active", "interrupted", "completed", "archived")

# Times as model.format_time writes them: to the millisecond when there are any.
# Earlier builds wrote ".000Z" for a time with fewer than 1,000
# microseconds, which the model reads back as a whole second and writes
# without the fraction.
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z")
_PROGRESS = re.compile(r"(?:0|[1-9]\d{0,2})%")


class _Refused:
    """What a rule returns for a value the model would refuse or write differently."""


REFUSED = _Refused()

#: A rule takes a value read from a document and returns it as the model writes
#: it back, or REFUSED when this module cannot be sure of that.
Rule = Callable[[Any], Any]


def _text(value: Any) -> Any:
    return value if type(value) is str else REFUSED


def _optional_text(value: Any) -> Any:
    return value if value is None or type(value) is str else REFUSED


def _texts(value: Any) -> Any:
    ok = type(value) is list and all(type(item) is str for item in value)
    return value if ok else REFUSED


def _integer(value: Any) -> Any:
    return value if type(value) is int else REFUSED


def _optional_integer(value: Any) -> Any:
    return value if value is None or type(value) is int else REFUSED


def _positive(value: Any) -> Any:
    return value if type(value) is int and value >= 1 else REFUSED


def _flag(value: Any) -> Any:
    return value if type(value) is bool else REFUSED


def _status(value: Any) -> Any:
    return value if type(value) is str and value in STATUSES else REFUSED


def _progress(value: Any) -> Any:
    ok = type(value) is str and _PROGRESS.fullmatch(value) is not None
    return value if ok and int(value[:-1]) <= 100 else REFUSED


def parse_time(value: Any) -> datetime | None:
    """The UTC time ``value`` names if it is written as the model writes times, else None."""
    if type(value) is not str or _TIME.fullmatch(value) is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _time(value: Any) -> Any:
    if parse_time(value) is None:
        return REFUSED
    return value[:-5] + "Z" if value.endswith(".000Z") else value


def _optional_time(value: Any) -> Any:
    return None if value is None else _time(value)


# A wire form: each key, in the order the model writes them, and its rule.
Shape = Mapping[str, "Rule | Shape | tuple[Shape]"]  # a 1-tuple: the object, or null

#: ``SessionRecord.to_wire()``, key by key.
RECORD: Shape = {
    "id": _text,
    "type": _text,
    "status": _status,
    "created": _time,
    "lastActivity": _time,
    "userId": _text,
    "projectDir": _text,
    "agent": {"type": _text, "capabilities": _texts, "specialization": _text},
    "context": {
        "currentTask": _optional_text,
        "currentPhase": _optional_text,
        "workingDirectory": _text,
        "activeFiles": _texts,
        "conversationSummary": _text,
        "keyDecisions": _texts,
    },
    "state": {
        "completedSteps": _texts,
        "currentStep": _optional_text,
        "nextSteps": _texts,
        "blockers": _texts,
        "progress": _progress,
    },
    "persistence": {
        "autoSave": _flag,
        "saveInterval": _text,
        "lastSave": _optional_time,
        "backupCount": _positive,
    },
    "interruption": ({"cause": _text, "at": _time},),
    "recoveredFrom": _optional_text,
    "continuationId": _optional_text,
    "lastSeq": _integer,
}

#: ``Lease.to_wire()``, key by key.
LEASE: Shape = {
    "sessionId": _text,
    "token": _positive,
    "holder": _text,
    "pid": _optional_integer,
    "host": _text,
    "acquired": _time,
    "heartbeat": _time,
    "expires": _time,
}


def wire_form(value: Any, shape: Shape) -> Any:
    """``value`` (read from a document) as the model would write it back after reading it.

    Returns REFUSED unless ``value`` has exactly the keys of ``shape``, in the
    model's order, each value of its type: only then is the answer certain.
    """
    if type(value) is not dict or list(value) != list(shape):
        return REFUSED
    written = {}
    for key, rule in shape.items():
        item = value[key]
        if isinstance(rule, tuple):
            item = None if item is None else wire_form(item, rule[0])
        elif isinstance(rule, Mapping):
            item = wire_form(item, rule)
        else:
            item = rule(item)
        if item is REFUSED:
            return REFUSED
        written[key] = item
    return written


def files_store_root(store_url: str, project_root: Path) -> Path | None:
    """The folder of a ``files:`` store URL (relative to the project root), else None."""
    scheme, _, rest = store_url.partition(":")
    return project_root / rest if scheme == "files" and rest else None


def listed_sessions(
    store_url: str,
    project_root: Path,
    now: datetime,
    status: str | None = None,
    user: str | None = None,
    gone: set[str] | None = None,
) -> list[dict[str, Any]] | None:
    """What ``continuity list --json`` prints under ``"sessions"``, or None to take the full path.

    Args:
        store_url: The store to list (only ``files:`` stores are read here).
        project_root: Where a relative store path starts.
        now: The time owners' leases are judged at.
        status: Only sessions with this status.
        user: Only this user's sessions.
        gone: If given, active sessions whose owner is gone are added to it (and
            listed as the registry has them, active) instead of answering None.
    """
    root = files_store_root(store_url, project_root)
    if root is None or (root / "encryption.json").exists():
        return None  # an encrypted store's registry opens only with its key: the full path
    try:
        return _listed(root, now, status, user, gone)
    except Exception:  # any surprise at all: the full path knows what to say
        return None


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return load_document(data, str(path))


def _listed(
    root: Path, now: datetime, status: str | None, user: str | None, gone: set[str] | None = None
) -> list[dict[str, Any]] | None:
    sessions, journals = root / "sessions", root / "snapshots" / "conversation-history"
    # What opening the files store would create (storage/files_layout.py).
    needed = [
        sessions / "session-archive",
        sessions / "leases",
        root / "snapshots" / "context-snapshots",
        journals,
        root / "snapshots" / "recovery-points",
        root / "recovery" / "recovery-logs",
        root / "recovery" / "emergency-backups",
    ]
    if not all(folder.is_dir() for folder in needed):
        return None
    if not (root / "recovery" / "recovery-protocols.json").is_file():
        return None
    if not (sessions / "session-registry.lock").is_file():
        return None
    doc = _read(sessions / "session-registry.json")
    registry = doc.get("sessionRegistry") if doc is not None else None
    if type(registry) is not dict or list(registry) != ["metadata", "sessions"]:
        return None
    metadata, entries = registry["metadata"], registry["sessions"]
    if type(metadata) is not dict or metadata.get("systemVersion") != SYSTEM_VERSION:
        return None
    if type(entries) is not dict:
        return None
    records = {}
    for session_id, entry in entries.items():
        record = wire_form(entry, RECORD)
        if record is REFUSED or record["id"] != session_id:
            return None
        records[session_id] = record
    # Opening the store indexes a journal the registry lacks (a writer killed
    # half-way) and rewrites an active list that disagrees with the registry.
    names = set(os.listdir(journals))
    for name in names:
        if name.startswith("SESSION-") and name.endswith(".jsonl"):
            if name.removesuffix(".jsonl") not in records:
                return None
    # A session whose journal is gone is listed as damaged by the full path.
    if not all(f"{session_id}.jsonl" in names for session_id in records):
        return None
    active = [key for key, record in records.items() if record["status"] == "active"]
    active.sort(key=_session_order)
    if _read(sessions / "active-sessions.json") != {"activeSessions": active}:
        return None
    for session_id in active:
        lease = _read(sessions / "leases" / f"{ids.validate_session_id(session_id)}.json")
        if lease is None or wire_form(lease, LEASE) is REFUSED:
            return None
        if holder_gone(_when(lease["expires"]), lease["pid"], lease["host"], now):
            if gone is None:
                return None  # the full path marks it interrupted
            gone.add(session_id)
    listed = [
        record
        for record in records.values()
        if (not status or record["status"] == status) and (not user or record["userId"] == user)
    ]
    listed.sort(key=lambda record: (_when(record["created"]), record["id"]))
    return listed


def _when(value: Any) -> datetime:
    """A time already checked by :func:`wire_form`."""
    when = parse_time(value)
    if when is None:
        raise ValueError(f"not a time: {value!r}")
    return when


def _session_order(session_id: str) -> tuple[Any, int]:
    key = ids.parse_session_id(session_id)
    return key.day, key.number
