"""What :meth:`SessionManager.analytics` reads from the store for :mod:`.analytics`.

Kept apart from the pure computation: this is the only part that touches the
store, and it only reads (the registry, the recovery log, and the recovery
point listing of the sessions that died in the range, never a point's body).
"""

from __future__ import annotations

from datetime import datetime

from agent_continuity.analytics import FINAL_TRIGGERS, Analytics, compute, parse_since
from agent_continuity.errors import ContinuityError
from agent_continuity.runtime import Runtime


def store_analytics(
    rt: Runtime, *, since: datetime | str | None = None, user: str | None = None
) -> Analytics:
    """Analytics over the runtime's store (see :meth:`SessionManager.analytics`).

    Raises:
        StoreNotFound: If the store does not exist (nothing is created).
        InvalidInput: If ``since`` is not a date.
    """
    now = rt.now()
    start = parse_since(since, now) if isinstance(since, str) else since
    store = rt.store
    records = store.list_sessions()
    log = store.read_recovery_log()
    listed: dict[str, list[tuple[int, bool]]] = {}

    def point_seq(session_id: str, upto: int) -> int:
        # One listing per session, however many times it died.
        points = listed.get(session_id)
        if points is None:
            try:
                points = [
                    (p.seq, p.trigger in FINAL_TRIGGERS) for p in store.list_points(session_id)
                ]
            except ContinuityError:
                points = []  # a damaged listing: count the whole journal as at risk
            listed[session_id] = points
        return max((seq for seq, final in points if not final and seq <= upto), default=0)

    return compute(records, log, now, since=start, user=user, point_seq=point_seq)
