"""The lease rules every store applies (the store only supplies atomicity)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from agent_continuity.errors import LeaseHeld
from agent_continuity.model import Event, EventKind, Lease, SessionRecord

from .base import LeaseRequest

#: How long a session whose lease document is damaged still counts as held after
#: the last event of its journal: the longest lease the package grants by
#: default (a command-line session's 30 idle minutes). See :func:`from_journal`.
DAMAGED_LEASE_HOLD = timedelta(minutes=30)
UNKNOWN_HOLDER = "unknown"
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)  # a journal with no readable event shows no life


def grant(
    session_id: str,
    current: Lease | None,
    request: LeaseRequest,
    *,
    steal: bool,
    expect_token: int | None,
    fence_above: int = 0,
) -> Lease:
    """Decide whether ``request`` may take the lease and build the new one.

    Call this while holding the store's lock for the session, then persist the
    result and append a ``lease`` event. The new token is one more than the
    current one, or than ``fence_above`` if that is higher (see
    :func:`from_journal`).

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
        token=max(current_token, fence_above) + 1,
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


def from_journal(session_id: str, events: Sequence[Event], *, floor_token: int = 1) -> Lease:
    """The lease of a session whose lease document is damaged or lost, as its journal tells it.

    A damaged lease document cannot say who holds the session, nor until when.
    The journal says most of it, and the rule built on it never lets two
    writers interleave:

    * **Token.** Every takeover appends a ``lease`` event before it writes the
      document, so the current token is the highest one in the journal (1, the
      creator's, when there is none), or ``floor_token`` when the store kept a
      higher one elsewhere. Appends under that token go on; any other is
      refused. A takeover gets a higher token still, so whoever held the
      session before is fenced off, whatever the timing.
    * **Holder.** The newest ``lease`` event names it, or for a session never
      taken over, the ``lease`` its ``session`` event records (see
      :func:`creation_payload`; :data:`UNKNOWN_HOLDER` in journals older than
      that). ``pid@host`` gives the process, so an owner that died on this
      host is seen dead at once.
    * **Expiry.** Heartbeats leave no trace in the journal, so the last sign of
      life is the journal's last event: the lease counts as held until
      :data:`DAMAGED_LEASE_HOLD` after it. A live holder renews well before
      that, and its renewal writes a sound document again. One silent for
      longer may be taken over: it is then fenced (its next write is refused
      with ``LeaseHeld``), never interleaved.
    * **Takeover.** The store passes the journal's highest event number to
      :func:`grant` as ``fence_above``: each takeover is one event, so no token
      ever handed out is higher, not even one whose ``lease`` event is damaged.

    Args:
        session_id: The session.
        events: Its journal's readable events, in order.
        floor_token: The lowest token to assume (a token the store kept apart).
    """
    taken = [e for e in events if e.kind is EventKind.LEASE]
    if not taken and events and events[0].kind is EventKind.SESSION:
        created = events[0].payload.get("lease")  # the creator's lease (token 1)
        if isinstance(created, dict):
            taken = [events[0].model_copy(update={"payload": created})]
    newest = taken[-1] if taken else None
    token = max([floor_token, 1, *(_token(e) for e in taken)])
    holder = str(newest.payload.get("holder") or UNKNOWN_HOLDER) if newest else UNKNOWN_HOLDER
    pid_text, _, host = holder.partition("@")
    pid = int(pid_text) if host and pid_text.isdigit() else None
    first_at = events[0].at if events else _NEVER
    seen = max((e.at for e in events), default=first_at)
    return Lease(
        session_id=session_id,
        token=token,
        holder=holder,
        pid=pid,
        host=host if pid is not None else "",
        acquired=newest.at if newest else first_at,
        heartbeat=seen,
        expires=seen + DAMAGED_LEASE_HOLD,
    )


def creation_payload(record: SessionRecord, granted: Lease) -> dict[str, Any]:
    """The payload of a journal's first (``session``) event.

    ``{"record": <the record's wire form>, "lease": {"token": 1, "holder": …}}``:
    the creator's lease is recorded as every later takeover's is, so the
    journal alone can say who holds a session (:func:`from_journal`).
    """
    return {"record": record.to_wire(), "lease": {"token": granted.token, "holder": granted.holder}}


def _token(event: Event) -> int:
    try:
        return int(event.payload.get("token", 0))
    except (TypeError, ValueError):
        return 0
