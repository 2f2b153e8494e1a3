"""The SQL the stores on a database share: every dialect runs these as they are.

Parameters are written ``?`` (in order) or ``?N`` (the Nth, reusable), as
SQLite takes them; a dialect whose driver takes another style rewrites them
once per statement (see :mod:`..postgres.connection`).
"""

from __future__ import annotations

# Checksummed document columns that verify() reads: table -> (key column, value column).
DOCUMENTS = {
    "sessions": ("id", "doc"),
    "leases": ("session_id", "doc"),
    "points": ("id", "body"),
    "snapshots": ("session_id", "doc"),
    "emergency": ("session_id", "doc"),
    "recovery_log": ("id", "doc"),
}
# A session's journal key, for a statement whose first parameter is the session id.
JOURNAL = "(SELECT id FROM journals WHERE session_id = ?1)"
# Fencing, the journal key and the last sequence number, in one statement on the append path.
HEAD = (
    f"SELECT (SELECT token FROM leases WHERE session_id = ?1), {JOURNAL},"
    f" (SELECT MAX(seq) FROM events WHERE journal = {JOURNAL})"
)
INSERT_EVENT = "INSERT INTO events (journal, seq, line) VALUES (?, ?, ?)"
# One event, fenced and numbered in the same statement: (session id, token, seq, line)
# goes in only if the token is the lease's and the journal ends at seq - 1.
APPEND_AFTER = (
    "INSERT INTO events (journal, seq, line) SELECT id, ?3, ?4 FROM journals"
    " WHERE session_id = ?1 AND (SELECT token FROM leases WHERE session_id = ?1) = ?2"
    " AND (SELECT MAX(seq) FROM events WHERE journal = journals.id) = ?3 - 1"
)


#: A point of session ?1 exists; ?2 and ?3 are :func:`point_range` (its ids' range, indexed).
POINTS_OF = "SELECT 1 FROM points WHERE id >= ?2 AND id < ?3 AND session_id = ?1"


def point_range(session_id: str) -> tuple[str, str]:
    """The range of the ids of a session's points: they all begin ``RECOVERY-DDDDDD-NNN-``."""
    low = "RECOVERY-" + session_id[len("SESSION-") :] + "-"
    return low, low[:-1] + "."


#: The tables written whole by key: table -> (its columns, the key columns). Each
#: dialect builds its upsert of them (:attr:`~.store.SqlStore.upserts`).
UPSERTED = {
    "sessions": (("id", "day", "number", "doc"), ("id",)),
    "leases": (("session_id", "token", "doc"), ("session_id",)),
    "snapshots": (("session_id", "doc"), ("session_id",)),
    "emergency": (("session_id", "doc"), ("session_id",)),
    "file_states": (("session_id", "hash", "body"), ("session_id", "hash")),
    "journals": (("id", "session_id"), ("id",)),
}
