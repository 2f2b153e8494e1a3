"""The lease rules every store applies (the store only supplies atomicity)."""

from __future__ import annotations

from agent_continuity.errors import LeaseHeld
from agent_continuity.model import Lease

from .base import LeaseRequest


def grant(
    session_id: str,
    current: Lease | None,
    request: LeaseRequest,
    *,
    steal: bool,
    expect_token: int | None,
) -> Lease:
    """Decide whether ``request`` may take the lease and build the new one.

    Call this while holding the store's lock for the session, then persist the
    result and append a ``lease`` event.

    Raises:
        LeaseHeld: If another live holder has the lease or the token moved on.
    """
    current_token = current.token if current is not None else 0
    if expect_token is not None and current_token != expect_token:
        raise LeaseHeld(
            f"{session_id} was taken over by {current.holder if current else 'nobody'} "
            f"(lease token {current_token}, expected {expect_token}); run the command again",
            current.holder if current else "",
        )
    if (
        current is not None
        and not steal
        and current.holder != request.holder
        and current.expires > request.now
    ):
        raise LeaseHeld(
            f"{session_id} is being written by {current.holder} (lease until "
            f"{current.to_wire()['expires']}); wait for it to finish, or stop that process",
            current.holder,
        )
    return Lease(
        session_id=session_id,
        token=current_token + 1,
        holder=request.holder,
        pid=request.pid,
        host=request.host,
        acquired=request.now,
        heartbeat=request.now,
        expires=request.now + request.ttl,
    )


def renewed(current: Lease | None, lease: Lease, request: LeaseRequest) -> Lease:
    """The lease extended to ``request.now + ttl``, if ``lease`` is still current.

    Raises:
        LeaseHeld: If the lease was taken over (or released) since.
    """
    check_current(current, lease)
    return lease.model_copy(update={"heartbeat": request.now, "expires": request.now + request.ttl})


def check_current(current: Lease | None, lease: Lease) -> None:
    """Refuse a write made under a lease that is no longer the session's.

    Raises:
        LeaseHeld: If ``lease.token`` is not the current token.
    """
    if current is None or current.token != lease.token:
        holder = current.holder if current is not None else "nobody"
        raise LeaseHeld(
            f"{lease.session_id} was taken over by {holder}; this writer (lease token "
            f"{lease.token}) may no longer append. Recover the session to continue it",
            holder,
        )
