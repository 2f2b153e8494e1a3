"""SessionManager: the API every front end calls to start, continue, inspect and recover sessions.

A thin facade: it builds a :class:`~agent_continuity.runtime.Runtime` and
delegates each method to the modules below it (lifecycle, live, restore,
continuing, inspection, runner), none of which imports this one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_continuity import browser_leases, lifecycle
from agent_continuity.config import Config
from agent_continuity.errors import InvalidInput
from agent_continuity.live import LiveSession
from agent_continuity.materialise import LoadedSession
from agent_continuity.model import AgentInfo, Event, SessionRecord, Trigger, utc_now
from agent_continuity.runtime import Runtime
from agent_continuity.storage import Store
from agent_continuity.updates import update_group

if TYPE_CHECKING:
    from agent_continuity.analytics import Analytics
    from agent_continuity.capture.observer import ProjectObserver
    from agent_continuity.recovery import EmergencyResult, RecoveryResult, ResumeTaskResult
    from agent_continuity.restore import Confirm, Progress
    from agent_continuity.runner import RunOutcome
    from agent_continuity.search.catalog import SearchResults
    from agent_continuity.transcripts import ImportReport


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
        self._rt = Runtime.open(
            store,
            project_dir,
            user_id,
            config=config,
            clock=clock,
            observer=observer,
            create_store=create_store,
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

    def now(self) -> datetime:
        """The current time, from the manager's clock."""
        return self._rt.now()

    def close(self) -> None:
        """Close the store."""
        self._rt.close()

    def __enter__(self) -> SessionManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ----------------------------------------------------------

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
        browser: bool = False,
        owner_pid: int | None = None,
    ) -> LiveSession:
        """Create a session and return its live handle.

        Sessions of this store whose owner is gone are marked interrupted first.

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
            browser: A web page owns it (``continuity serve``): its lease lasts
                ``browser_lease_ttl`` and only :meth:`heartbeat` renews it; when
                the heartbeats stop, it is interrupted (``heartbeat-lost``).
            owner_pid: Another process on this host that owns the session (a
                coding agent whose hooks write to it): its pid holds the lease,
                so its death, even by ``kill -9``, is seen as an interruption
                at once. Nothing runs in this process then (no heartbeat, no
                auto-save thread).

        Returns:
            The handle to write through; used as a context manager, leaving the
            block ends the session.

        Raises:
            IncompleteWrite: If the session was created but its first writes
                (task, phase, preferences or emergency backup) failed; the
                message names the session, which is kept.
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
            browser=browser,
            owner_pid=owner_pid,
        )

    def heartbeat(self, session_id: str, *, claim: bool = False, lease: int | None = None) -> int:
        """Renew a web page's lease on its session (see ``start(browser=True)``).

        A session whose lease is held by the command line (restored by
        ``recover``) is taken over by the page, and so is one whose page left
        it less than ``browser_leave_grace`` ago (see :meth:`leave`).

        Args:
            session_id: The session.
            claim: A page opening the session: the lease is taken afresh, so
                that a late :meth:`leave` of an earlier page changes nothing.
            lease: The token the page renewing its lease holds: the leaving
                page's own late heartbeat does not take the session back.

        Returns:
            The lease token the page holds (what it gives :meth:`leave`).

        Raises:
            NoActiveSession: If it is no longer active (its heartbeats stopped
                for longer than ``browser_lease_ttl``: recover it).
            LeaseHeld: If a live process owns it.
        """
        return browser_leases.browser_heartbeat(
            self._rt, session_id, claim=claim, lease=lease
        ).token

    def leave(self, session_id: str, *, lease: int | None = None) -> datetime | None:
        """End a web page's session after ``browser_leave_grace``, unless a page claims it back.

        What a page's unload asks: a reload's new page heartbeats the session
        within the grace and it goes on (no recovery, nothing logged); with no
        claim it is completed by the next look (``detect_interruptions``), as a
        normal close, even after a restart of the service.

        Args:
            session_id: The session.
            lease: The token of the leaving page's lease (from :meth:`heartbeat`);
                if another page has claimed the session since, nothing changes.

        Returns:
            When the session will end unless claimed, or None if no end was
            deferred (not active, already leaving, or claimed by a newer page).

        Raises:
            LeaseHeld: If a live process (not a page) owns the session.
        """
        left = browser_leases.browser_leave(self._rt, session_id, lease=lease)
        return left.expires if left is not None else None

    def attach(self, session_id: str | None = None, *, owner_pid: int | None = None) -> LiveSession:
        """Continue writing to an existing active session from a command.

        The command-line lease is renewed (or taken over when it expired).

        Args:
            session_id: The session; default: the newest active session of this
                project and user.
            owner_pid: Hold the lease for this process instead of the command
                line (see :meth:`start`). Writing goes on even if it has died
                (what it left behind, such as its hooks' spool); the next look
                then finds the session interrupted.

        Returns:
            A handle that writes under the command-line lease.

        Raises:
            NoActiveSession: If no session is given and none is active, or the
                session is not active.
            LeaseHeld: If a live process owns the session.
        """
        return lifecycle.attach(self._rt, session_id, owner_pid=owner_pid)

    def adopt(self, session_id: str) -> LiveSession:
        """Make this process the owner of an active session (``continuity run --session``).

        A command-line session, or one whose owner is gone, is taken over;
        one owned by a live process is not.

        Args:
            session_id: The session.

        Returns:
            A handle owned by this process, with its heartbeat and auto-save running.

        Raises:
            LeaseHeld: If a live process owns it.
            NoActiveSession: If the session is not active.
        """
        return lifecycle.adopt(self._rt, session_id)

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
        then a file) makes one recovery point afterwards.

        Args:
            session_id: The session; default: the newest active one (see :meth:`attach`).
            task: Make this task current.
            phase: Set the project phase.
            step: Set the step being worked on.
            complete: Steps done.
            next_steps: Steps to do next.
            blockers: Blockers found.
            unblock: Blockers resolved.
            decisions: Decisions taken.
            progress: Progress, 0 to 100.
            summary: The conversation summary.
            files: Files changed.
            preferences: Merged into the user's preferences.
            pending: Operations begun and not finished.
            pending_done: Pending operations now finished.

        Returns:
            The session as it is now, and the events recorded.

        Raises:
            InvalidInput: If nothing was given to record, or a value is invalid.
            NoActiveSession: If there is no such active session.
            LeaseHeld: If a live process owns the session.
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

    def save(self, session_id: str | None = None, trigger: str = "user-request") -> str:
        """Make a recovery point of an active session (``continuity save``).

        Args:
            session_id: The session; default: the newest active one.
            trigger: Why: ``user-request``, ``task-completion``,
                ``major-decision``, ``file-modification``, ``error-occurrence``
                or ``auto``.

        Returns:
            The recovery point id.

        Raises:
            InvalidInput: If the trigger is unknown.
            NoActiveSession: If there is no such active session.
        """
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
        """Mark an active session interrupted (``continuity interrupt``).

        Args:
            session_id: The session; None for the newest active one.
            cause: Why it stopped, shown by ``recover``.

        Returns:
            The session, now interrupted.

        Raises:
            NoActiveSession: If there is no such active session.
        """
        session = self.attach(session_id)
        session.interrupt(cause)
        return session.record

    def end(self, session_id: str | None = None) -> SessionRecord:
        """Complete an active session (``continuity end``).

        Args:
            session_id: The session; default: the newest active one.

        Returns:
            The session, now completed.

        Raises:
            NoActiveSession: If there is no such active session.
        """
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

    # -- reading ----------------------------------------------------------

    def get(self, session_id: str) -> SessionRecord:
        """A session's registry entry.

        Args:
            session_id: The session.

        Returns:
            Its registry entry (status, task, last activity...).

        Raises:
            InvalidIdentifier: If the id is malformed.
            SessionNotFound: If there is no such session.
        """
        return lifecycle.get(self._rt, session_id)

    def sessions(
        self, status: str | None = None, user: str | None = None, *, this_project: bool = False
    ) -> list[SessionRecord]:
        """The sessions of the store, oldest first, optionally filtered.

        Args:
            status: Only those with this status (``active``, ``interrupted``...).
            user: Only this user's.
            this_project: Only this project's.

        Returns:
            Their registry entries.
        """
        return lifecycle.sessions(self._rt, status, user, this_project=this_project)

    def events(self, session_id: str) -> list[Event]:
        """The session's journal, in order.

        Args:
            session_id: The session.

        Returns:
            Every event, by sequence number.

        Raises:
            CorruptRecord: If the journal is damaged (``load`` returns what survives).
        """
        return lifecycle.events(self._rt, session_id)

    def load(self, session_id: str, *, whole_journal: bool = False) -> LoadedSession:
        """Materialise a session: newest valid recovery point plus the journal after it.

        Damaged points are skipped (and reported); a damaged journal yields
        what precedes and follows the damage (and reports it).

        Args:
            session_id: The session.
            whole_journal: Replay the whole journal instead of starting from a point.

        Returns:
            The session's state, and what damage was passed over.
        """
        return lifecycle.load(self._rt, session_id, whole_journal=whole_journal)

    def details(self, session_id: str) -> dict[str, Any]:
        """Everything ``continuity show`` prints, as a JSON-ready dict.

        Args:
            session_id: The session.

        Returns:
            The session's state, captured context, recovery points and code context.
        """
        from agent_continuity.inspection import session_details

        return session_details(self._rt, session_id)

    def damaged_sessions(self) -> dict[str, str]:
        """Sessions damaged beyond their index, each with what is wrong and what to do.

        Today: the sessions whose journal is gone (see ``Store.lost_journals``).
        The rest of the store is unaffected; ``continuity verify`` lists the same.

        Returns:
            Session id to what is wrong and what to do.
        """
        return lifecycle.damaged_sessions(self._rt)

    def detect_interruptions(self) -> list[SessionRecord]:
        """Mark active sessions whose owner is gone as ``interrupted`` (``lease-expired``).

        Each stopped when its owner was last known alive (its last event or
        lease renewal), not now. ``start``, ``attach`` and ``recover`` do
        this first; call it to notice deaths without doing anything else.

        Returns:
            The sessions marked now.
        """
        return lifecycle.detect_interruptions(self._rt)

    def verify(self, repair: bool = False) -> dict[str, Any]:
        """Check the store (``continuity verify``).

        Args:
            repair: Repair what can be repaired (indexes, torn tails), then check again.

        Returns:
            A JSON-ready report: what is damaged, what was repaired.
        """
        from agent_continuity.inspection import verify_store

        return verify_store(self._rt, repair=repair)

    def analytics(
        self, *, since: datetime | str | None = None, user: str | None = None
    ) -> Analytics:
        """Session analytics (``continuity analytics``): reads the store, changes nothing.

        Args:
            since: Only what happened from then on: a time, or text such as
                ``2026-12-01`` or ``7d``; None for all time.
            user: Only this user's sessions; None for every user's.

        Returns:
            The figures; ``to_wire()`` is the ``analytics --json`` object.

        Raises:
            InvalidInput: If ``since`` is not a date.
        """
        from agent_continuity.analytics_reading import store_analytics

        return store_analytics(self._rt, since=since, user=user)

    def search(
        self,
        query: str,
        *,
        user: str | None = None,
        limit: int = 20,
        rebuild: bool = False,
    ) -> SearchResults:
        """Search every session's journal (``continuity search``), best first.

        Messages, decisions, tasks, notes, tool calls and their results, steps,
        blockers and errors. The index is derived from the journals and caught
        up with them before each query (see :mod:`agent_continuity.search`).
        An encrypted store's index is kept in memory, never on disk: the first
        search in a process reads every journal.

        Args:
            query: The words to find (all of them, else any); may be empty with ``rebuild``.
            user: Only this user's sessions; None for every user's.
            limit: The most results (1 to 1000).
            rebuild: Build the index again from the journals first.

        Raises:
            InvalidInput: If the query has no word (without ``rebuild``) or the limit is
                out of range.
        """
        from agent_continuity.search.catalog import (
            SearchResults,
            encrypted,
            rebuild_index,
            search_store,
        )

        results = SearchResults(query=query, in_memory=encrypted(self._rt.store))
        if rebuild:
            results.rebuilt = rebuild_index(self._rt.store)
            if not query.strip():
                return results
        results.hits = search_store(self._rt.store, query, user=user, limit=limit)
        return results

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

        An ``auto-resume`` decision restores it (active again, new lease, a
        continuation id); ``new-session`` archives it and starts a new one; on
        ``prompt`` the ``answer`` (or ``confirm(result)``) decides, and with
        neither nothing changes.

        Args:
            session_id: The session to recover; default: the user's most recent
                interrupted session.
            user: Whose most recent interrupted session (default: this manager's user).
            mode: ``auto`` (quick under 24 h, else full), ``quick``, ``full`` or ``emergency``.
            answer: True to resume, False to archive and start anew, None to follow
                the decision.
            confirm: Asks the user when the decision is ``prompt`` and there is no answer.
            progress: Receives the name of each stage (for a progress bar).

        Returns:
            The analysis, the decision and what was done (``outcome``).

        Raises:
            NoActiveSession: If no session is given and none was interrupted.
            InvalidInput: If the mode is unknown.
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

    def recovery_candidate(self, user: str | None = None) -> SessionRecord:
        """The session ``recover`` without a session id would recover; nothing changes.

        Args:
            user: Whose sessions (default: this manager's user).

        Returns:
            The user's most recent interrupted session (one with work in it first).

        Raises:
            NoActiveSession: If the user has no interrupted session.
        """
        from agent_continuity.restore import pick_session

        return pick_session(self._rt, None, user)

    def start_recovered(
        self,
        session_id: str | None = None,
        *,
        session_type: str | None = None,
        owner_pid: int | None = None,
    ) -> RecoveryResult:
        """Start a new session seeded from a recovered one (``start --recover``).

        Args:
            session_id: The session to continue from; default: the user's most
                recent interrupted one.
            session_type: The new session's type; default: the old one's.
            owner_pid: The process that owns the new session (see :meth:`start`);
                default: the command line.

        Returns:
            The recovery; ``new_session_id`` is the new session, the old one is archived.

        Raises:
            SessionStillActive: If the old session is still active.
            CorruptRecord: If nothing of it could be recovered.
        """
        from agent_continuity.continuing import start_recovered

        return start_recovered(self._rt, session_id, session_type=session_type, owner_pid=owner_pid)

    def analyse(self, session_id: str | None = None, mode: str = "auto") -> RecoveryResult:
        """What recovering a session would find, without changing anything.

        Args:
            session_id: The session; default: this project's newest active or
                interrupted session.
            mode: As for :meth:`recover`.

        Returns:
            The analysis ``recover`` would act on.

        Raises:
            NoActiveSession: If no session is given and there is none.
        """
        from agent_continuity.restore import analyse

        return analyse(self._rt, lifecycle.latest(self._rt, session_id), mode)

    def prepare_recovery_prompt(self, session_id: str) -> dict[str, Any] | None:
        """What :class:`~agent_continuity.PromptDraft` needs to print the session's prompt later.

        Args:
            session_id: An active session.

        Returns:
            A JSON object, or None when it cannot be prepared (see
            :func:`agent_continuity.prepared_prompt.prepare_recovery_prompt`).
        """
        from agent_continuity.prepared_prompt import prepare_recovery_prompt

        return prepare_recovery_prompt(self._rt, session_id)

    def resume_task(
        self, task_id: str, session_id: str | None = None, from_step: str | None = None
    ) -> ResumeTaskResult:
        """RESUME_TASK: a task's context, current step, progress and next actions.

        Args:
            task_id: The task.
            session_id: The session to read it from; default: the newest that worked on it.
            from_step: Resume from this step instead of the current one.

        Returns:
            Where the task stands.

        Raises:
            InvalidInput: If ``task_id`` is empty.
            NoActiveSession: If no session worked on the task.
        """
        from agent_continuity.continuing import resume

        return resume(self._rt, task_id, session_id, from_step)

    def emergency(self) -> EmergencyResult:
        """Emergency recovery: critical information from the emergency backups only.

        Returns:
            The critical facts of every session, with the damage found.
        """
        from agent_continuity.continuing import emergency

        return emergency(self._rt)

    def import_transcripts(
        self, agent: str, paths: Sequence[str | os.PathLike[str]], session_id: str | None = None
    ) -> ImportReport:
        """Import a coding agent's transcript files: messages, tool calls and results, with times.

        Importing again adds nothing; a grown file adds only its new lines.

        Args:
            agent: ``claude``, ``codex`` or ``gemini``.
            paths: The ``.jsonl`` files the agent wrote.
            session_id: Import into this session instead of the mapped one.

        Returns:
            What was imported, skipped and found damaged (with line numbers).

        Raises:
            InvalidInput: If the agent is unknown or a path is not a file.
        """
        from agent_continuity.transcripts import import_transcripts

        return import_transcripts(self._rt, agent, [Path(p) for p in paths], session_id)
