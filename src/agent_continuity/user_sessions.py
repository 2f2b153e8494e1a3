"""One user's view of the sessions: what ``continuity serve`` answers each request through.

Every method that takes a session id first checks that the session is this
user's; another user's session raises :class:`~agent_continuity.errors.SessionNotFound`
with exactly the message a missing one gets, so nobody can tell the two apart
and a bug in a front end (a route that forgets a check) cannot leak a session.
Nothing here takes a user argument: the user is fixed when the view is made.

Each reply is the JSON-ready object of the matching command (``show --json``,
``update --json``, ``recover --json``...).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, TypeVar

from agent_continuity import replies
from agent_continuity.errors import InvalidInput, LeaseHeld, NoActiveSession, SessionNotFound
from agent_continuity.ids import validate_session_id
from agent_continuity.model import (
    Event,
    EventKind,
    SessionRecord,
    SessionStatus,
    TaskStatus,
    Trigger,
    format_time,
)
from agent_continuity.updates import update_group

if TYPE_CHECKING:
    from agent_continuity.live import LiveSession
    from agent_continuity.session import SessionManager

T = TypeVar("T")

#: Open handles kept for writing (one per active session written through this view).
MAX_HANDLES = 1024

#: The ``update`` fields (the keyword arguments of SessionManager.update).
UPDATE_FIELDS = (
    "task",
    "phase",
    "step",
    "complete",
    "next_steps",
    "blockers",
    "unblock",
    "decisions",
    "progress",
    "summary",
    "files",
    "preferences",
    "pending",
    "pending_done",
)


def _task_payload(task: Mapping[str, Any]) -> dict[str, Any]:
    """The ``task`` event of ``{"id", "title"?, "status"?}``, checked (none becomes current).

    Raises:
        InvalidInput: If the id is missing or empty, or a field is not text or unknown.
    """
    if not isinstance(task, Mapping):
        raise InvalidInput("a task is an object {id, title?, status?}")
    unknown = set(task) - {"id", "title", "status"}
    if unknown:
        raise InvalidInput(f"unknown task fields: {', '.join(sorted(map(str, unknown)))}")
    task_id, title, status = task.get("id"), task.get("title"), task.get("status")
    if not isinstance(task_id, str) or not task_id.strip():
        raise InvalidInput("a task needs an id: non-empty text")
    payload: dict[str, Any] = {"id": task_id, "current": False}
    if title is not None:
        if not isinstance(title, str):
            raise InvalidInput("a task's title must be text")
        payload["title"] = title
    if status is not None:
        known = [s.value for s in TaskStatus]
        if status not in known:
            raise InvalidInput(f"task status must be one of {', '.join(known)}, not {status!r}")
        payload["status"] = status
    return payload


def _check_token(lease: object) -> None:
    if lease is not None and (isinstance(lease, bool) or not isinstance(lease, int)):
        raise InvalidInput("lease must be a whole number (the token of the page's lease)")


def _not_found(session_id: str) -> SessionNotFound:
    # One message for "missing" and "someone else's": the two must not differ.
    return SessionNotFound(f"no session {session_id}; list your sessions to find its id")


class UserSessions:
    """The sessions of one user, and nothing else.

    Args:
        manager: A manager whose ``user_id`` is the user. Its store may hold
            other users' sessions; this view never shows or changes them.

    Example:
        >>> mine = UserSessions(SessionManager(store="memory:", user_id="alice"))  # doctest: +SKIP
        >>> sid = mine.start()["id"]  # doctest: +SKIP
    """

    def __init__(self, manager: SessionManager) -> None:
        self._mgr = manager
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._handles: dict[str, LiveSession] = {}

    @property
    def user(self) -> str:
        """Whose sessions these are."""
        return self._mgr.user_id

    def _own(self, session_id: str) -> SessionRecord:
        """The user's session, or SessionNotFound (also for another user's)."""
        if not isinstance(session_id, str):
            raise InvalidInput("a session id must be text, SESSION-YYMMDD-NNN")
        valid = validate_session_id(session_id)
        try:
            record = self._mgr.get(valid)
        except SessionNotFound:
            raise _not_found(valid) from None
        if record.user_id != self.user:
            raise _not_found(valid)
        return record

    @contextmanager
    def _writing(self, session_id: str) -> Iterator[None]:
        # One write at a time per session: each request loads the session, appends
        # and writes its registry entry from what it loaded. In this process a
        # lock; across processes (``serve --workers N``) the store's lock of the
        # session where it has one (PostgreSQL), or an older view's registry
        # entry could land after a newer one's.
        with self._locks_guard:
            lock = self._locks.setdefault(session_id, threading.Lock())
        shared = getattr(self._mgr.store, "session_lock", None)
        with lock, shared(session_id) if shared is not None else nullcontext():
            yield

    def _live(self, session_id: str) -> LiveSession:
        """A handle to write through, kept between requests (call with the write lock held).

        Attaching loads the session (its newest point and the journal after
        it), which grows with the conversation; a kept handle appends at once.
        It is used only while the session's lease is the one it holds and has
        not run out; otherwise it is dropped and the session attached afresh,
        which notices a lost lease (heartbeat-lost) and refuses what ended.
        """
        handle = self._handles.get(session_id)
        if handle is not None:
            lease = self._mgr.store.read_lease(session_id)
            if (
                handle.closed
                or lease is None
                or lease.token != handle.lease.token
                or lease.expires <= self._mgr.now()
            ):
                handle = None
        if handle is None:
            if len(self._handles) >= MAX_HANDLES:
                self._handles.clear()
            self._handles.pop(session_id, None)
            handle = self._handles[session_id] = self._mgr.attach(session_id)
        return handle

    # -- reading ----------------------------------------------------------

    def sessions(self, status: str | None = None) -> dict[str, Any]:
        """The user's sessions, oldest first (``list --json`` for this user).

        Args:
            status: Only those with this status.
        """
        if status is not None and status not in {s.value for s in SessionStatus}:
            known = ", ".join(s.value for s in SessionStatus)
            raise InvalidInput(f"status must be one of {known}, not {status!r}")
        return replies.sessions(self._mgr, status, self.user)[0]

    def details(self, session_id: str) -> dict[str, Any]:
        """``show --json`` of one of the user's sessions, plus ``"conversation"``.

        ``conversation`` is every message in order, ``{"seq", "role", "text",
        "at"}``: what a page shows when it reopens the session.
        """
        record = self._own(session_id)
        data = self._mgr.details(record.id)
        data["conversation"] = self.conversation(record.id)
        return data

    def conversation(self, session_id: str) -> list[dict[str, Any]]:
        """The session's messages, in order: ``[{"seq", "role", "text", "at"}]``."""
        record = self._own(session_id)
        # The intact events: a damaged record is left out (``show`` reports it).
        events = self._mgr.store.read_events(record.id).events
        messages = []
        for event in events:
            if event.kind is EventKind.MESSAGE and not event.payload.get("partial"):
                messages.append(
                    {
                        "seq": event.seq,
                        "role": event.payload.get("role"),
                        "text": event.payload.get("text"),
                        "at": event.to_wire().get("at"),
                    }
                )
        return messages

    def analytics(self) -> dict[str, Any]:
        """``analytics --json`` of the user's sessions only."""
        return self._mgr.analytics(user=self.user).to_wire()

    def search(self, query: str, limit: int = 20) -> dict[str, Any]:
        """``search --json`` over the user's sessions only, best first.

        The index is asked for this user's events; each hit's session is then
        checked against the registry too, so a hit whose session is not this
        user's (an index bug, a session handed to another user) is never returned.

        Args:
            query: The words to find (all of them, else any).
            limit: The most results (1 to 1000).

        Returns:
            ``{"query", "results": [{"sessionId", "seq", "kind", "snippet", "score"}]}``.

        Raises:
            InvalidInput: If the query has no word or the limit is out of range.
        """
        if not isinstance(query, str):
            raise InvalidInput("a search query must be text")
        found = self._mgr.search(query, user=self.user, limit=limit)
        owned: dict[str, bool] = {}
        for hit in found.hits:
            if hit.session_id not in owned:
                try:
                    owned[hit.session_id] = self._mgr.get(hit.session_id).user_id == self.user
                except SessionNotFound:
                    owned[hit.session_id] = False  # its journal outlived its record
        found.hits = [hit for hit in found.hits if owned[hit.session_id]]
        return found.to_wire()

    def recovery_log(self) -> dict[str, Any]:
        """The recovery log's entries about the user's sessions, oldest first.

        Returns:
            ``{"entries": [...]}``: each interruption (its cause) and each recovery
            (score, factors, decision, answer, outcome), as the store logged them.
        """
        entries = self._mgr.store.read_recovery_log()
        return {"entries": [entry for entry in entries if entry.get("userId") == self.user]}

    # -- writing ----------------------------------------------------------

    def start(
        self, *, type: str = "research", task: str | None = None, phase: str | None = None
    ) -> dict[str, Any]:
        """Start a session a web page owns (its lease is renewed by :meth:`heartbeat`).

        Returns:
            The session's record (wire form).
        """
        session = self._mgr.start(type=type, task=task, phase=phase, browser=True, auto_save=False)
        return session.record.to_wire()

    def message(self, session_id: str, role: str, text: str) -> dict[str, Any]:
        """Record a message (``message --json``): ``{"sessionId", "seq"}``."""
        record = self._own(session_id)
        if role not in replies.ROLES:
            raise InvalidInput(f"role {role!r} is not one of {', '.join(replies.ROLES)}")
        with self._writing(record.id):
            seq = self._retrying(record.id, lambda: self._live(record.id).add_message(role, text))
            return {"sessionId": record.id, "seq": seq}

    def reply(
        self,
        session_id: str,
        respond: Callable[[list[dict[str, Any]], dict[str, Any]], str],
        limit: int,
    ) -> dict[str, Any]:
        """The assistant answers the conversation, and its answer is recorded.

        Args:
            session_id: The session.
            respond: Gives the answer to the conversation (oldest first) of the
                session (its :meth:`details`); the service's responder.
            limit: The most characters kept of the answer.

        Returns:
            ``{"sessionId", "seq", "role", "text"}``: the recorded answer.
        """
        details = self.details(session_id)
        text = respond(details["conversation"], details)[:limit]
        recorded = self.message(session_id, "assistant", text.strip() or "…")
        return {**recorded, "role": "assistant", "text": text}

    def update(
        self,
        session_id: str,
        *,
        tasks: Sequence[Mapping[str, Any]] = (),
        notes: Sequence[str] = (),
        **changes: Any,
    ) -> dict[str, Any]:
        """Record progress (``update --json``), plus tasks with a status and notes.

        Args:
            session_id: The session.
            tasks: Tasks to create or change: ``{"id", "title"?, "status"?}``
                (status ``open``, ``in-progress``, ``blocked``, ``done``,
                ``cancelled``); none becomes the current task.
            notes: Free-form notes.
            **changes: The keyword arguments of ``SessionManager.update``
                (see :data:`UPDATE_FIELDS`).

        Returns:
            ``{"sessionId", "seqs", "session"}``.
        """
        record = self._own(session_id)
        unknown = set(changes) - set(UPDATE_FIELDS)
        if unknown:
            raise InvalidInput(f"unknown fields: {', '.join(sorted(unknown))}")
        given = {key: value for key, value in changes.items() if value not in (None, [], (), {})}
        if not (given or tasks or notes):
            raise InvalidInput("nothing to record; give at least one field")
        # Every change is checked before anything is written, and all of them are
        # written as one atomic group: a bad task never leaves the good ones behind.
        task_payloads = [_task_payload(task) for task in tasks]
        if any(not isinstance(n, str) or not n.strip() for n in notes):
            raise InvalidInput("notes must be non-empty text")

        def append() -> list[Event]:
            live = self._live(record.id)
            drafts, trigger = update_group(live.draft, **given) if given else ([], None)
            drafts += [live.draft(EventKind.TASK, payload) for payload in task_payloads]
            drafts += [live.draft(EventKind.NOTE, {"text": note}) for note in notes]
            if any(p.get("status") == TaskStatus.DONE.value for p in task_payloads):
                trigger = Trigger.TASK_COMPLETION
            return live.append_group(drafts, trigger)

        with self._writing(record.id):
            events = self._retrying(record.id, append)
            now = self._handles[record.id].record
            return {"sessionId": now.id, "seqs": [e.seq for e in events], "session": now.to_wire()}

    def _retrying(self, session_id: str, write: Callable[[], T]) -> T:
        """Run ``write`` (which writes through :meth:`_live`); again once if the lease moved.

        The session was taken over since the kept handle was made (recovered,
        or marked interrupted): attaching afresh says what became of it.
        """
        try:
            return write()
        except LeaseHeld:
            self._handles.pop(session_id, None)
            return write()

    def heartbeat(
        self, session_id: str, *, claim: bool = False, lease: int | None = None
    ) -> dict[str, Any]:
        """Renew the page's lease on its session: ``{"sessionId", "status", "lease"}``.

        A session its page left less than ``browser-leave-grace`` ago (a
        reload, see :meth:`end`) is taken back: the same session goes on.

        Args:
            session_id: The session.
            claim: A page opening the session (its first heartbeat): the lease
                is taken afresh, and ``lease`` is the token the page names when
                it leaves, so that its end never hits a newer page's session.
            lease: The token the page holds, on its renewals: a beat the page
                sent just before leaving, arriving after its end, is refused
                (``LeaseHeld``) instead of taking the session back.

        Raises:
            NoActiveSession: If the session is no longer active (the heartbeats
                stopped too long: it is interrupted, recover it).
        """
        if not isinstance(claim, bool):
            raise InvalidInput("claim must be true or false")
        _check_token(lease)
        record = self._own(session_id)
        token = self._mgr.heartbeat(record.id, claim=claim, lease=lease)
        return {"sessionId": record.id, "status": "active", "lease": token}

    def save(self, session_id: str, trigger: str = "user-request") -> dict[str, Any]:
        """Make a recovery point now (``save --json``): ``{"recoveryPointId"}``."""
        record = self._own(session_id)
        with self._writing(record.id):
            return replies.save(self._mgr, record.id, trigger)

    def end(
        self, session_id: str, *, deferred: bool = False, lease: int | None = None
    ) -> dict[str, Any]:
        """Complete the session (the page closed normally: not a crash).

        Ending a session that already ended is not an error: a page may both
        call ``end`` and send a beacon.

        Args:
            session_id: The session.
            deferred: What a page's unload asks, since it cannot tell a reload
                from a close: the session stays active for ``browser-leave-grace``
                and is completed then, unless a page heartbeats it first (the
                reload's page: the same session goes on, no recovery, nothing
                logged). The state is kept in the store, so a restart of the
                service during the grace still completes it.
            lease: With ``deferred``, the leaving page's lease token (from its
                claiming :meth:`heartbeat`): if a newer page has claimed the
                session since, the end is stale and changes nothing.

        Returns:
            ``{"sessionId", "status"}``; with ``deferred``, also ``"endsAt"``
            (UTC) when the end was deferred.
        """
        if not isinstance(deferred, bool):
            raise InvalidInput("deferred must be true or false")
        _check_token(lease)
        record = self._own(session_id)
        with self._writing(record.id):
            self._handles.pop(record.id, None)
            if deferred:
                ends = self._mgr.leave(record.id, lease=lease)
                record = self._mgr.get(record.id)
                answer: dict[str, Any] = {"sessionId": record.id, "status": record.status.value}
                if ends is not None:
                    answer["endsAt"] = format_time(ends)
                return answer
            if record.status is SessionStatus.ACTIVE:
                try:
                    record = self._mgr.end(record.id)
                except NoActiveSession:
                    record = self._mgr.get(record.id)
            return {"sessionId": record.id, "status": record.status.value}

    # -- recovery ---------------------------------------------------------

    def recovery(self) -> dict[str, Any] | None:
        """The user's most recent interrupted session, analysed; nothing changes.

        Returns:
            The ``recover --json`` object (decision ``auto-resume``, ``prompt``
            or ``new-session``), or None when the user has no interrupted session.
        """
        self._mgr.detect_interruptions()
        try:
            chosen = self._mgr.recovery_candidate(self.user)
        except NoActiveSession:
            return None
        return self._mgr.analyse(chosen.id).to_wire()

    def recover(self, session_id: str | None = None, answer: bool | None = None) -> dict[str, Any]:
        """Act on the recovery question (``recover --json``).

        Args:
            session_id: The session (default: the user's most recent interrupted one).
            answer: True resumes, False archives it and starts a new session,
                None follows the decision (auto-resume, new session, or wait
                for an answer when the decision is to ask).
        """
        if answer is not None and not isinstance(answer, bool):
            raise InvalidInput("answer must be true, false or null")
        chosen = self._own(session_id).id if session_id is not None else None
        if chosen is None:
            self._mgr.detect_interruptions()
            chosen = self._mgr.recovery_candidate(self.user).id
        with self._writing(chosen):
            self._handles.pop(chosen, None)
            return self._mgr.recover(chosen, user=self.user, answer=answer).to_wire()
