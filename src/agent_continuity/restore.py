"""Recovery with its I/O: load what survived, observe the project, run the pure
engine, then carry out the decision (restore, or archive and start anew) and
log it.

The engine (:mod:`agent_continuity.recovery`) decides; this module does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_continuity import lifecycle
from agent_continuity.choosing import most_recent
from agent_continuity.errors import (
    ConfigError,
    ContinuityError,
    CorruptRecord,
    LeaseHeld,
    NoActiveSession,
)
from agent_continuity.live import LiveSession
from agent_continuity.liveness import Owner, owner_gone
from agent_continuity.materialise import newest_valid_point
from agent_continuity.model import (
    CodeContext,
    Damage,
    EmergencyBackup,
    Event,
    EventKind,
    Lease,
    ProjectObservation,
    RecoveryPoint,
    SessionRecord,
    SessionStatus,
    Trigger,
    format_time,
)
from agent_continuity.prediction_reading import gather_evidence
from agent_continuity.recovery import (
    RecoveryResult,
    RecoverySettings,
    SavedState,
    choose_mode,
    recover,
    reference_time,
)
from agent_continuity.replay import SessionView
from agent_continuity.storage import JournalRead

if TYPE_CHECKING:
    from agent_continuity.runtime import Runtime

#: Called with the result when the decision is "prompt" and no answer was given;
#: returns the user's answer (True: resume), or None to leave everything as it is.
Confirm = Callable[[RecoveryResult], bool | None]
#: Called with the name of each stage of a long recovery.
Progress = Callable[[str], None]

STAGES = ("loading recovery point", "reading the journal", "observing the project", "analysing")


def recovery_settings(rt: Runtime) -> RecoverySettings:
    """The engine's settings from configuration, with the custom prompt template read in."""
    values: dict[str, Any] = dict(rt.config.recovery)
    if rt.config.prompt_template:
        path = Path(rt.config.prompt_template)
        path = path if path.is_absolute() else rt.project_root / path
        try:
            values["prompt_template"] = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"prompt template {path} cannot be read ({exc.strerror}); fix prompt-template"
            ) from None
    return RecoverySettings.from_mapping(values, source="configuration")


def pick_session(rt: Runtime, session_id: str | None, user: str | None) -> SessionRecord:
    """The session to recover: the one named, else the user's most recent interrupted one.

    Raises:
        NoActiveSession: If the user has no interrupted session in this project.
    """
    if session_id:
        return lifecycle.get(rt, session_id)
    who = user or rt.user_id
    candidates = [
        r for r in lifecycle.sessions(rt, "interrupted", who, this_project=True)
    ] or lifecycle.sessions(rt, "interrupted", who)
    if not candidates:
        raise NoActiveSession(
            f"no interrupted session of user {who!r} to recover; `continuity list` shows the "
            "sessions, `continuity start` begins a new one"
        )
    # An empty session (a command that never ran) never outranks one with work in it.
    return most_recent(rt.store, candidates, key=lambda r: (reference_time(r), r.id))


def load_saved_state(
    rt: Runtime,
    record: SessionRecord,
    point: RecoveryPoint | None,
    point_damage: list[Damage],
    *,
    whole_journal: bool,
    lease: Lease | None = None,
) -> SavedState:
    """Everything that survived of a session, damage included.

    Args:
        rt: The project's runtime.
        record: The session's registry entry.
        point: Its newest valid recovery point (see :func:`newest_valid_point`).
        point_damage: The newer points that failed verification.
        whole_journal: Read the journal from seq 1 (full recovery).
        lease: The lease this process took over after finding ``point``, if it
            did: the journal is then read as it was before that takeover
            (without the ``lease`` event it appended).
    """
    after = point.seq if point is not None else 0
    # A point may refer to the journal for its recent messages: read from there.
    start = point.replay_from if point is not None else 0
    read = rt.store.read_events(record.id, after_seq=0 if whole_journal else start)
    own = _own_lease_event(read, lease)
    if own is not None:
        read = _before(read, own)
    events = [e for e in read.events if e.seq > after]
    window = [e for e in read.events if start < e.seq <= after]
    emergency: EmergencyBackup | None = None
    emergency_damage: list[Damage] = []
    try:
        emergency = rt.store.load_emergency(record.id)
    except CorruptRecord as exc:
        emergency_damage.append(Damage(location=exc.location, kind="checksum", detail=str(exc)))
    journal_damage = list(read.damage)
    if not journal_damage:
        journal_damage += _journal_cut(
            rt, record, point, read, emergency, own.seq if own is not None else None
        )
    return SavedState(
        record=record,
        point=point,
        events=events,
        window=window,
        full_events=read.events if whole_journal else None,
        journal_damage=journal_damage,
        point_damage=point_damage,
        emergency=emergency,
        emergency_damage=emergency_damage,
        index_damage=rt.store.index_damage(),
    )


