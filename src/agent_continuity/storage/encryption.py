"""Turning a store's encryption on, rotating its key, and saying what is sealed with what.

The byte formats are in :mod:`.codec` and :mod:`.envelope`; this module is
the store-level part: the marker (a file beside a files or SQLite store, a
row inside a PostgreSQL one), the sealer a store gets when it is opened
(:func:`attach`), and the walk over every record that re-seals it with the
active key (``continuity keys new`` on a store that has records,
``continuity keys rotate``) or counts it (``keys status``).

Re-sealing is crash-safe and needs no downtime: every record is rewritten
whole and atomically (a journal under its session's lock, a SQL row in its
own short transaction), records sealed with either key open while it runs,
and a rotation cut short is finished by running it again. Keys are never
deleted from the key file: ``keys status`` says when nothing uses one any more.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agent_continuity.errors import ConfigError, CorruptRecord

from . import codec, shown_url
from .atomic import replace_atomically
from .envelope import (
    MARKER_NAME,
    Sealer,
    add_key_to_file,
    build_sealer,
    configured_keys,
    key_file_path,
    new_marker,
    sealed_key_id,
    table_kind,
)

if TYPE_CHECKING:
    from .base import Store
    from .files import FileStore
    from .sql.store import SqlStore

PLAINTEXT = "plaintext"


def marker_path(store: Store) -> Path | None:
    """The file where a files or SQLite store records that it is encrypted; None for others."""
    root = getattr(store, "root", None)
    if isinstance(root, Path):
        return root / MARKER_NAME
    path = getattr(store, "path", None)
    if isinstance(path, Path) and store.url.startswith("sqlite:"):
        return path.with_name(path.name + "." + MARKER_NAME)
    return None


class MarkerInStore(Protocol):
    """A store that keeps its marker inside itself, having no folder to put a file in.

    A ``postgresql://`` store is a database on a server: nothing lies beside it
    that every client sees, so its marker is a row of the database
    (:meth:`~.postgres.PostgresStore.load_marker`).
    """

    def load_marker(self) -> bytes | None:
        """The marker's bytes, or None when the store is not encrypted."""
        ...

    def save_marker(self, data: bytes) -> None:
        """Replace the marker with ``data`` (atomically)."""
        ...

    def marker_location(self) -> str:
        """Where the marker is, for messages."""
        ...


def _in_store(store: Store) -> MarkerInStore | None:
    if callable(getattr(store, "load_marker", None)):
        return store  # type: ignore[return-value]
    return None


def can_be_encrypted(store: Store) -> bool:
    """Whether the store has a place for its marker (files, SQLite and PostgreSQL do)."""
    return marker_path(store) is not None or _in_store(store) is not None


def read_marker(store: Store) -> dict[str, Any] | None:
    """The store's marker, or None when it is not encrypted.

    Raises:
        CorruptRecord: If the marker is damaged (restore it from a backup).
    """
    holder = _in_store(store)
    if holder is not None:
        held = holder.load_marker()
        return None if held is None else codec.load_document(held, holder.marker_location())
    path = marker_path(store)
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return codec.load_document(data, str(path))


def _write_marker(store: Store, marker: dict[str, Any]) -> None:
    holder = _in_store(store)
    if holder is not None:
        holder.save_marker(codec.dump_document(marker))
        return
    path = marker_path(store)
    if path is None:
        raise ConfigError(_CANNOT.format(url=shown_url(store)))
    replace_atomically(path, codec.dump_document(marker))


_CANNOT = "{url} cannot be encrypted: use a files:, sqlite: or postgresql:// store"


def attach(store: Store) -> None:
    """Give an encrypted store its sealer (called when a store is opened).

    Raises:
        KeyUnavailable: If the key the store is encrypted with is not configured.
        WrongKey: If the configured key with that id is another key.
    """
    marker = read_marker(store)
    if marker is None:
        return
    sealer = build_sealer(marker, configured_keys(), shown_url(store))
    sealer.accept_plaintext = bool(marker.get("acceptPlaintext"))
    store.sealer = sealer  # type: ignore[attr-defined]


