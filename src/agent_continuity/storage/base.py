"""The Store protocol: what every storage backend provides.

Stores know nothing of recovery. They keep five kinds of record for each
session and guarantee the durability rules of DESIGN.md §3:

* the **journal**, an append-only sequence of checksummed events; the truth;
* the **registry** entry, an index derived from the journal (status, context);
* **recovery points**, the materialised state at a journal sequence number;
* the latest **context snapshot**;
* the **emergency backup**, the critical facts kept apart from the rest;

plus the session's **lease** (who may append) and the store-wide **recovery
log**. A method returns only once what it wrote survives ``kill -9`` (with
``durability="sync"``, also power loss; a store may leave an *automatic*
recovery point's power-safety to its next synced write: losing one to power
failure loses no event, only the code context that interval save observed,
since recovery falls back to the point before and replays the journal). A
failed write raises; nothing is ever silently skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from agent_continuity.model import (
    ContextSnapshot,
    Damage,
    EmergencyBackup,
    Event,
    EventDraft,
    Lease,
    RecoveryPoint,
    RecoveryPointInfo,
    SessionRecord,
)

DURABILITY_MODES = ("sync", "batched")

#: The Store methods that write. Each either completes durably or raises and
#: leaves the store as it was; fault-injection tests wrap exactly these.
WRITE_METHODS = (
    "create_session",
    "put_session",
    "acquire_lease",
    "renew_lease",
    "release_lease",
    "append",
    "save_point",
    "prune_points",
    "save_context_snapshot",
    "save_emergency",
    "log_recovery",
)


@dataclass(frozen=True, slots=True)
class LeaseRequest:
    """Who asks for a session's lease, and for how long.

    Attributes:
        holder: ``"pid@host"`` for a process that owns the session, ``"cli"``
            for command-line sessions owned by no process.
        pid: The owning process id, when there is one.
        host: The host name of the owner.
        ttl: How long the lease lasts without a heartbeat.
        now: The time of the request (injected, never read from a clock here).
    """

    holder: str
    pid: int | None
    host: str
    ttl: timedelta
    now: datetime


@dataclass(slots=True)
class JournalRead:
    """The events read from a journal, and any damage met on the way.

    ``events`` holds every record that passed its checksum, in sequence
    order. ``damage`` says what could not be read (a torn tail, a flipped
    byte, a gap in the sequence numbers); it is never silently dropped.
    """

    events: list[Event]
    damage: list[Damage] = field(default_factory=list)
    #: The highest sequence number of an intact record in the whole journal,
    #: including the records before ``after_seq`` that were checked but not returned.
    end_seq: int = 0

    @property
    def last_seq(self) -> int:
        """Sequence number of the last readable event (0 when there is none)."""
        return self.events[-1].seq if self.events else 0


@dataclass(slots=True)
class VerifyReport:
    """What ``Store.verify`` checked and found.

    Attributes:
        checked: How many records were read and checked.
        damage: Every damaged record, each naming its file or row.
        repaired: What ``repair=True`` rebuilt (registry, active list, ...).
        quarantined: Where damaged bytes were moved (never deleted).
    """

    checked: int = 0
    damage: list[Damage] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing damaged was found."""
        return not self.damage