def _own_lease_event(read: JournalRead, lease: Lease | None) -> Event | None:
    """The ``lease`` event that taking ``lease`` appended, if the read ends with it.

    Nothing can follow it: only the lease holder appends, and that is us.
    """
    if lease is None or not read.events:
        return None
    last = read.events[-1]
    payload = last.payload
    if (
        last.kind is EventKind.LEASE
        and payload.get("token") == lease.token
        and payload.get("holder") == lease.holder
    ):
        return last
    return None


def _before(read: JournalRead, own: Event) -> JournalRead:
    """``read`` as the journal was before ``own`` was appended to it."""
    events = read.events[:-1]
    # Undamaged, the journal numbers its events 1, 2, 3...: it ended just before ours.
    end = own.seq - 1 if not read.damage else max((e.seq for e in events), default=0)
    return JournalRead(events=events, damage=list(read.damage), end_seq=end)


def _journal_cut(
    rt: Runtime,
    record: SessionRecord,
    point: RecoveryPoint | None,
    read: JournalRead,
    emergency: EmergencyBackup | None,
    own_seq: int | None = None,
) -> list[Damage]:
    """The damage of a journal that ends before an event other records saw.

    A journal cut at a line boundary (an older copy put back) has no damaged
    line to show, but its registry entry, recovery point and emergency backup
    still know how far it went. ``own_seq`` is the ``lease`` event this process
    appended when it took the session over: the journal is judged without it.
    """
    covered = point.seq if point is not None else 0
    end = max(read.last_seq, read.end_seq)
    if end <= covered and not read.end_seq:
        # Nothing after the point: the point's own event must still be there.
        again = rt.store.read_events(record.id, after_seq=max(0, covered - 1)).events
        end = max((e.seq for e in again if own_seq is None or e.seq < own_seq), default=0)
    seen, source = max(
        (record.last_seq, "the registry"),
        (covered, "the recovery point"),
        (emergency.seq if emergency is not None else 0, "the emergency backup"),
    )
    if seen <= end:
        return []
    detail = (
        f"the journal ends at event {end} but {source} saw event {seen}; "
        f"events {end + 1}..{seen} are lost"
    )
    return [Damage(location=f"the journal of {record.id}", kind="truncated", detail=detail)]


def observe_since(
    rt: Runtime, saved_code: CodeContext | None, check_paths: list[str]
) -> ProjectObservation:
    """The project now, relative to the saved code context (nothing, without an observer)."""
    if rt.observer is None:
        return ProjectObservation(observed_at=rt.now(), code=CodeContext(observed_at=rt.now()))
    since = saved_code if saved_code is not None and saved_code.observed_at else None
    return rt.observer.observe(since=since, check_paths=check_paths)


def analyse(
    rt: Runtime,
    record: SessionRecord,
    mode: str = "auto",
    progress: Progress | None = None,
) -> RecoveryResult:
    """Run recovery for one session without changing anything."""
    return _analysed(rt, record, mode, progress)[0]


def _analysed(
    rt: Runtime,
    record: SessionRecord,
    mode: str,
    progress: Progress | None,
    take_lease: Callable[[], Lease] | None = None,
) -> tuple[RecoveryResult, SavedState, Lease | None]:
    """Analyse, after taking the lease with ``take_lease`` if given (returned, held)."""
    step = progress or (lambda _stage: None)
    settings = recovery_settings(rt)
    now = rt.now()
    chosen = choose_mode(reference_time(record), now, settings, mode)
    step(STAGES[0])
    point, point_damage = newest_valid_point(rt.store, record.id)
    active = {*record.context.active_files, *(point.session.context.active_files if point else [])}
    observing = _Observing(rt, point.code_context if point else None, sorted(active))
    lease = None
    try:
        # A point is never changed once written, so it may be found before the
        # lease is taken; the journal is read after, under it.
        if take_lease is not None:
            lease = take_lease()
        step(STAGES[1])
        saved = load_saved_state(
            rt, record, point, point_damage, whole_journal=chosen == "full", lease=lease
        )
        step(STAGES[2])
        observation = observing.result()
        step(STAGES[3])
        evidence = gather_evidence(rt, record)
        result = recover(saved, observation, now, settings, mode, evidence)
    except BaseException:
        observing.wait()
        if lease is not None:
            _give_back(rt, lease)
        raise
    observed = observation.code if rt.observer is not None else None
    return result.attach_observation(observed), saved, lease


