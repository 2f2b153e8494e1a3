"""The SQL stores' leases: who may append to a session, fenced by a token.

The ``token`` column is what appends are fenced by; the ``doc`` column holds
the whole lease as a checksummed document. A damaged or missing document of
a session with a journal is derived from the journal
(:func:`.leases.from_journal`) and rewritten by the next write, its bytes
first kept in the quarantine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent_continuity import ids
from agent_continuity.errors import CorruptRecord
from agent_continuity.model import EventDraft, EventKind, Lease

from .. import leases
from ..base import LeaseRequest
from .repair import keep, reason
from .statements import HEAD, JOURNAL

if TYPE_CHECKING:
    from .connection import SqlConnection
    from .store import SqlStore


def current_lease(store: SqlStore, session_id: str) -> tuple[Lease | None, bytes | None]:
    """The session's lease, and the bytes of its document if they were damaged.

    A damaged or missing lease document of a session with a journal does
    not stop it: the lease is derived from the journal
    (:func:`.leases.from_journal`), never below the token column, which is
    what appends are fenced by.
    """
    ids.validate_session_id(session_id)
    row = store._one("SELECT token, CAST(doc AS BLOB) FROM leases WHERE session_id = ?", session_id)
    location = store._loc("leases", session_id)
    problem: CorruptRecord | None = None
    if row is not None:
        try:
            return store._document(row[1], location, Lease), None
        except CorruptRecord as exc:
            problem = exc
    first = store._one(f"SELECT 1 FROM events WHERE journal = {JOURNAL} LIMIT 1", session_id)
    if first is None:
        return None, None
    floor = row[0] if row is not None and isinstance(row[0], int) else 1
    lease = leases.from_journal(session_id, store.read_events(session_id).events, floor_token=floor)
    store._index_damage.note(
        location,
        "checksum" if problem is not None else "missing",
        f"{reason(problem)}; the lease was derived from the journal (token {lease.token}, "
        f"holder {lease.holder}, held until {lease.to_wire()['expires']} unless renewed)",
    )
    return lease, (row[1] if row is not None else b"")


def replace_lease(
    store: SqlStore, conn: SqlConnection, lease: Lease, damaged: bytes | None
) -> None:
    """Write ``lease``; damaged bytes it replaces are kept in the quarantine first."""
    if damaged is not None:
        moved = "it was missing"
        if damaged:
            kept = keep(store, conn, "leases", lease.session_id, "damaged lease", damaged)
            moved = f"its bytes were moved to {kept}"
        store._index_damage.note(
            store._loc("leases", lease.session_id),
            "checksum" if damaged else "missing",
            f"{moved}; a new lease was written (token {lease.token}, holder {lease.holder})",
        )
    store._put_lease(conn, lease)


def acquire_lease(
    store: SqlStore,
    session_id: str,
    request: LeaseRequest,
    *,
    steal: bool = False,
    expect_token: int | None = None,
) -> Lease:
    """See :meth:`~.base.Store.acquire_lease`."""
    with store._write() as conn:
        store._require(conn, session_id)
        current, damaged = current_lease(store, session_id)
        _, journal, last = store._one(HEAD, session_id)
        granted = leases.grant(
            session_id,
            current,
            request,
            steal=steal,
            expect_token=expect_token,
            fence_above=(last or 0) if damaged is not None else 0,
        )
        replace_lease(store, conn, granted, damaged)
        payload = {"token": granted.token, "holder": granted.holder}
        draft = EventDraft(kind=EventKind.LEASE, at=request.now, payload=payload)
        store._append_in(conn, session_id, journal, last or 0, [draft])
    return granted


def renew_lease(store: SqlStore, lease: Lease, request: LeaseRequest) -> Lease:
    """See :meth:`~.base.Store.renew_lease`."""
    with store._write() as conn:
        current, damaged = current_lease(store, lease.session_id)
        renewed = leases.renewed(current, lease, request)
        replace_lease(store, conn, renewed, damaged)  # a live holder's heartbeat mends it
    return renewed


def release_lease(store: SqlStore, lease: Lease) -> None:
    """See :meth:`~.base.Store.release_lease`."""
    with store._write() as conn:
        current, damaged = current_lease(store, lease.session_id)
        if current is not None and current.token == lease.token:
            # Keep the token so the next holder still gets a higher one.
            kept = lease if damaged is not None else current
            replace_lease(store, conn, kept.model_copy(update={"expires": kept.heartbeat}), damaged)
