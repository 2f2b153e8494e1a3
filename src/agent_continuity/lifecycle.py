"""A session's life, as functions of a :class:`~agent_continuity.runtime.Runtime`.

Starting, attaching to and adopting sessions, finding them, and noticing
those whose owner is gone. :class:`~agent_continuity.session.SessionManager`
delegates here, and so do recovery (:mod:`~agent_continuity.restore`) and
``continuity run`` (:mod:`~agent_continuity.runner`), which must not call
back into the manager.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, NoReturn

from agent_continuity.choosing import most_recent
from agent_continuity.errors import (
    ContinuityError,
    CorruptRecord,
    IncompleteWrite,
    JournalMissing,
    LeaseHeld,
    NoActiveSession,
)
from agent_continuity.ids import validate_session_id
from agent_continuity.live import LiveSession
from agent_continuity.liveness import (
    BROWSER_HOLDERS,
    CLI_HOLDER,
    PAGE_LEFT,
    Owner,
    owner_gone,
)
from agent_continuity.materialise import LoadedSession, load_session
from agent_continuity.model import (
    AgentInfo,
    Event,
    Interruption,
    Lease,
    PersistenceSettings,
    SessionContext,
    SessionRecord,
    SessionStatus,
)
from agent_continuity.replay import SessionView
from agent_continuity.runtime import Runtime
from agent_continuity.session_facts import emergency_backup

#: How long a lease held for another process (a coding agent, see
#: :meth:`Owner.agent`) lasts without a write. Its holder's death is seen at
#: once on this host, so this only bounds how long a session of an agent on
#: another host (or whose pid was reused) can look alive.
AGENT_LEASE_TTL = 12 * 3600.0

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


def start(
    rt: Runtime,
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

    The arguments are those of
    :meth:`~agent_continuity.session.SessionManager.start`, which documents them.
    """
    if browser:
        owned_by_process = False  # the page's heartbeats keep it, not a thread here
    detect_interruptions(rt)
    if rt.redactor is not None:
        # The record holds the task and phase as given, not only their events.
        task = rt.redactor.text(task) if task else task
        phase = rt.redactor.text(phase) if phase else phase
    now = rt.now()
    if browser:
        owner = Owner.browser(rt.config.browser_lease_ttl)
    elif owner_pid is not None:
        owned_by_process = auto_save = False  # the agent's hooks write; nothing runs here
        owner = Owner.agent(owner_pid, max(AGENT_LEASE_TTL, rt.config.cli_lease_ttl))
    else:
        owner = rt.owner(owned_by_process)
    draft = SessionRecord(
        id="SESSION-000101-001",
        type=type,
        created=now,
        last_activity=now,
        user_id=rt.user_id,
        project_dir=str(rt.project_root),
        agent=agent or AgentInfo(),
        context=SessionContext(
            current_task=task, current_phase=phase, working_directory=str(rt.project_root)
        ),
        persistence=PersistenceSettings(
            auto_save=auto_save,
            save_interval=f"{rt.config.context_interval:g}s",
            backup_count=rt.config.backup_count,
        ),
        recovered_from=recovered_from,
    )
    record, lease = rt.store.create_session(draft, owner.request(now))
    first = rt.store.read_events(record.id).events
    view = SessionView.replay(first)
    session = LiveSession(rt, view, lease, owned_by_process=owned_by_process)
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
        _start_autosave(rt, session, heartbeat=True, saves=auto_save)
    return session