@dataclass(slots=True)
class KeyReport:
    """What ``keys new``, ``keys rotate`` and ``keys status`` report.

    Attributes:
        encrypted: Whether the store is encrypted.
        active_key: The id new records are sealed with.
        key_file: The key file in use (``CONTINUITY_KEY_FILE`` or the default).
        records: Key id (or ``"plaintext"``) to how many records are sealed with it.
        resealed: How many records this run sealed again with the active key.
        unfinished: A rotation (or ``keys new``) was cut short: run it again.
        unreadable: Damaged records left as they are (``continuity verify`` names them).
        store: The store as messages name it (:func:`.shown_url`: never a password).
    """

    encrypted: bool
    active_key: str | None = None
    key_file: str = ""
    records: dict[str, int] = field(default_factory=dict)
    resealed: int = 0
    unfinished: bool = False
    unreadable: int = 0
    store: str = ""

    def to_wire(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "encrypted": self.encrypted,
            "activeKey": self.active_key,
            "keyFile": self.key_file,
            "records": {k: n for k, n in sorted(self.records.items()) if n},
            "resealed": self.resealed,
            "unfinished": self.unfinished,
            "unreadable": self.unreadable,
        }


def turn_on(store: Store) -> KeyReport:
    """``continuity keys new``: create a key and encrypt the store with it (every record).

    Run again after a crash, it finishes the job with the key it made.

    Raises:
        ConfigError: If the store is encrypted already (rotate instead) or cannot be.
    """
    if not can_be_encrypted(store):
        raise ConfigError(_CANNOT.format(url=shown_url(store)))
    marker = read_marker(store)
    if marker is not None and not marker.get("acceptPlaintext"):
        raise ConfigError(
            f"{shown_url(store)} is encrypted already (key {marker['activeKey']}); "
            "`continuity keys rotate` replaces its key"
        )
    if marker is None:
        kid, key = add_key_to_file()
        # Plaintext records still open until every one is sealed; a crash before
        # then leaves the marker saying so, and running `keys new` again finishes.
        marker = {**new_marker(kid, key, None), "acceptPlaintext": True}
        _write_marker(store, marker)
    attach(store)
    report = _reseal(store)
    marker = {k: v for k, v in marker.items() if k != "acceptPlaintext"}
    _write_marker(store, marker)
    attach(store)
    # The search index of the plaintext store holds its words readable: gone,
    # and from now on kept in memory only (see agent_continuity.search.catalog).
    from agent_continuity.search.catalog import discard_disk_index

    discard_disk_index(store)
    return report


def rotate(store: Store) -> KeyReport:
    """``continuity keys rotate``: a new active key, every record sealed again with it.

    A rotation cut short (the marker says ``rotating``) is finished, not started again.

    Raises:
        ConfigError: If the store is not encrypted.
    """
    marker = read_marker(store)
    if marker is None:
        raise ConfigError(f"{shown_url(store)} is not encrypted; `continuity keys new` encrypts it")
    if marker.get("acceptPlaintext"):
        return turn_on(store)
    if not marker.get("rotating"):
        kid, key = add_key_to_file()
        marker = {**new_marker(kid, key, marker), "rotating": True}
        _write_marker(store, marker)
    attach(store)
    report = _reseal(store)
    if not report.unreadable:
        # Older keys stay in the key file (and open anything still sealed with
        # them); the marker stops vouching for them.
        active = marker["activeKey"]
        marker = {**marker, "keys": {active: marker["keys"][active]}}
        marker.pop("rotating", None)
    _write_marker(store, marker)
    attach(store)
    report.unfinished = bool(marker.get("rotating"))  # damaged records held it back
    return report


def status(store: Store) -> KeyReport:
    """``continuity keys status``: what is sealed with which key (reads every record)."""
    marker = read_marker(store)
    if marker is None:
        return KeyReport(encrypted=False, key_file=str(key_file_path()))
    attach(store)
    report = _walk(store, reseal=False)
    report.unfinished = bool(marker.get("rotating") or marker.get("acceptPlaintext"))
    return report


def _reseal(store: Store) -> KeyReport:
    return _walk(store, reseal=True)


# -- the walk over every record ------------------------------------------