class _Observing:
    """Observes the project on a thread of its own while the journal is read.

    Observing is mostly waiting on git, reading is mostly checksums; a
    recovery pays for the longer of the two instead of both.
    """

    def __init__(self, rt: Runtime, code: CodeContext | None, paths: list[str]) -> None:
        self._observation: ProjectObservation | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if rt.observer is None:
            self._observation = observe_since(rt, code, paths)
            return
        self._thread = threading.Thread(
            target=self._run, args=(rt, code, paths), name="continuity-observe", daemon=True
        )
        self._thread.start()

    def _run(self, rt: Runtime, code: CodeContext | None, paths: list[str]) -> None:
        try:
            self._observation = observe_since(rt, code, paths)
        except BaseException as exc:  # handed to the thread that waits for the result
            self._error = exc

    def wait(self) -> None:
        """Wait until the observation is done (or failed)."""
        if self._thread is not None:
            self._thread.join()

    def result(self) -> ProjectObservation:
        """The observation; raises what observing raised."""
        self.wait()
        if self._error is not None:
            raise self._error
        assert self._observation is not None
        return self._observation


def recover_session(
    rt: Runtime,
    session_id: str | None = None,
    *,
    user: str | None = None,
    mode: str = "auto",
    answer: bool | None = None,
    confirm: Confirm | None = None,
    progress: Progress | None = None,
) -> RecoveryResult:
    """RECOVER_SESSION: analyse, decide, act on the decision, log it.

    Without an answer, the analysis changes nothing, and a session it resumes
    is read again under the lease taken then. With one, the session is taken
    over first and analysed under its new lease: no other writer can append
    after that read, so resuming or archiving continues from it directly.

    Args:
        rt: The project's runtime.
        session_id: The session; default: the user's most recent interrupted one.
        user: Whose sessions (default: the runtime's user).
        mode: ``auto``, ``quick``, ``full`` or ``emergency``.
        answer: The user's answer to "resume?" given in advance (``--yes`` / ``--no``).
        confirm: Asks the user when the decision is ``prompt`` and ``answer`` is None.
        progress: Receives the stage names of the work (for a progress bar).
    """
    lifecycle.detect_interruptions(rt)
    record = pick_session(rt, session_id, user)
    still_active = (
        record.status is SessionStatus.ACTIVE
        and owner_gone(rt.store.read_lease(record.id), rt.now()) is None
    )
    # A session whose journal is gone is analysed from its newest valid point and
    # emergency backup, but nothing can be written to it: not taken over.
    journal_lost = record.id in rt.store.lost_journals()
    take_over = answer is not None and not still_active and not journal_lost
    logged_answer = answer
    result, saved, lease = _analysed(
        rt, record, mode, progress, (lambda: _take_lease(rt, record)) if take_over else None
    )
    try:
        if result.status == "failed":
            result.outcome = "none"
        elif still_active:
            result.outcome = "still-active"
            result.warnings.append(
                f"{record.id} is still active and owned by a live writer; nothing was restored"
            )
        elif journal_lost:
            result.outcome = "needs-repair"
            result.warnings.append(
                f"{record.id} was left as it is: its journal is missing, so nothing can be "
                f"written to it; `continuity verify --repair` rebuilds the journal, then "
                f"`continuity recover {record.id}` resumes it (or `continuity start --recover "
                f"{record.id}` continues it in a new session now)"
            )
        else:
            resume = _resolve(result, answer, confirm)
            if answer is None and result.decision == "prompt":
                logged_answer = resume  # asked just now: the log keeps what the user said
            if resume is None:
                result.outcome = "awaiting-answer"
            else:
                taken = _resumed(rt, saved, lease) if lease is not None else None
                lease = None  # the handle has it now: kept by a restore, given back by archive
                if resume:
                    restore(rt, record, result, taken)
                else:
                    result.new_session_id = archive_and_start(rt, record, taken)
                    result.outcome = "new-session"
    finally:
        if lease is not None:
            _give_back(rt, lease)
    log_recovery(rt, record, result, mode, logged_answer)
    return result


def _resolve(result: RecoveryResult, answer: bool | None, confirm: Confirm | None) -> bool | None:
    if answer is not None:
        return answer
    if result.decision == "auto-resume":
        return True
    if result.decision == "new-session":
        return False
    return confirm(result) if confirm is not None else None