def attach(
    rt: Runtime, session_id: str | None = None, *, owner_pid: int | None = None
) -> LiveSession:
    """Continue writing to an existing active session from a command.

    Without ``session_id``, the newest active session of this project and
    user. The command-line lease is renewed (or taken over when it expired).
    With ``owner_pid``, the lease is held for that process instead (see
    :meth:`Owner.agent`): renewed if it already holds it, taken from the
    command line or a dead owner otherwise. The session is written even if
    that process has died meanwhile (what its hooks spooled before it died),
    and found interrupted by the next look.

    Raises:
        NoActiveSession: If no session is given and none is active.
        LeaseHeld: If a live process owns the session.
    """
    held: Lease | None = None
    if owner_pid is not None and session_id:
        held = _hold_for(rt, validate_session_id(session_id), owner_pid)
    # A session written for its agent is spared: the agent may have died
    # while this process writes what it left, and the next look marks it.
    detect_interruptions(rt, spare=held.session_id if held else None)
    record = get(rt, session_id) if session_id else newest_active(rt)
    if record.status is not SessionStatus.ACTIVE:
        raise NoActiveSession(
            f"{record.id} is {record.status.value}; `continuity recover {record.id}` "
            "continues it, `continuity start` begins a new one"
        )
    if held is not None:
        lease = held
    elif owner_pid is not None:
        lease = _hold_for(rt, record.id, owner_pid)
    else:
        lease = _cli_lease(rt, record.id)
    view = load(rt, record.id).view
    # The journal, not the registry, says whether the session is still going:
    # an end whose registry write failed (a full disk) left the registry behind.
    if view.record.status is not SessionStatus.ACTIVE:
        if lease.holder not in BROWSER_HOLDERS:
            rt.store.release_lease(lease)
        _refuse_ended(rt, view)
    session = LiveSession(rt, view, lease, owned_by_process=False)
    if lease.holder in BROWSER_HOLDERS:
        # Every request of the page writes under its one lease (one handle per
        # request, several at once): each handle folds in what the others
        # appended, so that its points and backups never hide their events.
        session.share_lease()
    return session


def _refuse_ended(rt: Runtime, view: SessionView) -> NoReturn:
    """Raise NoActiveSession for a session the journal ended.

    What the end's own writes missed (a full disk) is mended first: the
    registry entry, and the emergency backup, from the journal.
    """
    status = view.record.status
    if get(rt, view.record.id).status is SessionStatus.ACTIVE:
        rt.store.put_session(view.record)
    try:
        backup = rt.store.load_emergency(view.record.id)
    except CorruptRecord:
        backup = None
    if backup is None or backup.status is not status or backup.seq < view.seq:
        rt.store.save_emergency(emergency_backup(view, rt.now()))
    raise NoActiveSession(
        f"{view.record.id} is {status.value}; `continuity recover {view.record.id}` "
        "continues it, `continuity start` begins a new one"
    )


def adopt(rt: Runtime, session_id: str) -> LiveSession:
    """Make this process the owner of an active session (``continuity run --session``).

    A command-line session, or one whose owner is gone, is taken over;
    one owned by a live process is not.

    Raises:
        LeaseHeld: If a live process owns it.
        NoActiveSession: If the session is not active.
    """
    record = get(rt, session_id)
    if record.status is not SessionStatus.ACTIVE:
        raise NoActiveSession(
            f"{record.id} is {record.status.value}; `continuity recover {record.id}` continues it"
        )
    now = rt.now()
    current = rt.store.read_lease(record.id)
    steal = current is not None and (
        current.holder == CLI_HOLDER or owner_gone(current, now) is not None
    )
    lease = rt.store.acquire_lease(
        record.id,
        Owner.process(rt.config.process_lease_ttl).request(now),
        steal=steal,
        expect_token=current.token if current is not None else None,
    )
    session = LiveSession(rt, load(rt, record.id).view, lease, owned_by_process=True)
    _start_autosave(rt, session, heartbeat=True)
    return session


