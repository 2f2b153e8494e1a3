"""SessionManager: the public entry point for starting, continuing and inspecting sessions."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from agent_continuity.choosing import most_recent
from agent_continuity.config import Config, find_project_root, load_config, resolve_store_url
from agent_continuity.errors import (
    ContinuityError,
    CorruptRecord,
    IncompleteWrite,
    InvalidInput,
    JournalMissing,
    LeaseHeld,
    NoActiveSession,
    StoreNotFound,
)
from agent_continuity.ids import validate_session_id
from agent_continuity.live import LiveSession
from agent_continuity.liveness import CLI_HOLDER, Owner, owner_gone
from agent_continuity.materialise import LoadedSession, load_session
from agent_continuity.model import (
    AgentInfo,
    Event,
    EventDraft,
    EventKind,
    Interruption,
    Lease,
    PersistenceSettings,
    SessionContext,
    SessionRecord,
    SessionStatus,
    Trigger,
    format_time,
    utc_now,
)
from agent_continuity.replay import SessionView
from agent_continuity.session_facts import emergency_backup
from agent_continuity.storage import Store, open_store
from agent_continuity.updates import update_group

if TYPE_CHECKING:
    from agent_continuity.capture.observer import ProjectObserver
    from agent_continuity.recovery import EmergencyResult, RecoveryResult, ResumeTaskResult
    from agent_continuity.restore import Confirm, Progress

#: Environment variable through which `continuity run` lets the agent it runs
#: write to the session it owns: ``SESSION-ID:TOKEN``.
LEASE_ENV = "CONTINUITY_LEASE"


def _started_but(
    record: SessionRecord, exc: ContinuityError, task: str | None, phase: str | None
) -> IncompleteWrite:
    """The error of a start whose session was created but whose next write failed."""
    if isinstance(exc, IncompleteWrite):
        return IncompleteWrite(
            f"session {record.id} created and {exc}",
            kept_seq=exc.kept_seq,
            kept_point=exc.kept_point,
            missing=exc.missing,
            cause=exc.cause,
        )
    what = f"its task {task}" if task else f"its phase {phase}" if phase else "its emergency backup"
    redo = (
        f"`continuity update --session {record.id} --task {task}` records the task"
        if task
        else f"`continuity update --session {record.id} --phase {phase}` records the phase"
        if phase
        else f"`continuity save --session {record.id}` writes the backup"
    )
    return IncompleteWrite(
        f"session {record.id} created (event 1), but {what} was not written: {exc}. The "
        f"session is kept: do not start another; once that is fixed, {redo}",
        kept_seq=1,
        missing=(what,),
        cause=exc,
    )


class SessionManager:
    """Start, continue, inspect and recover the sessions of one project.

    Args:
        store: A store URL (``files:PATH``, ``sqlite:///PATH``, ``memory:``), an
            open :class:`~agent_continuity.storage.Store`, or None for the configured one.
        project_dir: Any folder in the project; the root is the nearest ancestor with ``.git``.
        user_id: Whose sessions these are (default: configuration, then the login name).
        config: Settings; default: loaded from the project's files and environment.
        clock: Returns the current UTC time; injected by tests.
        observer: Observes the project's files and git state; default: a
            :class:`~agent_continuity.capture.observer.ProjectObserver` of the root.
            Pass ``False`` to observe nothing.
        create_store: Create the store if it does not exist yet. Pass False
            when only reading: a missing store then raises
            :class:`~agent_continuity.errors.StoreNotFound` on first use and
            nothing is created.

    Example:
        >>> mgr = SessionManager(store="memory:", project_dir=".", user_id="alice")
        >>> with mgr.start(type="task-execution", task="TASK-6-004") as s:
        ...     seq = s.add_message("user", "add SMS reminders")
    """

    def __init__(
        self,
        store: str | Store | None = None,
        project_dir: str | os.PathLike[str] = ".",
        user_id: str | None = None,
        *,
        config: Config | None = None,
        clock: Callable[[], datetime] = utc_now,
        observer: ProjectObserver | bool | None = None,
        create_store: bool = True,
    ) -> None:
        self.project_root = find_project_root(Path(project_dir))
        self.config = config if config is not None else load_config(self.project_root)
        self.user_id = user_id or self.config.user
        self._clock = clock
        if isinstance(store, str) or store is None:
            url = store or resolve_store_url(self.config, self.project_root)
            try:
                self._store: Store | None = open_store(
                    url,
                    durability=self.config.durability,
                    base_dir=self.project_root,
                    create=create_store,
                )
            except StoreNotFound as exc:
                # Raised on first use, so that what needs no store (checking a
                # session id's format) still answers first.
                self._store, self._no_store = None, exc
        else:
            self._store = store
        self._observer_choice = observer
        self._observer: ProjectObserver | None = None
        self._observer_made = False

    @property
    def store(self) -> Store:
        """The store.

        Raises:
            StoreNotFound: If the manager was made with ``create_store=False``
                and there is no store yet.
        """
        if self._store is None:
            raise self._no_store
        return self._store

    @property
    def observer(self) -> ProjectObserver | None:
        """The project observer (None when observing is off).

        Made on first use: commands that never observe (``list``, ``show``)
        do not import the capture package.
        """
        if not self._observer_made:
            self._observer = self._make_observer(self._observer_choice)
            self._observer_made = True
        return self._observer

    def _make_observer(self, observer: ProjectObserver | bool | None) -> ProjectObserver | None:
        if observer is False:
            return None
        if observer is not None and observer is not True:
            return observer
        from agent_continuity.capture.observer import ProjectObserver

        return ProjectObserver(
            self.project_root,
            ignore=self.observer_ignores(),
            build_command=self.config.build_command or None,
            build_timeout=self.config.build_timeout,
            clock=self._clock,
        )

    def observer_ignores(self) -> list[str]:
        """Project paths that observing and watching skip: the store's own folder or files."""
        ignore = []
        for prefix in ("files:", "sqlite:///"):
            if self.store.url.startswith(prefix):
                path = (self.project_root / self.store.url[len(prefix) :]).resolve()
                folder = path if prefix == "files:" else path.parent
                if folder != self.project_root and folder.is_relative_to(self.project_root):
                    ignore.append(folder.relative_to(self.project_root).as_posix())
                elif prefix == "sqlite:///" and path.is_relative_to(self.project_root):
                    # A database beside the project's files: skip it and SQLite's
                    # companions, or every observation would hash the whole database.
                    rel = path.relative_to(self.project_root).as_posix()
                    ignore += [rel + suffix for suffix in ("", "-wal", "-shm", "-journal")]
        return ignore

    def close(self) -> None:
        """Close the store."""
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> SessionManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- time and ownership ---------------------------------------------

    def now(self) -> datetime:
        """The manager's clock."""
        return self._clock()

    def owner_for(self, session: LiveSession) -> Owner:
        """The owner a handle renews its lease as."""
        if session.lease.holder == CLI_HOLDER:
            return Owner.cli(self.config.cli_lease_ttl)
        return Owner.process(self.config.process_lease_ttl)

    # -- starting and attaching ---------------------------------------

    def start(
        self,
        *,
        type: str = "general",
        task: str | None = None,
        phase: str | None = None,
        agent: AgentInfo | None = None,
        preferences: Mapping[str, Any] | None = None,
        owned_by_process: bool = True,
        auto_save: bool = True,
        recovered_from: str | None = None,
    ) -> LiveSession:
        """Create a session and return its live handle.

        Args:
            type: The session type (``task-execution``, ``general``...).
            task: The current task id, if any.
            phase: The project phase, if any.
            agent: Who the agent is (type, capabilities, specialization).
            preferences: The user's preferences for this session.
            owned_by_process: True (the API default): this process owns the
                session, heartbeats its lease and marks it interrupted if it
                stops without ``end()``. False: a command-line session whose
                lease is renewed by each command and expires when idle.
            auto_save: Run the interval saves in a background thread.
            recovered_from: The session this one continues, if any.
        """
        self.detect_interruptions()
        now = self.now()
        owner = self._owner(owned_by_process)
        draft = SessionRecord(
            id="SESSION-000101-001",
            type=type,
            created=now,
            last_activity=now,
            user_id=self.user_id,
            project_dir=str(self.project_root),
            agent=agent or AgentInfo(),
            context=SessionContext(
                current_task=task, current_phase=phase, working_directory=str(self.project_root)
            ),
            persistence=PersistenceSettings(
                auto_save=auto_save,
                save_interval=f"{self.config.context_interval:g}s",
                backup_count=self.config.backup_count,
            ),
            recovered_from=recovered_from,
        )
        record, lease = self.store.create_session(draft, owner.request(now))
        first = self.store.read_events(record.id).events
        view = SessionView.replay(first)
        session = LiveSession(self, view, lease, owned_by_process=owned_by_process)
        try:
            if task:
                session.set_task(task, phase=phase)
            elif phase:
                session.set_phase(phase)
            else:
                session.save_emergency()
            if preferences:
                session.set_preferences(dict(preferences))
        except ContinuityError as exc:
            session._stop(release=False)  # never handed out; its lease lapses by itself
            raise _started_but(record, exc, task, phase) from exc
        if owned_by_process:
            # The heartbeat runs even without auto-save: a live owner's lease
            # must never expire under it.
            self._start_autosave(session, heartbeat=True, saves=auto_save)
        return session

    def attach(self, session_id: str | None = None) -> LiveSession:
        """Continue writing to an existing active session from a command.

        Without ``session_id``, the newest active session of this project and
        user. The command-line lease is renewed (or taken over when it expired).

        Raises:
            NoActiveSession: If no session is given and none is active.
            LeaseHeld: If a live process owns the session.
        """
        self.detect_interruptions()
        record = self.get(session_id) if session_id else self.newest_active()
        if record.status is not SessionStatus.ACTIVE:
            raise NoActiveSession(
                f"{record.id} is {record.status.value}; `continuity recover {record.id}` "
                "continues it, `continuity start` begins a new one"
            )
        lease = self._cli_lease(record.id)
        view = self.load(record.id).view
        # The journal, not the registry, says whether the session is still going:
        # an end whose registry write failed (a full disk) left the registry behind.
        if view.record.status is not SessionStatus.ACTIVE:
            self.store.release_lease(lease)
            self._refuse_ended(view)
        return LiveSession(self, view, lease, owned_by_process=False)

    def _refuse_ended(self, view: SessionView) -> NoReturn:
        """Raise NoActiveSession for a session the journal ended.

        What the end's own writes missed (a full disk) is mended first: the
        registry entry, and the emergency backup, from the journal.
        """
        status = view.record.status
        if self.get(view.record.id).status is SessionStatus.ACTIVE:
            self.store.put_session(view.record)
        try:
            backup = self.store.load_emergency(view.record.id)
        except CorruptRecord:
            backup = None
        if backup is None or backup.status is not status or backup.seq < view.seq:
            self.store.save_emergency(emergency_backup(view, self.now()))
        raise NoActiveSession(
            f"{view.record.id} is {status.value}; `continuity recover {view.record.id}` "
            "continues it, `continuity start` begins a new one"
        )

    def adopt(self, session_id: str) -> LiveSession:
        """Make this process the owner of an active session (``continuity run --session``).

        A command-line session, or one whose owner is gone, is taken over;
        one owned by a live process is not.

        Raises:
            LeaseHeld: If a live process owns it.
            NoActiveSession: If the session is not active.
        """
        record = self.get(session_id)
        if record.status is not SessionStatus.ACTIVE:
            raise NoActiveSession(
                f"{record.id} is {record.status.value}; `continuity recover {record.id}` "
                "continues it"
            )
        now = self.now()
        current = self.store.read_lease(record.id)
        steal = current is not None and (
            current.holder == CLI_HOLDER or owner_gone(current, now) is not None
        )
        lease = self.store.acquire_lease(
            record.id,
            Owner.process(self.config.process_lease_ttl).request(now),
            steal=steal,
            expect_token=current.token if current is not None else None,
        )
        session = LiveSession(self, self.load(record.id).view, lease, owned_by_process=True)
        self._start_autosave(session, heartbeat=True)
        return session

    def _cli_lease(self, session_id: str) -> Lease:
        now = self.now()
        current = self.store.read_lease(session_id)
        inherited = os.environ.get(LEASE_ENV, "")
        if current is not None and inherited == f"{session_id}:{current.token}":
            return current  # the agent run by `continuity run` writes under its lease
        owner = Owner.cli(self.config.cli_lease_ttl)
        if current is not None and current.holder == CLI_HOLDER and current.expires > now:
            return self.store.renew_lease(current, owner.request(now))
        return self.store.acquire_lease(session_id, owner.request(now))

    def _owner(self, owned_by_process: bool) -> Owner:
        if owned_by_process:
            return Owner.process(self.config.process_lease_ttl)
        return Owner.cli(self.config.cli_lease_ttl)

    def _start_autosave(self, session: LiveSession, *, heartbeat: bool, saves: bool = True) -> None:
        from agent_continuity.autosave import AutoSaver

        saver = AutoSaver(session, self.config, heartbeat=heartbeat, saves=saves)
        session.attach_autosaver(saver)
        saver.start()

    # -- reading --------------------------------------------------------

    def get(self, session_id: str) -> SessionRecord:
        """A session's registry entry.

        Raises:
            InvalidIdentifier: If the id is malformed.
            SessionNotFound: If there is no such session.
        """
        valid = validate_session_id(session_id)  # a malformed id is refused before any lookup
        return self.store.get_session(valid)

    def sessions(
        self, status: str | None = None, user: str | None = None, *, this_project: bool = False
    ) -> list[SessionRecord]:
        """Sessions, oldest first, optionally filtered."""
        records = self.store.list_sessions()
        if status:
            records = [r for r in records if r.status.value == status]
        if user:
            records = [r for r in records if r.user_id == user]
        if this_project:
            records = [r for r in records if r.project_dir == str(self.project_root)]
        return records

    def damaged_sessions(self) -> dict[str, str]:
        """Sessions damaged beyond their index, each with what is wrong and what to do.

        Today: the sessions whose journal is gone (see ``Store.lost_journals``).
        The rest of the store is unaffected; ``continuity verify`` lists the same.
        """
        from agent_continuity.storage.index import missing_journal_detail

        return {sid: missing_journal_detail(sid) for sid in self.store.lost_journals()}

    def newest_active(self) -> SessionRecord:
        """The newest active session of this project and user.

        Raises:
            NoActiveSession: If there is none.
        """
        active = self.sessions("active", self.user_id, this_project=True)
        if not active:
            raise NoActiveSession(
                "no active session for this project and user; run `continuity start` first"
            )
        return active[-1]

    def events(self, session_id: str) -> list[Event]:
        """The session's journal, in order.

        Raises:
            CorruptRecord: If the journal is damaged (``load`` returns what survives).
        """
        read = self.store.read_events(validate_session_id(session_id))
        if read.damage:
            first = read.damage[0]
            raise CorruptRecord(
                f"{first.location}: {first.detail}; run `continuity verify` for details",
                first.location,
            )
        return read.events

    def load(self, session_id: str, *, whole_journal: bool = False) -> LoadedSession:
        """Materialise a session: newest valid recovery point plus the journal after it.

        Damaged points are skipped (and reported); a damaged journal yields
        what precedes and follows the damage (and reports it).
        """
        return load_session(self.store, session_id, whole_journal=whole_journal)

    # -- liveness -------------------------------------------------------

    def detect_interruptions(self) -> list[SessionRecord]:
        """Mark active sessions whose owner is gone as ``interrupted`` (``lease-expired``).

        Returns:
            The sessions marked now.
        """
        now = self.now()
        marked = []
        for record in self.store.list_sessions():
            if record.status is not SessionStatus.ACTIVE:
                continue
            lease = self.store.read_lease(record.id)
            cause = owner_gone(lease, now)
            if cause is None:
                continue
            try:
                found = self._mark_interrupted(record.id, lease, cause)
            except LeaseHeld:
                continue  # another process got there first, or the owner came back
            except JournalMissing:
                # Damage to this one session must not stop every command: only
                # its registry entry says it stopped (see _mark_journal_lost).
                found = self._mark_journal_lost(record, lease, cause)
            if found is not None:
                marked.append(found)
        return marked

    def _mark_interrupted(
        self, session_id: str, lease: Lease | None, cause: str
    ) -> SessionRecord | None:
        now = self.now()
        owner = Owner.process(self.config.process_lease_ttl)
        taken = self.store.acquire_lease(
            session_id,
            owner.request(now),
            steal=True,
            expect_token=lease.token if lease is not None else 0,
        )
        loaded = self.load(session_id)
        if loaded.view.record.status is not SessionStatus.ACTIVE:
            # The journal, read under our lease, has the last word: its owner ended
            # it after we read the registry, or a marker died before updating the
            # registry. Bring the registry up to date; mark nothing twice.
            self.store.put_session(loaded.view.record)
            self.store.release_lease(taken)
            return None
        # The owner was last known alive at its last event or its last lease
        # renewal, whichever came later; not now, when its death is noticed.
        last_alive = loaded.view.record.last_activity
        if lease is not None:
            last_alive = max(last_alive, lease.heartbeat)
        session = LiveSession(self, loaded.view, taken, owned_by_process=False)
        session.interrupt(cause, observe=False, last_alive=min(last_alive, now))
        return session.record

    def _mark_journal_lost(
        self, record: SessionRecord, lease: Lease | None, cause: str
    ) -> SessionRecord:
        """Mark interrupted, in the registry only, an active session whose journal is gone.

        Nothing can be appended to it, but its owner is gone all the same:
        ``recover`` must find it among the interrupted sessions, and commands
        without ``--session`` must not pick it as the active one. It stopped
        when its owner was last known alive.
        """
        stopped = max(lease.heartbeat, record.last_activity) if lease else record.last_activity
        marked = record.model_copy(
            update={
                "status": SessionStatus.INTERRUPTED,
                "interruption": Interruption(cause=f"{cause} (journal missing)", at=stopped),
            }
        )
        self.store.put_session(marked)
        self.log_interruption(marked, cause)
        return marked

    def log_interruption(self, record: SessionRecord, cause: str) -> None:
        """Write one line to the recovery log about an interruption."""
        self.store.log_recovery(
            {
                "event": "interruption",
                "at": format_time(self.now()),
                "sessionId": record.id,
                "userId": record.user_id,
                "cause": cause,
                "lastAlive": format_time(record.interruption.at) if record.interruption else None,
                "lastSeq": record.last_seq,
            }
        )

    # -- helpers for front ends ---------------------------------------

    def draft(self, kind: EventKind, payload: dict[str, Any]) -> EventDraft:
        """An event stamped with this manager's clock."""
        return EventDraft(kind=kind, at=self.now(), payload=payload)

    def update(
        self,
        session_id: str | None = None,
        *,
        task: str | None = None,
        phase: str | None = None,
        step: str | None = None,
        complete: Sequence[str] = (),
        next_steps: Sequence[str] = (),
        blockers: Sequence[str] = (),
        unblock: Sequence[str] = (),
        decisions: Sequence[str] = (),
        progress: int | None = None,
        summary: str | None = None,
        files: Sequence[str] = (),
        preferences: Mapping[str, Any] | None = None,
        pending: Sequence[str] = (),
        pending_done: Sequence[str] = (),
    ) -> tuple[SessionRecord, list[Event]]:
        """Record several changes to an active session as one atomic group.

        The strongest trigger among them (task completion, then a decision,
        then a file) makes one recovery point afterwards. ``preferences`` are
        merged into the user's; ``pending`` declares operations begun and not
        finished, ``pending_done`` those finished.

        Raises:
            InvalidInput: If nothing was given to record.
        """
        session = self.attach(session_id)
        drafts, trigger = update_group(
            self.draft,
            task=task,
            phase=phase,
            step=step,
            complete=complete,
            next_steps=next_steps,
            blockers=blockers,
            unblock=unblock,
            decisions=decisions,
            progress=progress,
            summary=summary,
            files=files,
            preferences=preferences,
            pending=pending,
            pending_done=pending_done,
        )
        events = session.append_group(drafts, trigger)
        return session.record, events

    # -- recovery ---------------------------------------------------------

    def recover(
        self,
        session_id: str | None = None,
        *,
        user: str | None = None,
        mode: str = "auto",
        answer: bool | None = None,
        confirm: Confirm | None = None,
        progress: Progress | None = None,
    ) -> RecoveryResult:
        """Recover a session (RECOVER_SESSION); the same object as ``recover --json``.

        Without ``session_id``, the user's most recent interrupted session. An
        ``auto-resume`` decision restores it (active again, new lease, a
        continuation id); ``new-session`` archives it and starts a new one; on
        ``prompt`` the ``answer`` (or ``confirm(result)``) decides, and with
        neither nothing changes.

        Args:
            session_id: The session to recover.
            user: Whose most recent interrupted session (default: this manager's user).
            mode: ``auto`` (quick under 24 h, else full), ``quick``, ``full`` or ``emergency``.
            answer: True to resume, False to archive and start anew, None to follow
                the decision.
            confirm: Asks the user when the decision is ``prompt`` and there is no answer.
            progress: Receives the name of each stage (for a progress bar).
        """
        from agent_continuity.restore import recover_session

        return recover_session(
            self,
            session_id,
            user=user,
            mode=mode,
            answer=answer,
            confirm=confirm,
            progress=progress,
        )

    def start_recovered(
        self, session_id: str | None = None, *, session_type: str | None = None
    ) -> RecoveryResult:
        """Start a new session seeded from a recovered one (``start --recover``).

        ``result.new_session_id`` is the new session; the old one is archived.
        """
        from agent_continuity.restore import start_recovered

        return start_recovered(self, session_id, session_type=session_type)

    def analyse(self, session_id: str | None = None, mode: str = "auto") -> RecoveryResult:
        """What recovering a session would find, without changing anything.

        Without ``session_id``: this project's newest active or interrupted session.
        """
        from agent_continuity.restore import analyse

        return analyse(self, self._latest(session_id), mode)

    def resume_task(
        self, task_id: str, session_id: str | None = None, from_step: str | None = None
    ) -> ResumeTaskResult:
        """RESUME_TASK: a task's context, current step, progress and next actions."""
        from agent_continuity.restore import resume

        return resume(self, task_id, session_id, from_step)

    def emergency(self) -> EmergencyResult:
        """Emergency recovery: critical information from the emergency backups only."""
        from agent_continuity.restore import emergency

        return emergency(self)

    def _latest(self, session_id: str | None) -> SessionRecord:
        if session_id:
            return self.get(session_id)
        self.detect_interruptions()
        mine = [
            r
            for r in self.sessions(user=self.user_id, this_project=True)
            if r.status in (SessionStatus.ACTIVE, SessionStatus.INTERRUPTED)
        ]
        if not mine:
            raise NoActiveSession(
                "no active or interrupted session for this project and user; "
                "give a session id (`continuity list` shows them)"
            )
        return most_recent(self.store, mine, key=lambda r: (r.last_activity, r.id))

    def details(self, session_id: str) -> dict[str, Any]:
        """Everything ``continuity show`` prints, as a JSON-ready dict."""
        from agent_continuity.inspection import session_details

        return session_details(self, session_id)

    def verify(self, repair: bool = False) -> dict[str, Any]:
        """Check the store (``continuity verify``); a JSON-ready report."""
        from agent_continuity.inspection import verify_store

        return verify_store(self, repair=repair)

    def save(self, session_id: str | None = None, trigger: str = "user-request") -> str:
        """Make a recovery point of an active session (``continuity save``)."""
        try:
            chosen = Trigger(trigger)
        except ValueError:
            known = ", ".join(
                t.value for t in Trigger if t not in (Trigger.INTERRUPTION, Trigger.END)
            )
            raise InvalidInput(f"unknown trigger {trigger!r}; use one of {known}") from None
        session = self.attach(session_id)
        return session.checkpoint(chosen)

    def interrupt(self, session_id: str | None, cause: str) -> SessionRecord:
        """Mark an active session interrupted (``continuity interrupt``)."""
        session = self.attach(session_id)
        session.interrupt(cause)
        return session.record

    def end(self, session_id: str | None = None) -> SessionRecord:
        """Complete an active session (``continuity end``)."""
        session = self.attach(session_id)
        session.end()
        return session.record
