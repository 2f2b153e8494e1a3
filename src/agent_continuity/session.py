"""SessionManager: the public entry point for starting, continuing and inspecting sessions."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_continuity import lifecycle
from agent_continuity.config import Config, find_project_root, load_config, resolve_store_url
from agent_continuity.errors import CorruptRecord, InvalidInput, StoreNotFound
from agent_continuity.ids import validate_session_id
from agent_continuity.live import LiveSession
from agent_continuity.materialise import LoadedSession
from agent_continuity.model import AgentInfo, Event, SessionRecord, Trigger, utc_now
from agent_continuity.runtime import Runtime
from agent_continuity.storage import Store, open_store
from agent_continuity.updates import update_group

if TYPE_CHECKING:
    from agent_continuity.capture.observer import ProjectObserver
    from agent_continuity.recovery import EmergencyResult, RecoveryResult, ResumeTaskResult
    from agent_continuity.restore import Confirm, Progress
    from agent_continuity.runner import RunOutcome

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
        root = find_project_root(Path(project_dir))
        config = config if config is not None else load_config(root)
        opened: Store | StoreNotFound
        if isinstance(store, str) or store is None:
            url = store or resolve_store_url(config, root)
            try:
                opened = open_store(
                    url, durability=config.durability, base_dir=root, create=create_store
                )
            except StoreNotFound as exc:
                # Raised on first use, so that what needs no store (checking a
                # session id's format) still answers first.
                opened = exc
        else:
            opened = store
        self._rt = Runtime(
            opened,
            config=config,
            project_root=root,
            user_id=user_id or config.user,
            clock=clock,
            observer=observer,
        )

    @property
    def store(self) -> Store:
        """The store.

        Raises:
            StoreNotFound: If the manager was made with ``create_store=False``
                and there is no store yet.
        """
        return self._rt.store

    @property
    def config(self) -> Config:
        """The settings."""
        return self._rt.config

    @property
    def project_root(self) -> Path:
        """The project's root folder."""
        return self._rt.project_root

    @property
    def user_id(self) -> str:
        """Whose sessions these are."""
        return self._rt.user_id

    @property
    def observer(self) -> ProjectObserver | None:
        """The project observer (None when observing is off); made on first use."""
        return self._rt.observer

    def close(self) -> None:
        """Close the store."""
        self._rt.close()

    def __enter__(self) -> SessionManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        return lifecycle.start(
            self._rt,
            type=type,
            task=task,
            phase=phase,
            agent=agent,
            preferences=preferences,
            owned_by_process=owned_by_process,
            auto_save=auto_save,
            recovered_from=recovered_from,
        )

    def attach(self, session_id: str | None = None) -> LiveSession:
        """Continue writing to an existing active session from a command.

        Without ``session_id``, the newest active session of this project and
        user. The command-line lease is renewed (or taken over when it expired).

        Raises:
            NoActiveSession: If no session is given and none is active.
            LeaseHeld: If a live process owns the session.
        """
        return lifecycle.attach(self._rt, session_id)

    def adopt(self, session_id: str) -> LiveSession:
        """Make this process the owner of an active session (``continuity run --session``).

        A command-line session, or one whose owner is gone, is taken over;
        one owned by a live process is not.

        Raises:
            LeaseHeld: If a live process owns it.
            NoActiveSession: If the session is not active.
        """
        return lifecycle.adopt(self._rt, session_id)

    # -- reading --------------------------------------------------------

    def get(self, session_id: str) -> SessionRecord:
        """A session's registry entry.

        Raises:
            InvalidIdentifier: If the id is malformed.
            SessionNotFound: If there is no such session.
        """
        return lifecycle.get(self._rt, session_id)

    def sessions(
        self, status: str | None = None, user: str | None = None, *, this_project: bool = False
    ) -> list[SessionRecord]:
        """Sessions, oldest first, optionally filtered."""
        return lifecycle.sessions(self._rt, status, user, this_project=this_project)

    def damaged_sessions(self) -> dict[str, str]:
        """Sessions damaged beyond their index, each with what is wrong and what to do.

        Today: the sessions whose journal is gone (see ``Store.lost_journals``).
        The rest of the store is unaffected; ``continuity verify`` lists the same.
        """
        from agent_continuity.storage.index import missing_journal_detail

        return {sid: missing_journal_detail(sid) for sid in self.store.lost_journals()}

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
        return lifecycle.load(self._rt, session_id, whole_journal=whole_journal)

    # -- liveness -------------------------------------------------------

    def detect_interruptions(self) -> list[SessionRecord]:
        """Mark active sessions whose owner is gone as ``interrupted`` (``lease-expired``).

        Returns:
            The sessions marked now.
        """
        return lifecycle.detect_interruptions(self._rt)

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
            self._rt.draft,
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
            self._rt,
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
        from agent_continuity.continuing import start_recovered

        return start_recovered(self._rt, session_id, session_type=session_type)

    def analyse(self, session_id: str | None = None, mode: str = "auto") -> RecoveryResult:
        """What recovering a session would find, without changing anything.

        Without ``session_id``: this project's newest active or interrupted session.
        """
        from agent_continuity.restore import analyse

        return analyse(self._rt, lifecycle.latest(self._rt, session_id), mode)

    def resume_task(
        self, task_id: str, session_id: str | None = None, from_step: str | None = None
    ) -> ResumeTaskResult:
        """RESUME_TASK: a task's context, current step, progress and next actions."""
        from agent_continuity.continuing import resume

        return resume(self._rt, task_id, session_id, from_step)

    def emergency(self) -> EmergencyResult:
        """Emergency recovery: critical information from the emergency backups only."""
        from agent_continuity.continuing import emergency

        return emergency(self._rt)

    def details(self, session_id: str) -> dict[str, Any]:
        """Everything ``continuity show`` prints, as a JSON-ready dict."""
        from agent_continuity.inspection import session_details

        return session_details(self._rt, session_id)

    def verify(self, repair: bool = False) -> dict[str, Any]:
        """Check the store (``continuity verify``); a JSON-ready report."""
        from agent_continuity.inspection import verify_store

        return verify_store(self._rt, repair=repair)

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

    def run(
        self,
        argv: Sequence[str],
        *,
        session_id: str | None = None,
        notify: Callable[[str], None] = print,
    ) -> RunOutcome:
        """Run a command inside a session this process owns (``continuity run``).

        Args:
            argv: The command and its arguments.
            session_id: Continue this active session instead of starting one.
            notify: Receives the lines meant for the user (stderr in the CLI).

        Returns:
            How the command ended and what became of the session.

        Raises:
            InvalidInput: If ``argv`` is empty.
            CommandNotStarted: If the command cannot be started; no session is
                left behind (a session given with ``session_id`` is marked interrupted).
        """
        from agent_continuity.runner import run_command

        return run_command(self._rt, argv, session_id=session_id, notify=notify)