def _cli_lease(rt: Runtime, session_id: str) -> Lease:
    now = rt.now()
    current = rt.store.read_lease(session_id)
    inherited = os.environ.get(LEASE_ENV, "")
    if current is not None and inherited == f"{session_id}:{current.token}":
        return current  # the agent run by `continuity run` writes under its lease
    if current is not None and current.holder in BROWSER_HOLDERS and current.expires > now:
        # A web page's session (`continuity serve`): written under the page's
        # lease, which only its heartbeats renew, so a write never hides that
        # the page is gone.
        return current
    owner = Owner.cli(rt.config.cli_lease_ttl)
    if current is not None and current.holder == CLI_HOLDER and current.expires > now:
        return rt.store.renew_lease(current, owner.request(now))
    return rt.store.acquire_lease(session_id, owner.request(now))


def _hold_for(rt: Runtime, session_id: str, pid: int) -> Lease:
    """The lease of an active session, held (or renewed) for process ``pid``."""
    now = rt.now()
    owner = Owner.agent(pid, max(AGENT_LEASE_TTL, rt.config.cli_lease_ttl))
    current = rt.store.read_lease(session_id)
    if current is not None and current.holder == owner.holder:
        return rt.store.renew_lease(current, owner.request(now))
    steal = current is not None and (
        current.holder == CLI_HOLDER or owner_gone(current, now) is not None
    )
    return rt.store.acquire_lease(
        session_id,
        owner.request(now),
        steal=steal,
        expect_token=current.token if current is not None else None,
    )


def _start_autosave(
    rt: Runtime, session: LiveSession, *, heartbeat: bool, saves: bool = True
) -> None:
    from agent_continuity.autosave import AutoSaver

    saver = AutoSaver(session, rt.config, heartbeat=heartbeat, saves=saves)
    session.attach_autosaver(saver)
    saver.start()


def get(rt: Runtime, session_id: str) -> SessionRecord:
    """A session's registry entry.

    Raises:
        InvalidIdentifier: If the id is malformed.
        SessionNotFound: If there is no such session.
    """
    valid = validate_session_id(session_id)  # a malformed id is refused before any lookup
    return rt.store.get_session(valid)


def sessions(
    rt: Runtime, status: str | None = None, user: str | None = None, *, this_project: bool = False
) -> list[SessionRecord]:
    """Sessions, oldest first, optionally filtered."""
    records = rt.store.list_sessions()
    if status:
        records = [r for r in records if r.status.value == status]
    if user:
        records = [r for r in records if r.user_id == user]
    if this_project:
        records = [r for r in records if r.project_dir == str(rt.project_root)]
    return records


def newest_active(rt: Runtime) -> SessionRecord:
    """The newest active session of this project and user.

    Raises:
        NoActiveSession: If there is none.
    """
    active = sessions(rt, "active", rt.user_id, this_project=True)
    if not active:
        raise NoActiveSession(
            "no active session for this project and user; run `continuity start` first"
        )
    return active[-1]


def load(rt: Runtime, session_id: str, *, whole_journal: bool = False) -> LoadedSession:
    """Materialise a session: newest valid recovery point plus the journal after it.

    Damaged points are skipped (and reported); a damaged journal yields
    what precedes and follows the damage (and reports it).
    """
    return load_session(rt.store, session_id, whole_journal=whole_journal)


def events(rt: Runtime, session_id: str) -> list[Event]:
    """The session's journal, in order.

    Raises:
        CorruptRecord: If the journal is damaged (``load`` returns what survives).
    """
    read = rt.store.read_events(validate_session_id(session_id))
    if read.damage:
        first = read.damage[0]
        raise CorruptRecord(
            f"{first.location}: {first.detail}; run `continuity verify` for details",
            first.location,
        )
    return read.events


def damaged_sessions(rt: Runtime) -> dict[str, str]:
    """Sessions whose journal is gone, each with what is wrong and what to do."""
    from agent_continuity.storage.index import missing_journal_detail

    return {sid: missing_journal_detail(sid) for sid in rt.store.lost_journals()}


