"""A web page's lease on its session: heartbeats, claims, and a graceful leave.

``continuity serve``'s pages keep their session alive by heartbeating its
lease (:func:`browser_heartbeat`). A page that goes away normally cannot tell
a reload from a close, so its unload asks for a deferred end
(:func:`browser_leave`): the session waits ``browser-leave-grace`` for a page
to claim it back (the reload's new page does at once), and is completed
otherwise. A page that stops without a word (a crash) loses its lease after
``browser-lease-ttl``: the session is interrupted, ``heartbeat-lost``.
"""

from __future__ import annotations

from agent_continuity import lifecycle
from agent_continuity.errors import LeaseHeld, NoActiveSession
from agent_continuity.liveness import (
    BROWSER_HOLDER,
    BROWSER_HOLDERS,
    CLI_HOLDER,
    LEAVING_HOLDER,
    PAGE_LEFT,
    Owner,
    owner_gone,
)
from agent_continuity.model import Lease, SessionStatus
from agent_continuity.runtime import Runtime


def browser_heartbeat(
    rt: Runtime, session_id: str, *, claim: bool = False, lease: int | None = None
) -> Lease:
    """Renew a web page's lease on its session (``POST /api/sessions/{id}/heartbeat``).

    A session restored by recovery or started from the command line (its lease
    held by ``cli``) is taken over by the page, as ``adopt`` does for a process.
    So is a session whose page left it less than ``browser-leave-grace`` ago
    (see :func:`browser_leave`): the page of a reload claims it back, and the
    session goes on as if nothing happened. A page that comes back after its
    lease ran out finds the session interrupted (``heartbeat-lost``), and one
    that comes back after the grace finds it completed; neither is silently revived.

    Args:
        rt: The runtime.
        session_id: The session.
        claim: A page opening the session (not one renewing its lease): the
            lease is taken afresh, with a new token, so that an end deferred
            by the page before it (see :func:`browser_leave`) that arrives
            late names an old token and changes nothing.
        lease: The token a page renewing its lease holds. A heartbeat of the
            page that is leaving (its token older than the leaving lease's: a
            beat sent just before its unload, that arrived after its end)
            does not take the session back.

    Raises:
        NoActiveSession: If the session is not active (ended, or interrupted
            because the heartbeats stopped); ``recover`` continues it.
        LeaseHeld: If a live process owns the session, or the heartbeat is
            the leaving page's own.
    """
    record = lifecycle.get(rt, session_id)
    now = rt.now()
    current = rt.store.read_lease(record.id)
    if record.status is SessionStatus.ACTIVE:
        cause = owner_gone(current, now)
        if cause is not None:
            _settle(rt, record.id, current, cause)
            record = lifecycle.get(rt, record.id)
            current = rt.store.read_lease(record.id)
    if record.status is not SessionStatus.ACTIVE:
        raise NoActiveSession(
            f"{record.id} is {record.status.value}; recover it to continue "
            f"(`continuity recover {record.id}`, or the web app's resume question)"
        )
    owner = Owner.browser(rt.config.browser_lease_ttl)
    if (
        current is not None
        and current.holder == LEAVING_HOLDER
        and not claim
        and lease is not None
        and lease < current.token
    ):
        raise LeaseHeld(
            f"{record.id} was left by this page; reload the page to take it back",
            current.holder,
        )
    if current is not None and current.holder == BROWSER_HOLDER and not claim:
        return rt.store.renew_lease(current, owner.request(now))
    if current is not None and current.holder not in (CLI_HOLDER, *BROWSER_HOLDERS):
        raise LeaseHeld(
            f"{record.id} is being written by {current.holder}; a web page cannot take it "
            "over while that process lives",
            current.holder,
        )
    return rt.store.acquire_lease(
        record.id,
        owner.request(now),
        steal=True,
        expect_token=current.token if current is not None else 0,
    )


def browser_leave(rt: Runtime, session_id: str, *, lease: int | None = None) -> Lease | None:
    """End a web page's session a little later, unless a page claims it back first.

    What a page's unload asks for (``POST /api/sessions/{id}/end {deferred:
    true}``): the page cannot tell a reload from a close. The session stays
    active, its lease held by :data:`~agent_continuity.liveness.LEAVING_HOLDER`
    for ``browser-leave-grace``. A page's heartbeat within the grace takes it
    back (a reload: same session, nothing logged); otherwise, once the grace
    has run out, whoever looks next (the service's sweeper, any command) ends
    it as ``completed``: a normal close, not a crash. The state lives in the
    store's lease, so it outlives a restart of the service and is seen by
    every worker.

    Args:
        rt: The runtime.
        session_id: The session.
        lease: The lease token the leaving page holds (from its claim). If the
            session has been claimed since by another page (a reload whose
            claim overtook this request), its token differs and nothing changes.

    Returns:
        The leaving lease, or None when nothing was deferred: the session is
        no longer active, is already leaving, or was claimed by a newer page.

    Raises:
        LeaseHeld: If a live process (not a page) owns the session.
    """
    record = lifecycle.get(rt, session_id)
    if record.status is not SessionStatus.ACTIVE:
        return None
    now = rt.now()
    current = rt.store.read_lease(record.id)
    cause = owner_gone(current, now)
    if cause is not None:
        # Too late to leave gracefully: the heartbeats had stopped already.
        _settle(rt, record.id, current, cause)
        return None
    assert current is not None  # owner_gone says a missing lease is gone
    if current.holder not in (CLI_HOLDER, *BROWSER_HOLDERS):
        raise LeaseHeld(
            f"{record.id} is being written by {current.holder}; a web page cannot end it",
            current.holder,
        )
    if current.holder == LEAVING_HOLDER:
        return None  # already leaving: the grace is not extended
    if lease is not None and current.holder == BROWSER_HOLDER and current.token != lease:
        return None  # a newer page claimed it: this end is stale
    try:
        return rt.store.acquire_lease(
            record.id,
            Owner.leaving(rt.config.browser_leave_grace).request(now),
            steal=True,
            expect_token=current.token,
        )
    except LeaseHeld:
        return None  # a page claimed it (or the sweeper settled it) meanwhile


def _settle(rt: Runtime, session_id: str, lease: Lease | None, cause: str) -> None:
    """Act on a gone owner: end a session its page left, mark any other interrupted."""
    try:
        if cause == PAGE_LEFT:
            lifecycle._end_left(rt, session_id, lease)
        else:
            lifecycle._mark_interrupted(rt, session_id, lease, cause)
    except LeaseHeld:
        pass  # another process settled it, or took it over: the caller reads it again