class _Visitor:
    """Tallies each record's key and, when re-sealing, returns its bytes sealed anew."""

    def __init__(self, sealer: Sealer, reseal: bool) -> None:
        self.sealer = sealer
        self.reseal = reseal
        self.report = KeyReport(encrypted=True, active_key=sealer.active)
        self.report.key_file = str(key_file_path())

    def _count(self, kid: str | None) -> bool:
        """Count a record under its key; whether it needs sealing again."""
        name = kid or PLAINTEXT
        self.report.records[name] = self.report.records.get(name, 0) + 1
        return self.reseal and kid != self.sealer.active

    def _moved(self, kid: str | None) -> None:
        name = kid or PLAINTEXT
        self.report.records[name] -= 1
        self.report.records[self.sealer.active] = self.report.records.get(self.sealer.active, 0) + 1
        self.report.resealed += 1

    def line(self, line: bytes, session_id: str) -> bytes | None:
        """A journal line (no newline) sealed with the active key, or None to keep it."""
        kid = codec.line_key_id(line)
        if not self._count(kid):
            return None
        try:
            event = codec.decode_event(line, "", self.sealer, session_id)
        except CorruptRecord:
            self.report.unreadable += 1  # damage stays as it is, for verify to report
            return None
        self._moved(kid)
        return codec.encode_event(event, self.sealer, session_id)[:-1]

    def document(
        self, data: bytes, kind: str, owner: str, *, compressed: bool = False
    ) -> bytes | None:
        """A checksummed document sealed with the active key, or None to keep it."""
        try:
            if compressed:
                doc = codec.read_compressed(data)
            else:
                doc = codec.load_document(data)
            body = {k: v for k, v in doc.items() if k != "checksum"}
            kid = sealed_key_id(body)
            if not self._count(kid):
                return None
            opened = codec.open_document(doc, self.sealer, kind, owner, packed=compressed)
        except CorruptRecord:
            self.report.unreadable += 1
            return None
        self._moved(kid)
        if compressed:
            return codec.dump_compressed(opened, self.sealer, kind, owner)
        return codec.dump_document(opened, self.sealer, kind, owner)

    def blob(self, data: bytes, kind: str, owner: str) -> bytes | None:
        """A sealed blob (file-state chunk) sealed with the active key, or None to keep it."""
        kid = None
        if data.startswith(b'{"$aead"'):
            try:
                kid = sealed_key_id(json.loads(data))
            except ValueError:
                kid = None
        if not self._count(kid):
            return None
        plain = codec.open_blob(data, self.sealer, kind, owner, owner)
        if not plain:
            self.report.unreadable += 1
            return None
        self._moved(kid)
        return codec.seal_blob(plain, self.sealer, kind, owner)


def _walk(store: Store, *, reseal: bool) -> KeyReport:
    sealer: Sealer | None = getattr(store, "sealer", None)
    if sealer is None:
        raise ConfigError(f"{shown_url(store)} is not encrypted")
    visitor = _Visitor(sealer, reseal)
    if store.url.startswith("files:") or hasattr(store, "layout"):
        _walk_files(store, visitor)  # type: ignore[arg-type]
    else:
        _walk_sql(store, visitor)  # type: ignore[arg-type]
    return visitor.report


