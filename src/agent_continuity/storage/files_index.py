"""The files store's index when it is damaged: derived on reads, quarantined and rebuilt on writes.

The registry (``session-registry.json``, with ``active-sessions.json``) and
the lease documents are an index over the journals (see :mod:`.index`). This
module is what :class:`~.files.FileStore` does when one of them is damaged or
missing, imported only then. Like :mod:`.files_repair` it uses the store's
internals on purpose, and follows the same rule: damaged bytes are copied to
``quarantine/`` (fsynced) before anything replaces them.
"""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from agent_continuity.errors import CorruptRecord, SessionNotFound
from agent_continuity.model import Lease, SessionRecord, format_time

from . import leases
from .atomic import ensure_folder, replace_atomically, store_error
from .files_layout import Entries, Layout
from .files_registry import write_registry
from .index import derive_record
from .journal_file import read_journal

if TYPE_CHECKING:
    from .files import FileStore

_counter = itertools.count(1)


def quarantine_target(layout: Layout, original: Path) -> Path:
    """A new name in ``quarantine/`` (created if needed) for damaged bytes of ``original``.

    The name says when, which process, and where the bytes came from.
    """
    relative = original.relative_to(layout.root).as_posix().replace("/", "__")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    ensure_folder(layout.quarantine)
    return layout.quarantine / f"{stamp}-{os.getpid()}-{next(_counter)}-{relative}"


def quarantine_copy(layout: Layout, original: Path, data: bytes) -> Path:
    """Keep ``data`` (damaged bytes of ``original``) in a new file of ``quarantine/``, fsynced."""
    target = quarantine_target(layout, original)
    replace_atomically(target, data)
    return target


def reason(problem: CorruptRecord | None) -> str:
    """What is wrong with a record, without the advice the message ends with."""
    if problem is None:
        return "it is missing"
    return problem.message.split("; run `continuity verify", 1)[0]


# -- the registry -------------------------------------------------------------


def derived_record(store: FileStore, session_id: str, problem: CorruptRecord) -> SessionRecord:
    """``get_session`` while the registry (or this session's entry in it) is unreadable.

    Raises:
        SessionNotFound: If the session has no journal either.
        CorruptRecord: If its journal cannot rebuild it.
    """
    if not store.layout.journal(session_id).exists() and not store.list_points(session_id):
        raise SessionNotFound(
            f"no session {session_id} in {store.url}; `continuity list` shows the sessions"
        )
    _note_registry(store, problem)
    return derive_record(store, session_id)


def derived_records(store: FileStore, problem: CorruptRecord) -> list[SessionRecord]:
    """``list_sessions`` while the registry is unreadable: every session its journal rebuilds.

    A session whose journal is gone but whose recovery points remain is
    rebuilt from its newest valid point: losing the registry too must not
    make it vanish.
    """
    _note_registry(store, problem)
    records = []
    lost = [s for s in store.layout.point_session_ids() if not store.layout.journal(s).exists()]
    for session_id in store.layout.journal_ids() + lost:
        try:
            records.append(derive_record(store, session_id))
        except SessionNotFound:
            continue  # a creation undone since the folder was listed
        except CorruptRecord as exc:
            location = str(store.layout.journal(session_id))
            store._index_damage.note(location, "missing", exc.message)
    return records


def rebuild_registry(store: FileStore, problem: CorruptRecord) -> Entries:
    """Quarantine an unreadable registry and write it again from the journals (registry lock held).

    Returns:
        The rebuilt entries, for the write that found the damage to build on.
    """
    path = store.layout.registry
    try:
        data: bytes | None = path.read_bytes()
    except FileNotFoundError:
        data = None
    except OSError as exc:
        raise store_error(exc, "read", path) from exc
    kept = quarantine_copy(store.layout, path, data) if data is not None else None
    entries: Entries = {r.id: r.to_wire() for r in derived_records(store, problem)}
    write_registry(store, entries, None)  # and the active list with it
    moved = f"its bytes were moved to {kept}; " if kept is not None else ""
    store._index_damage.note(
        str(path),
        "checksum" if data is not None else "missing",
        f"{reason(problem)}; {moved}it was rebuilt from the journals ({len(entries)} sessions)",
    )
    return entries


def set_aside(store: FileStore, path: Path, problem: CorruptRecord) -> None:
    """Quarantine a damaged derived document (the active list) that is about to be rewritten."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise store_error(exc, "read", path) from exc
    kept = quarantine_copy(store.layout, path, data)
    store._index_damage.note(
        str(path),
        "checksum",
        f"{reason(problem)}; its bytes were moved to {kept} and it was rewritten",
    )


def _note_registry(store: FileStore, problem: CorruptRecord) -> None:
    location = problem.location or str(store.layout.registry)
    store._index_damage.note(
        location,
        "checksum" if Path(location).exists() else "missing",
        f"{reason(problem)}; the sessions were derived from their journals until a write or "
        "`continuity verify --repair` rebuilds it",
    )


# -- leases ---------------------------------------------------------------------


def derived_lease(store: FileStore, session_id: str, problem: CorruptRecord | None) -> Lease | None:
    """The lease the journal implies, for a session whose lease document is damaged or missing.

    See :func:`.leases.from_journal` for the rule. None when the session has
    no journal either (it does not exist).
    """
    try:
        read, _, _ = read_journal(store.layout.journal(session_id), sealer=store.sealer)
    except SessionNotFound:
        return None
    lease = leases.from_journal(session_id, read.events)
    store._index_damage.note(
        str(store.layout.lease(session_id)),
        "checksum" if problem is not None else "missing",
        f"{reason(problem)}; the lease was derived from the journal (token {lease.token}, "
        f"holder {lease.holder}, held until {format_time(lease.expires)} unless renewed)",
    )
    return lease


def set_aside_lease(store: FileStore, session_id: str, written: Lease) -> None:
    """Quarantine a damaged lease document before ``written`` replaces it (session lock held)."""
    path = store.layout.lease(session_id)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = None
    except OSError as exc:
        raise store_error(exc, "read", path) from exc
    kept = quarantine_copy(store.layout, path, data) if data is not None else None
    moved = f"its bytes were moved to {kept}; " if kept is not None else "it was missing; "
    store._index_damage.note(
        str(path),
        "checksum" if data is not None else "missing",
        f"{moved}a new lease was written (token {written.token}, holder {written.holder})",
    )