def detect_interruptions(rt: Runtime, spare: str | None = None) -> list[SessionRecord]:
    """Mark active sessions whose owner is gone as ``interrupted`` (``lease-expired``).

    Args:
        rt: The runtime.
        spare: A session not to mark (the caller writes to it for its owner).

    Returns:
        The sessions marked now.
    """
    now = rt.now()
    marked = []
    for record in rt.store.list_sessions():
        if record.status is not SessionStatus.ACTIVE or record.id == spare:
            continue
        lease = rt.store.read_lease(record.id)
        cause = owner_gone(lease, now)
        if cause is None:
            continue
        try:
            if cause == PAGE_LEFT:
                # Its page left normally and no page claimed it back: a close.
                _end_left(rt, record.id, lease)
                continue
            found = _mark_interrupted(rt, record.id, lease, cause)
        except LeaseHeld:
            continue  # another process got there first, or the owner came back
        except JournalMissing:
            # Damage to this one session must not stop every command: only
            # its registry entry says it stopped (see _mark_journal_lost).
            found = _mark_journal_lost(rt, record, lease, cause)
        if found is not None:
            marked.append(found)
    return marked


def _mark_interrupted(
    rt: Runtime, session_id: str, lease: Lease | None, cause: str
) -> SessionRecord | None:
    now = rt.now()
    owner = Owner.process(rt.config.process_lease_ttl)
    taken = rt.store.acquire_lease(
        session_id,
        owner.request(now),
        steal=True,
        expect_token=lease.token if lease is not None else 0,
    )
    loaded = load(rt, session_id)
    if loaded.view.record.status is not SessionStatus.ACTIVE:
        # The journal, read under our lease, has the last word: its owner ended
        # it after we read the registry, or a marker died before updating the
        # registry. Bring the registry up to date; mark nothing twice.
        rt.store.put_session(loaded.view.record)
        rt.store.release_lease(taken)
        return None
    # The owner was last known alive at its last event or its last lease
    # renewal, whichever came later; not now, when its death is noticed.
    last_alive = loaded.view.record.last_activity
    if lease is not None:
        last_alive = max(last_alive, lease.heartbeat)
    session = LiveSession(rt, loaded.view, taken, owned_by_process=False)
    session.interrupt(cause, observe=False, last_alive=min(last_alive, now))
    return session.record


def _end_left(rt: Runtime, session_id: str, lease: Lease | None) -> SessionRecord | None:
    """Complete a session whose page left (see :func:`browser_leave`) and was not claimed back.

    Raises:
        LeaseHeld: If a page claimed it back, or another process ended it, first.
    """
    taken = rt.store.acquire_lease(
        session_id,
        Owner.process(rt.config.process_lease_ttl).request(rt.now()),
        steal=True,
        expect_token=lease.token if lease is not None else 0,
    )
    loaded = load(rt, session_id)
    if loaded.view.record.status is not SessionStatus.ACTIVE:
        rt.store.put_session(loaded.view.record)  # the journal has the last word
        rt.store.release_lease(taken)
        return None
    session = LiveSession(rt, loaded.view, taken, owned_by_process=False)
    session.end(observe=False)  # the project now is not what the page's user saw
    return session.record


def _mark_journal_lost(
    rt: Runtime, record: SessionRecord, lease: Lease | None, cause: str
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
    rt.store.put_session(marked)
    rt.log_interruption(marked, cause)
    return marked


def latest(rt: Runtime, session_id: str | None) -> SessionRecord:
    """The session given, else this project's and user's newest active or interrupted one.

    Raises:
        NoActiveSession: If no session is given and there is none.
    """
    if session_id:
        return get(rt, session_id)
    detect_interruptions(rt)
    mine = [
        r
        for r in sessions(rt, user=rt.user_id, this_project=True)
        if r.status in (SessionStatus.ACTIVE, SessionStatus.INTERRUPTED)
    ]
    if not mine:
        raise NoActiveSession(
            "no active or interrupted session for this project and user; "
            "give a session id (`continuity list` shows them)"
        )
    return most_recent(rt.store, mine, key=lambda r: (r.last_activity, r.id))