def _rewrite(path: Path, visit: Any) -> None:
    """Replace ``path`` by what ``visit(data)`` returns, unless None (or the file is gone)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    new = visit(data)
    if new is not None:
        replace_atomically(path, new)


def _files_in(folder: Path, suffix: str) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(suffix) and p.is_file())


def _walk_files(store: FileStore, visitor: _Visitor) -> None:
    from .files_layout import parse_point_file_name
    from .journal_file import split_lines

    layout = store.layout
    for session_id in layout.journal_ids():
        entry = store._session(session_id)
        with entry.lock.exclusive():  # no append can fall between read and rename

            def journal(data: bytes, sid: str = session_id) -> bytes | None:
                pieces = data.split(b"\n")
                tail = pieces.pop()  # a torn last line stays as it is
                new = [visitor.line(p, sid) if p else None for p in pieces]
                if all(n is None for n in new):
                    return None
                out = [n if n is not None else p for n, p in zip(new, pieces, strict=True)]
                return b"\n".join(out) + b"\n" + tail

            _rewrite(layout.journal(session_id), journal)
            folder = layout.point_folder(session_id)
            for path in _files_in(folder, ".json.gz"):
                info = parse_point_file_name(session_id, path)
                if info is not None:
                    _rewrite(
                        path, lambda d, i=info.id: visitor.document(d, "point", i, compressed=True)
                    )
            chunks = layout.points.parent / "file-states" / session_id
            for path in _files_in(chunks, ".json.gz"):
                owner = f"{session_id}/{path.name}"
                _rewrite(path, lambda d, o=owner: visitor.blob(d, "chunk", o))
            for kind, path in (
                ("snapshot", layout.snapshot(session_id)),
                ("emergency", layout.emergency_backup(session_id)),
            ):
                _rewrite(path, lambda d, k=kind, s=session_id: visitor.document(d, k, s))
    with store._registry_lock.exclusive():
        _rewrite(layout.registry, lambda d: visitor.document(d, "registry", ""))
        store._registry_cache = None
        for path in _files_in(layout.archive, ".json"):
            owner = path.name.split(".")[0]
            _rewrite(path, lambda d, o=owner: visitor.document(d, "archive", o))

        def log(data: bytes) -> bytes | None:
            lines = split_lines(data)
            changed = False
            out = []
            for line in lines:
                new = visitor.document(line.data, "log", "")
                if new is not None:
                    changed = True
                    sealed = json.loads(new)
                    out.append(
                        json.dumps(sealed, ensure_ascii=False, separators=(",", ":")).encode()
                    )
                else:
                    out.append(line.data)
            return b"\n".join(out) + b"\n" if changed else None

        _rewrite(layout.log, log)


def _walk_sql(store: SqlStore, visitor: _Visitor) -> None:
    # One pooled connection for the whole walk (the scope of a public call).
    with store._scope:
        _walk_sql_rows(store, visitor)


def _walk_sql_rows(store: SqlStore, visitor: _Visitor) -> None:
    from .sql.statements import DOCUMENTS

    journals = store._all("SELECT id, session_id FROM journals ORDER BY id")
    for journal, session_id in journals:
        # One session per transaction: appends to the others go on meanwhile.
        with store._write() as conn:
            rows = conn.execute(
                "SELECT seq, CAST(line AS BLOB) FROM events WHERE journal = ?", (journal,)
            ).fetchall()
            updates = []
            for seq, line in rows:
                new = visitor.line(bytes(line).rstrip(b"\n"), session_id)
                if new is not None:
                    updates.append((new + b"\n", journal, seq))
            conn.executemany("UPDATE events SET line = ? WHERE journal = ? AND seq = ?", updates)
        store._marks.forget(session_id)
    for table, (key, column) in DOCUMENTS.items():
        if table == "points":
            continue
        kind, _ = table_kind(table, "")
        if not kind:
            continue  # leases: plaintext metadata
        with store._write() as conn:
            rows = conn.execute(f"SELECT {key}, CAST({column} AS BLOB) FROM {table}").fetchall()
            doc_updates: list[tuple[bytes, Any]] = []
            for row_key, data in rows:
                new = visitor.document(bytes(data), *table_kind(table, row_key))
                if new is not None:
                    doc_updates.append((new, row_key))
            conn.executemany(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", doc_updates)
    with store._write() as conn:
        rows = conn.execute("SELECT id, CAST(body AS BLOB) FROM points").fetchall()
        point_updates: list[tuple[bytes, Any]] = []
        for point_id, data in rows:
            new = visitor.document(bytes(data), "point", point_id, compressed=True)
            if new is not None:
                point_updates.append((new, point_id))
        conn.executemany("UPDATE points SET body = ? WHERE id = ?", point_updates)
        rows = conn.execute(
            "SELECT session_id, hash, CAST(body AS BLOB) FROM file_states"
        ).fetchall()
        chunk_updates = []
        for session_id, ref, data in rows:
            new = visitor.blob(bytes(data), "chunk", f"{session_id}/{ref}")
            if new is not None:
                chunk_updates.append((new, session_id, ref))
        conn.executemany(
            "UPDATE file_states SET body = ? WHERE session_id = ? AND hash = ?", chunk_updates
        )


KEY_ACTIONS = ("new", "rotate", "status")


def manage_keys(store: Store, action: str) -> KeyReport:
    """``continuity keys ACTION`` on ``store``: ``new``, ``rotate`` or ``status``.

    Raises:
        ConfigError: If ``action`` is unknown, or the store cannot do it (see each).
    """
    if action == "new":
        report = turn_on(store)
    elif action == "rotate":
        report = rotate(store)
    elif action == "status":
        report = status(store)
    else:
        raise ConfigError(f"unknown keys action {action!r}; use one of {', '.join(KEY_ACTIONS)}")
    report.store = shown_url(store)
    return report
