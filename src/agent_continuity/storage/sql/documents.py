"""The SQL stores' checksummed documents: context snapshots, emergency backups, the log.

One row each (the log: one row per entry), the document in the byte format
of :func:`.codec.dump_document`. Emergency backups are kept apart from
everything else and need no session to exist: they are what is left when the
rest is lost.
"""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING, Any

from agent_continuity import ids
from agent_continuity.errors import CorruptRecord
from agent_continuity.model import ContextSnapshot, Damage, EmergencyBackup

from .. import codec
from .repair import damage_at

if TYPE_CHECKING:
    from .store import SqlStore


def save_context_snapshot(store: SqlStore, snapshot: ContextSnapshot) -> None:
    """See :meth:`~.base.Store.save_context_snapshot`."""
    doc = codec.dump_document(snapshot.to_wire(), store.sealer, "snapshot", snapshot.session_id)
    with store._write() as conn:
        store._require(conn, snapshot.session_id)
        conn.execute(store.upserts["snapshots"], (snapshot.session_id, doc))


def load_context_snapshot(store: SqlStore, session_id: str) -> ContextSnapshot | None:
    """See :meth:`~.base.Store.load_context_snapshot`."""
    return store._load("snapshots", session_id, ContextSnapshot)


def save_emergency(store: SqlStore, backup: EmergencyBackup) -> None:
    """See :meth:`~.base.Store.save_emergency`."""
    ids.validate_session_id(backup.session_id)
    doc = codec.dump_document(backup.to_wire(), store.sealer, "emergency", backup.session_id)
    with store._write() as conn:
        conn.execute(store.upserts["emergency"], (backup.session_id, doc))


def load_emergency(store: SqlStore, session_id: str) -> EmergencyBackup | None:
    """See :meth:`~.base.Store.load_emergency`."""
    return store._load("emergency", session_id, EmergencyBackup)


def list_emergency(store: SqlStore) -> tuple[list[EmergencyBackup], list[Damage]]:
    """See :meth:`~.base.Store.list_emergency`."""
    rows = store._all("SELECT session_id, CAST(doc AS BLOB) FROM emergency ORDER BY session_id")
    backups, damage = [], []
    for key, doc in rows:
        try:
            location = store._loc("emergency", key)
            backups.append(store._document(doc, location, EmergencyBackup, "emergency", key))
        except CorruptRecord as exc:
            damage.append(damage_at(exc.location, "checksum", str(exc)))
    return backups, damage


def log_recovery(store: SqlStore, entry: dict[str, Any]) -> None:
    """See :meth:`~.base.Store.log_recovery`."""
    doc = codec.dump_document(entry, store.sealer, "log")
    with store._write() as conn:
        conn.execute("INSERT INTO recovery_log (doc) VALUES (?)", (doc,))


def read_recovery_log(store: SqlStore) -> list[dict[str, Any]]:
    """See :meth:`~.base.Store.read_recovery_log`."""
    rows = store._all("SELECT id, CAST(doc AS BLOB) FROM recovery_log ORDER BY id")
    entries = []
    for entry_id, doc in rows:
        # Damaged entries are reported by verify(); the rest stay readable.
        with suppress(CorruptRecord):
            location = store._loc("recovery_log", entry_id)
            entries.append(codec.load_sealed_document(doc, location, store.sealer, "log"))
    return entries
