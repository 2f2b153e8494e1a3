"""The live session handle: every append is durable when it returns."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from agent_continuity import ids, interrupts
from agent_continuity.captured import context_snapshot
from agent_continuity.errors import (
    ContinuityError,
    CorruptRecord,
    DuplicateRecord,
    IncompleteWrite,
    LeaseHeld,
)
from agent_continuity.incomplete import Step, finish_after, recorded
from agent_continuity.model import (
    EmergencyBackup,
    Event,
    EventDraft,
    EventKind,
    Lease,
    SessionRecord,
    SessionStatus,
    Trigger,
    format_time,
)
from agent_continuity.recording import Recorder
from agent_continuity.replay import SessionView
from agent_continuity.session_facts import critical_facts, emergency_backup, registry_facts

if TYPE_CHECKING:
    from agent_continuity.autosave import AutoSaver
    from agent_continuity.runtime import Runtime

# Kinds that change what emergency recovery needs (task, phase, steps, blockers,
# decisions); messages do not, so the hot path of a conversation stays one write.
_CRITICAL_KINDS = frozenset(
    {
        EventKind.DECISION,
        EventKind.STEP_COMPLETED,
        EventKind.NEXT_STEP,
        EventKind.BLOCKER,
        EventKind.TASK,
        EventKind.STATE,
        EventKind.LIFECYCLE,
    }
)
# The parts of a context snapshot (see save_context_snapshot).
_ALL = ("context", "conversation", "projectState")
# Kinds whose effect the registry shows (current task, phase, status).
_REGISTRY_KINDS = frozenset({EventKind.TASK, EventKind.STATE, EventKind.LIFECYCLE})


class LiveSession(Recorder):
    """A session this process is writing to.

    Obtain one from :meth:`SessionManager.start` or :meth:`SessionManager.attach`.
    Used as a context manager, leaving the block ends the session, and an
    exception (or a termination signal) marks it ``interrupted`` instead.

    The typed appends (:meth:`add_message`, :meth:`decide`, :meth:`set_task`...)
    come from :class:`~agent_continuity.recording.Recorder`; each is durable when
    it returns. A method that records an event and then writes more (the emergency backup,
    the registry entry, the recovery point its trigger asks for) raises
    :class:`~agent_continuity.errors.IncompleteWrite` when one of the later
    writes fails: the event is kept (``kept_seq``), so do not record it again.
    """

    def __init__(
        self,
        runtime: Runtime,
        view: SessionView,
        lease: Lease,
        *,
        owned_by_process: bool,
    ) -> None:
        self._runtime = runtime
        self._view = view
        self._lease = lease
        self._owned = owned_by_process
        # Whether other processes write under this lease (`continuity run`'s agent).
        self._shared = False
        self._lock = threading.RLock()
        self._closed = False
        self._autosaver: AutoSaver | None = None
        self._last_time_stamp: str | None = None
        self._auto_number: int | None = None  # read from the store when first needed
        # What the registry entry last written by this handle says, and when.
        self._registry_written: tuple[dict[str, Any], datetime] | None = None
        # The critical facts last written to the emergency backup, and when.
        self._emergency_written: tuple[dict[str, Any], datetime] | None = None
        if owned_by_process:
            interrupts.watch(self)

    # -- what the session is ------------------------------------------

    @property
    def id(self) -> str:
        """The session id."""
        return self._view.record.id

    @property
    def record(self) -> SessionRecord:
        """The session as of the last append."""
        return self._view.record

    @property
    def view(self) -> SessionView:
        """The materialised state (read-only use)."""
        return self._view

    @property
    def lease(self) -> Lease:
        """The lease this handle writes under."""
        return self._lease

    @property
    def closed(self) -> bool:
        """Whether the session was ended or interrupted through this handle."""
        return self._closed

    def share_lease(self) -> str:
        """Let other processes write under this handle's lease, as ``continuity run``'s agent does.

        From then on the handle reads what they appended before each recovery
        point and context snapshot, so its own writes never hide their events.

        Returns:
            The ``SESSION-ID:TOKEN`` value of ``CONTINUITY_LEASE`` for them.
        """
        self._shared = True
        return f"{self.id}:{self._lease.token}"

    def catch_up(self) -> None:
        """Fold in the events others appended under this handle's shared lease.

        A no-op unless :meth:`share_lease` was called: nobody else can append.
        """
        with self._lock:
            if self._shared and not self._closed:
                self._fold_journal(before=None)

    def _fold_journal(self, before: int | None) -> None:
        read = self._runtime.store.read_events(self.id, after_seq=self._view.seq)
        for event in read.events:
            if before is not None and event.seq >= before:
                break
            self._view.apply(event)

    # -- appends --------------------------------------------------------

    def append_group(
        self, drafts: Sequence[EventDraft], trigger: Trigger | None = None
    ) -> list[Event]:
        """Append several events as one atomic group (what ``continuity update`` does)."""
        return self._append(list(drafts), trigger)

    def draft(self, kind: EventKind, payload: dict[str, Any]) -> EventDraft:
        """An event stamped with the session's clock, for :meth:`append_group`."""
        return EventDraft(kind=kind, at=self._runtime.now(), payload=payload)

    def _one(self, kind: EventKind, payload: dict[str, Any], trigger: Trigger | None = None) -> int:
        return self._append([self.draft(kind, payload)], trigger)[-1].seq

    def _append(
        self,
        drafts: list[EventDraft],
        trigger: Trigger | None,
        then: Sequence[Step] = (),
    ) -> list[Event]:
        with self._lock:
            if self._closed:
                raise ContinuityError(
                    f"{self.id} is {self._view.record.status.value}; "
                    "start or recover a session to record more"
                )
            redactor = self._runtime.redactor
            if redactor is not None:
                # Below every front end: nothing an agent records reaches the store,
                # the recovery points or the prompt with a detected secret in it.
                drafts = redactor.drafts(drafts)
            events = self._runtime.store.append(self._lease, drafts)
            if self._shared and events and events[0].seq > self._view.seq + 1:
                # Others appended under this lease since the view was taken (the
                # agent `continuity run` runs): fold their events in first, or the
                # points and backups written from this view would hide them. (An
                # unshared handle's only gap is the lease event of its own takeover.)
                self._fold_journal(before=events[0].seq)
            for event in events:
                self._view.apply(event)
            kinds = {d.kind for d in drafts}
            # The events are durable from here on: a later write that fails must
            # say they were kept, or the caller records them a second time.
            steps: list[Step] = []
            if kinds & _CRITICAL_KINDS:
                steps.append(("the emergency backup", self.save_emergency))
            if kinds & _REGISTRY_KINDS:
                steps.append(("the registry entry", self._put_session))
            if trigger is not None and trigger.value in self._runtime.config.triggers:
                point = f"the {trigger.value} recovery point"
                steps.append((point, lambda: self.checkpoint(trigger)))
            steps += then
            if steps:
                finish_after(recorded(events), events[-1].seq, None, steps)
            return events

    # -- saving ---------------------------------------------------------

    def checkpoint(
        self, trigger: str | Trigger = Trigger.USER_REQUEST, *, observe: bool = True
    ) -> str:
        """Make a recovery point of the session as it is now.

        Args:
            trigger: Why (``task-completion``, ``major-decision``, ``file-modification``,
                ``error-occurrence``, ``user-request``, or ``auto`` for interval saves).
                Retention then keeps the newest ``backupCount`` automatic points and
                the newest ten of each other kind (see :mod:`.storage.retention`).
            observe: Capture the project's code context first (git status).

        Returns:
            The recovery point id.

        Raises:
            IncompleteWrite: If the point was saved but a write after it (registry
                entry, emergency backup, pruning) failed; ``kept_point`` names it.
        """
        trigger = Trigger(trigger)
        with self._lock:
            self.catch_up()
            now = self._runtime.now()
            if observe:
                self.capture_code_context()
            self._view.record = self._view.record.model_copy(
                update={
                    "persistence": self._view.record.persistence.model_copy(
                        update={"last_save": now}
                    )
                }
            )
            point = None
            for _ in range(3):
                point_id = self._next_point_id(now, trigger)
                try:
                    point = self._runtime.store.save_point(
                        self._view.to_point(point_id, now, trigger)
                    )
                    break
                except DuplicateRecord:
                    continue
            if point is None:
                raise ContinuityError(f"could not allocate a recovery point id for {self.id}")
            steps: list[Step] = [
                ("the registry entry", self._refresh_registry),
                ("the emergency backup", self._refresh_emergency),
            ]
            if not self._owned or trigger in (Trigger.END, Trigger.INTERRUPTION):
                # No interval saver writes this handle's context snapshot (a
                # command-line session), or this is the session's final state.
                steps.append(("the context snapshot", lambda: self.save_context_snapshot(*_ALL)))
            finish_after(f"recovery point {point.id} saved", None, point.id, steps)
            try:
                self._runtime.store.prune_points(
                    self.id, self._view.record.persistence.backup_count
                )
            except ContinuityError as exc:
                raise IncompleteWrite(
                    f"recovery point {point.id} saved, but older points were not "
                    f"pruned: {exc}. Nothing is lost: the next save prunes them",
                    kept_point=point.id,
                    missing=("the pruning of older points",),
                    cause=exc,
                ) from exc
            return point.id

    def _next_point_id(self, now: datetime, trigger: Trigger) -> str:
        # Points made by hand or by a trigger are named by time of day, as in
        # the specification; a second one within the same second, and every
        # interval save, takes the next AUTO-SAVE number instead.
        stamp = now.strftime("%H%M%S")
        if not trigger.automatic and stamp != self._last_time_stamp:
            self._last_time_stamp = stamp
            return ids.make_recovery_id(self.id, at=now)
        if self._auto_number is None:
            # Listing a long session's points costs milliseconds, so only a handle
            # that names an AUTO-SAVE point pays for it, and only once.
            # The store hands out only valid ids, so the number is simply the last field.
            self._auto_number = 1 + max(
                (
                    int(p.id.rsplit("-", 1)[1])
                    for p in self._runtime.store.list_points(self.id)
                    if "-AUTO-SAVE-" in p.id
                ),
                default=0,
            )
        number = self._auto_number
        self._auto_number += 1
        return ids.make_recovery_id(self.id, auto_save=number)

    def capture_code_context(self) -> None:
        """Observe the project and keep its code context for the next point.

        A project-state save: it also starts the build command in the
        background (never waiting for it) and records its latest result.
        """
        observer = self._runtime.observer
        if observer is None:
            return
        self._view.code_context = observer.snapshot(with_build=True)

    def save_context_snapshot(self, *parts: str) -> None:
        """Write the latest context snapshot, stamping when each of ``parts`` was refreshed.

        Args:
            parts: ``context``, ``conversation``, ``projectState`` (default: ``context``).
        """
        with self._lock:
            self.catch_up()
            now = self._runtime.now()
            try:
                previous = self._runtime.store.load_context_snapshot(self.id)
            except CorruptRecord:
                previous = None  # replaced below by a whole, valid snapshot
            updated = dict(previous.updated) if previous is not None else {}
            for part in parts or ("context",):
                updated[part] = now
            self._runtime.store.save_context_snapshot(context_snapshot(self._view, now, updated))

    def _put_session(self) -> None:
        self._runtime.store.put_session(self._view.record)
        self._registry_written = (registry_facts(self._view.record), self._runtime.now())

    def _refresh_registry(self) -> None:
        # The same reasoning as for the emergency backup: after messages alone the
        # registry entry differs only in its activity stamps (lastActivity,
        # lastSeq, lastSave), which the journal and the point just written hold
        # exactly. They are restamped at most once per context interval.
        written = self._registry_written
        if (
            written is not None
            and written[0] == registry_facts(self._view.record)
            and (self._runtime.now() - written[1]).total_seconds()
            < self._runtime.config.context_interval
        ):
            return
        self._put_session()

    def save_emergency(self) -> None:
        """Refresh the emergency backup (critical facts, kept apart from all else)."""
        backup = self._emergency_backup()
        self._runtime.store.save_emergency(backup)
        self._emergency_written = (critical_facts(self._view), backup.updated)

    def _refresh_emergency(self) -> None:
        # Every change of a critical fact rewrote the backup already (see _append).
        # A recovery point after messages alone changes none of them, so the backup
        # is only refreshed here when its facts differ or it is older than the
        # context interval: agents that save after every turn do not pay two more
        # fsyncs per turn to restamp the same facts.
        written = self._emergency_written
        if (
            written is not None
            and written[0] == critical_facts(self._view)
            and (self._runtime.now() - written[1]).total_seconds()
            < self._runtime.config.context_interval
        ):
            return
        self.save_emergency()

    def _emergency_backup(self) -> EmergencyBackup:
        return emergency_backup(self._view, self._runtime.now())

    # -- lease ----------------------------------------------------------

    def heartbeat(self) -> None:
        """Renew the lease.

        Raises:
            LeaseHeld: If another process took the session over; the handle is then closed.
        """
        with self._lock:
            if self._closed:
                return
            try:
                self._lease = self._runtime.store.renew_lease(
                    self._lease, self._runtime.owner_for(self._lease).request(self._runtime.now())
                )
            except LeaseHeld:
                self._stop(release=False)
                raise

    def attach_autosaver(self, saver: AutoSaver) -> None:
        """Let an auto-saver run for this handle (stopped when the session closes)."""
        self._autosaver = saver

    # -- endings --------------------------------------------------------

    def end(self, *, observe: bool = True) -> None:
        """Complete the session: a final recovery point, status ``completed``.

        Args:
            observe: Capture the project as it is now in the final point (False
                when the service ends a session its page left a while ago).
        """
        self._finish(SessionStatus.COMPLETED, {}, Trigger.END, observe=observe)

    def archive(self) -> None:
        """Archive the session: kept, but never offered for recovery (nothing ran in it)."""
        self._finish(SessionStatus.ARCHIVED, {}, Trigger.END)

    def interrupt(
        self, cause: str, *, observe: bool = True, last_alive: datetime | None = None
    ) -> None:
        """Mark the session ``interrupted`` with ``cause`` and save its final state.

        Args:
            cause: What happened (``signal: SIGTERM``, ``exception: ...``).
            observe: Capture the project as it is now in the final point. False
                when another process marks a session whose owner died earlier:
                the project as it is now is not what the dead owner saw.
            last_alive: When the owner was last known alive, for a death noticed
                later (default: now). The interruption counts from it, while
                the event is stamped when it is written.
        """
        now = self._runtime.now()
        stopped = format_time(now if last_alive is None else min(last_alive, now))
        extra = {"cause": cause, "lastAlive": stopped} if cause else {"lastAlive": stopped}
        self._finish(SessionStatus.INTERRUPTED, extra, Trigger.INTERRUPTION, observe=observe)

    def _finish(
        self,
        status: SessionStatus,
        extra: dict[str, str],
        trigger: Trigger,
        *,
        observe: bool = True,
    ) -> None:
        # Stop the background saver before taking the lock: a save or heartbeat it
        # is making waits for the lock, so joining it while holding the lock would
        # sit out the join's timeout (twice) before the session could end.
        if self._autosaver is not None:
            self._autosaver.stop()
        redactor = self._runtime.redactor
        if redactor is not None and extra.get("cause"):
            # The cause (an exception's message) also goes to the recovery log.
            extra = {**extra, "cause": redactor.text(extra["cause"])}
        with self._lock:
            if self._closed:
                return
            payload: dict[str, Any] = {"status": status.value, **extra}
            cause = extra.get("cause")
            steps: list[Step] = [
                ("the final recovery point", lambda: self.checkpoint(trigger, observe=observe))
            ]
            if cause:
                steps.append(
                    (
                        "the recovery log line",
                        lambda: self._runtime.log_interruption(self._view.record, cause),
                    )
                )
            try:
                self._append([self.draft(EventKind.LIFECYCLE, payload)], None, then=steps)
            finally:
                self._stop(release=True)

    def _stop(self, *, release: bool) -> None:
        self._closed = True
        if self._autosaver is not None:
            self._autosaver.stop()
        interrupts.unwatch(self)
        if release:
            try:
                self._runtime.store.release_lease(self._lease)
            except ContinuityError:
                pass  # the lease expires by itself; the session is already saved

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        cause = interrupts.cause_of(exc)
        if cause is None:
            self.end()
        else:
            self.interrupt(cause)