def _take_lease(rt: Runtime, record: SessionRecord) -> Lease:
    now = rt.now()
    current = rt.store.read_lease(record.id)
    if (
        current is not None
        and owner_gone(current, now) is None
        and record.status is (SessionStatus.ACTIVE)
    ):
        raise LeaseHeld(f"{record.id} is being written by {current.holder}", current.holder)
    return rt.store.acquire_lease(
        record.id,
        Owner.cli(rt.config.cli_lease_ttl).request(now),
        steal=True,
        expect_token=current.token if current is not None else 0,
    )


def _take_over(rt: Runtime, record: SessionRecord) -> LiveSession:
    lease = _take_lease(rt, record)
    return LiveSession(rt, lifecycle.load(rt, record.id).view, lease, owned_by_process=False)


def _resumed(rt: Runtime, saved: SavedState, lease: Lease) -> LiveSession:
    """A handle on the session as ``saved`` holds it, read under ``lease``.

    The same state :meth:`SessionManager.load` would rebuild (the newest valid
    point and the journal after it), without reading the journal again.
    """
    if saved.point is not None:
        view = SessionView.replay([*saved.window, *saved.events], start=saved.point)
    elif saved.events:
        view = SessionView.replay(saved.events)
    else:
        raise CorruptRecord(
            f"{saved.record.id}: neither a valid recovery point nor a readable journal start; "
            "`continuity emergency` shows what the emergency backups still hold"
        )
    return LiveSession(rt, view, lease, owned_by_process=False)


def _give_back(rt: Runtime, lease: Lease) -> None:
    try:
        rt.store.release_lease(lease)
    except ContinuityError:
        pass  # it expires by itself; nothing was written under it


def restore(
    rt: Runtime,
    record: SessionRecord,
    result: RecoveryResult,
    session: LiveSession | None = None,
) -> None:
    """Make the session active again under a new lease, with its repairs and continuation id.

    Args:
        rt: The project's runtime.
        record: The session's registry entry.
        result: The analysis that decided to resume it.
        session: A handle already holding the new lease, on the state that
            ``result`` analysed; None to take the session over (and read it) now.
    """
    session = session or _take_over(rt, record)
    drafts = [session.draft(d.kind, d.payload) for d in result.repairs]
    drafts.append(
        session.draft(
            EventKind.LIFECYCLE,
            {"status": SessionStatus.ACTIVE.value, "continuationId": result.continuation_id},
        )
    )
    session.append_group(drafts)
    # The project was observed moments ago for this recovery; observing it again
    # (a git status of the whole tree) would only repeat that.
    if result.observed_code is not None:
        session.view.code_context = result.observed_code
    session.checkpoint(Trigger.USER_REQUEST, observe=result.observed_code is None)
    result.outcome = "restored"


def archive(rt: Runtime, record: SessionRecord, session: LiveSession | None = None) -> None:
    """Mark a session archived (its history stays; it will not be offered again).

    ``session``: a handle already holding its lease (see :func:`restore`).
    """
    if record.status is SessionStatus.ARCHIVED:
        if session is not None:
            _give_back(rt, session.lease)
        return
    session = session or _take_over(rt, record)
    session.append_group(
        [session.draft(EventKind.LIFECYCLE, {"status": SessionStatus.ARCHIVED.value})]
    )
    rt.store.release_lease(session.lease)


def archive_and_start(
    rt: Runtime, record: SessionRecord, session: LiveSession | None = None
) -> str:
    """Decline: archive the old session and start a fresh one. Returns the new id."""
    archive(rt, record, session)
    fresh = lifecycle.start(rt, type=record.type, owned_by_process=False, auto_save=False)
    return fresh.id


def log_recovery(
    rt: Runtime,
    record: SessionRecord,
    result: RecoveryResult,
    mode: str,
    answer: bool | None,
) -> None:
    """One line in the recovery log: inputs, score, factors, decision, outcome."""
    rt.store.log_recovery(
        {
            "event": "recovery",
            "at": format_time(rt.now()),
            "sessionId": record.id,
            "userId": record.user_id,
            "requestedMode": mode,
            "mode": result.mode,
            "answer": answer,
            "recoveryPointId": result.recovery_point_id,
            "recoveredSeq": result.recovered_seq,
            "score": result.confidence.score,
            "factors": result.confidence.factors.to_wire(),
            "decision": result.decision,
            "status": result.status,
            "outcome": result.outcome,
            "newSessionId": result.new_session_id,
            "continuationId": result.continuation_id,
            "warnings": len(result.warnings),
        }
    )