@runtime_checkable
class Store(Protocol):
    """A durable home for sessions. Every backend passes the conformance suite
    in :mod:`agent_continuity.testing`.

    Attributes:
        url: The URL the store was opened from.
        durability: ``"sync"`` (each write is durable when it returns, but
            for automatic points, see the module documentation) or
            ``"batched"`` (writes are grouped; up to ``batch_interval`` of
            acknowledged work can be lost to power failure, none to ``kill -9``).
        shared_across_processes: Whether two processes opening the same URL
            see the same data (False only for ``memory:``).
    """

    url: str
    durability: str
    shared_across_processes: bool

    def close(self) -> None:
        """Release files, connections and locks. Safe to call twice."""

    # -- sessions -------------------------------------------------------

    def create_session(
        self, draft: SessionRecord, lease: LeaseRequest
    ) -> tuple[SessionRecord, Lease]:
        """Register a new session and give its creator the first lease.

        The id is allocated here: ``SESSION-{YYMMDD}-{NNN}`` for the UTC day of
        ``draft.created``, NNN one more than the highest number of that day,
        never a duplicate even when many processes create sessions at once.
        The journal starts with one ``session`` event whose payload is
        ``{"record": <the record's wire form>, "lease": {"token": 1, "holder": …}}``
        (:func:`.leases.creation_payload`).

        Args:
            draft: The record to create; its ``id`` is ignored.
            lease: The creator's lease request.

        Returns:
            The record with its id and ``last_seq == 1``, and the lease (token 1).
        """
        ...

    def get_session(self, session_id: str) -> SessionRecord:
        """The registry entry of a session (derived from its journal if the entry is damaged).

        Raises:
            InvalidIdentifier: If ``session_id`` is malformed.
            SessionNotFound: If there is no such session.
        """
        ...

    def list_sessions(self) -> list[SessionRecord]:
        """Every registered session, oldest first (damaged entries derived from the journals)."""
        ...

    def put_session(self, record: SessionRecord) -> None:
        """Replace a session's registry entry (the index; the journal is the truth).

        Updates to different sessions from different processes never lose
        each other. Registry counters (totalSessions, activeSessions,
        lastSessionId) follow. A damaged entry is moved to the quarantine first.

        Raises:
            SessionNotFound: If the session was never created.
        """
        ...

    # -- leases ---------------------------------------------------------

    def read_lease(self, session_id: str) -> Lease | None:
        """The current lease of a session, or None if it has none.

        A damaged or lost lease document of a session that has a journal is
        derived from the journal (:func:`.leases.from_journal`).
        """
        ...

    def acquire_lease(
        self,
        session_id: str,
        request: LeaseRequest,
        *,
        steal: bool = False,
        expect_token: int | None = None,
    ) -> Lease:
        """Take a session's lease, fencing out every earlier holder.

        The lease is granted when the session has none, when the current one
        expired before ``request.now``, when it has the same holder, or when
        ``steal`` is set (the caller found the owner dead). ``expect_token``
        makes the takeover conditional: two processes racing to take over the
        same dead session cannot both win. The new token is the old one plus
        one, and a ``lease`` event is appended to the journal, so an append
        still in flight from the previous holder is refused.

        Raises:
            LeaseHeld: If another live holder has it, or the token moved on.
            SessionNotFound: If there is no such session.
        """
        ...

    def renew_lease(self, lease: Lease, request: LeaseRequest) -> Lease:
        """Extend a lease (heartbeat) without changing its token.

        Raises:
            LeaseHeld: If the lease was taken over since.
        """
        ...

    def release_lease(self, lease: Lease) -> None:
        """Give the lease up; a no-op if it was already taken over."""
        ...

    # -- journal --------------------------------------------------------

    def append(self, lease: Lease, drafts: Sequence[EventDraft]) -> list[Event]:
        """Append events to the session's journal, in order, atomically as a group.

        Returns only once the events are durable. Sequence numbers continue
        the journal without a gap.

        Raises:
            LeaseHeld: If ``lease.token`` is no longer the session's current token.
            StoreError: If the write failed; the journal is then as it was before.
        """
        ...

    def read_events(self, session_id: str, after_seq: int = 0) -> JournalRead:
        """Events with ``seq > after_seq``, in order, and any damage found.

        A torn tail or a record failing its checksum is reported in
        ``damage`` and never returned as an event.
        """
        ...

    # -- recovery points ------------------------------------------------

    def save_point(self, point: RecoveryPoint) -> RecoveryPointInfo:
        """Store a recovery point durably (an automatic one: see the module documentation).

        Raises:
            DuplicateRecord: If a point with that id exists (points are never overwritten).
        """
        ...

    def load_point(self, point_id: str) -> RecoveryPoint:
        """Load and verify one recovery point.

        Raises:
            InvalidIdentifier: If ``point_id`` is malformed.
            RecoveryPointNotFound: If there is no such point.
            CorruptRecord: If it fails its checksum or cannot be decoded.
        """
        ...

    def list_points(self, session_id: str) -> list[RecoveryPointInfo]:
        """A session's recovery points, oldest first (by ``seq``, then creation),
        without reading their bodies."""
        ...

    def prune_points(self, session_id: str, keep_automatic: int) -> list[str]:
        """Delete the points beyond what retention keeps (see :mod:`.retention`).

        Automatic points beyond the newest ``keep_automatic``, and points of
        each other trigger kind beyond the newest
        :data:`~.retention.KEEP_PER_TRIGGER` of that kind; the newest *valid*
        point is never deleted, whatever its kind.

        Returns:
            The ids deleted.
        """
        ...

    # -- context snapshots and emergency backups -----------------------

    def save_context_snapshot(self, snapshot: ContextSnapshot) -> None:
        """Replace the session's latest context snapshot, atomically."""
        ...

    def load_context_snapshot(self, session_id: str) -> ContextSnapshot | None:
        """The latest context snapshot, or None.

        Raises:
            CorruptRecord: If it is damaged.
        """
        ...

    def save_emergency(self, backup: EmergencyBackup) -> None:
        """Replace the session's emergency backup, atomically, apart from all else."""
        ...

    def load_emergency(self, session_id: str) -> EmergencyBackup | None:
        """One session's emergency backup, or None.

        Raises:
            CorruptRecord: If it is damaged.
        """
        ...

    def list_emergency(self) -> tuple[list[EmergencyBackup], list[Damage]]:
        """Every readable emergency backup, and the damage met reading the rest."""
        ...

    # -- recovery log ---------------------------------------------------

    def log_recovery(self, entry: dict[str, Any]) -> None:
        """Append one entry to the recovery log (JSON-ready dict)."""
        ...

    def read_recovery_log(self) -> list[dict[str, Any]]:
        """Every readable recovery log entry, oldest first."""
        ...

    # -- maintenance ----------------------------------------------------

    def verify(self, repair: bool = False) -> VerifyReport:
        """Check every record's checksum and the registry against the journals.

        With ``repair``, rebuild what is derivable (registry, active list,
        leases), move damaged bytes to a quarantine, never deleting the only
        copy, and close each sequence number the journal lost with a tombstone
        (a ``note`` event whose payload's ``lost`` names the reason and the
        quarantine; see :mod:`.tombstones`). A repaired store verifies clean.
        """
        ...

    def lost_journals(self) -> list[str]:
        """The sessions this store knows (a registry entry, a recovery point) whose journal is gone.

        Such a session is damaged, not the store: ``read_events`` returns no
        events and one ``missing`` damage, recovery falls back on its newest
        valid point and emergency backup, writes to it raise
        :class:`~agent_continuity.errors.JournalMissing`, and ``verify`` lists
        it until ``repair`` rebuilds the journal with a tombstone at each
        number it held.
        """
        ...

    def index_damage(self) -> list[Damage]:
        """Damage to the index that this handle met and worked around, oldest first.

        The registry entries and lease documents are an index over the
        journals. When one is damaged or missing, reads derive it from the
        journal instead of refusing (see :func:`.leases.from_journal` for the
        lease rule), and a write first moves the damaged bytes to the
        quarantine and rebuilds it. Each such record is listed once, its
        ``detail`` saying what was done, so a caller can warn the user.
        ``verify`` still names damage that no write has mended yet.
        """
        ...
