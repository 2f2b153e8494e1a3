"""The files store's recovery points: one gzip JSON file per point.

``snapshots/recovery-points/SESSION-…/RECOVERY-….seqN.TIME.TRIGGER.json.gz``:
the file name carries the point's listing, so listing a session's points
reads a folder, not the points. A point is written atomically (temporary
file, fsync, rename, fsync of the folder) under the session's lock, after
the journal it covers is flushed, and never overwritten.

A large code context is stored apart, in file-state chunks shared by the
session's points (see :mod:`.file_states`):
``snapshots/file-states/SESSION-…/HASH.json.gz``, each written atomically
before the first point that refers to it, and deleted by pruning once no
point refers to it any more.

A point also carries a ``journalMark`` when this store knows the journal
it covers to be intact (see :class:`~.journal_file.JournalMark`): a reader
of the events after the point then checks the lines before it with one
CRC-32. Readers of the point ignore the key; it is inside the checksum.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from agent_continuity import ids
from agent_continuity.errors import (
    CorruptRecord,
    DuplicateRecord,
    InvalidInput,
    RecoveryPointNotFound,
    SessionNotFound,
)
from agent_continuity.model import RecoveryPoint, RecoveryPointInfo

from . import codec, file_states, retention
from .atomic import FileLock, ensure_folder, replace_atomically, store_error
from .envelope import Sealer
from .files_documents import validate
from .files_layout import Layout, parse_point_name, point_name
from .journal_file import JournalHandle, JournalMark, mark_for_read

_MAX_POINT_NAMES = 100_000  # parsed point names remembered per store
_MAX_WRITTEN = 10_000  # digests of the point files this store wrote
_MAX_FOLDERS = 10_000  # session point folders remembered
_MAX_MARKS = 10_000  # journal marks of the points read
_MAX_CHUNKS = 100_000  # file-state chunks known intact
_CHUNK_SUFFIX = ".json.gz"


class SessionFiles(Protocol):
    """What a point needs of the session it belongs to: its lock and its journal."""

    lock: FileLock
    journal: JournalHandle


class PointFiles:
    """Save, load, list and prune the recovery points under ``layout``.

    Args:
        layout: The store's folders.
        url: The store's URL, for messages.
        session: The open lock and journal of a session, by id.
    """

    def __init__(self, layout: Layout, url: str, session: Callable[[str], SessionFiles]) -> None:
        self.layout = layout
        self.url = url
        self._session = session
        #: The store's sealer when it is encrypted (points and chunks are sealed).
        self.sealer: Sealer | None = None
        # Point file name -> its parsed listing. A name says everything about the
        # point's listing, so entries never go stale; recovery lists a long
        # session's thousands of points several times.
        self._names: dict[tuple[str, str], RecoveryPointInfo] = {}
        # Point file -> the SHA-256 of the bytes this store wrote there. Pruning must
        # not delete the newest valid point, so it must know that point is valid; a
        # file still holding exactly what this store wrote is, and comparing a digest
        # costs a fraction of decompressing, checking and validating it again. Any
        # change since (in place, replaced, cut short) gives another digest, and the
        # file is then checked like any other. Timestamps would not do: two writes
        # within one clock tick leave the same mtime.
        self._written: dict[str, bytes] = {}
        self._folders: dict[str, Path] = {}
        # (session, hash) of the file-state chunks known stored intact: written or
        # checked here. Any other is checked before a point refers to it.
        self._chunks: set[tuple[str, str]] = set()
        # session -> seq -> the journal mark of a point read: what the next read
        # of the events after (or just before) that point may skip checking line by line.
        self._marks: dict[str, dict[int, JournalMark]] = {}
        self._mark_count = 0

    def save(self, point: RecoveryPoint) -> RecoveryPointInfo:
        """See :meth:`~.base.Store.save_point`."""
        ids.validate_recovery_id(point.id)
        if ids.session_of_recovery_id(point.id) != point.session_id:
            raise InvalidInput(
                f"recovery point {point.id} names another session than {point.session_id}; "
                "build its id with make_recovery_id(session_id, ...)"
            )
        doc = point.to_wire()
        chunks = file_states.split(doc)
        folder = self._folder(point.session_id)
        name = point_name(point.id, point.seq, point.created, point.trigger)
        path = folder / name
        info = RecoveryPointInfo(
            id=point.id,
            session_id=point.session_id,
            seq=point.seq,
            # What the listing will read back from the file name: milliseconds.
            created=point.created.replace(microsecond=point.created.microsecond // 1000 * 1000),
            trigger=point.trigger,
            location=str(path),
        )
        entry = self._session(point.session_id)
        with entry.lock.exclusive():
            if not entry.journal.path.exists():
                raise SessionNotFound(f"no session {point.session_id} in {self.url}")
            # The point must never cover events that a power failure could still take back.
            entry.journal.flush()
            mark = entry.journal.mark(point.seq)
            if mark is not None:
                doc[JournalMark.KEY] = mark.to_doc()
            data = codec.dump_compressed(doc, self.sealer, "point", point.id)
            ensure_folder(folder)
            existing = self.find(point.session_id, point.id)
            if existing is not None:
                raise DuplicateRecord(
                    f"recovery point {point.id} exists already ({existing[1]}); points are "
                    "never overwritten, save under a new id"
                )
            self._store_chunks(point.session_id, chunks)
            replace_atomically(path, data)
            if len(self._written) >= _MAX_WRITTEN:
                self._written.clear()
            self._written[info.location] = hashlib.sha256(data).digest()
        self._names[(point.session_id, name)] = info  # the listing need not parse it
        if mark is not None:
            self._remember(point.session_id, mark)
        return info

    def load(self, point_id: str) -> RecoveryPoint:
        """See :meth:`~.base.Store.load_point`."""
        session_id = ids.session_of_recovery_id(point_id)
        found = self.find(session_id, point_id)
        if found is None:
            raise RecoveryPointNotFound(f"no recovery point {point_id} in {self.url}")
        return self.read(*found)

    def read(self, info: RecoveryPointInfo, path: Path) -> RecoveryPoint:
        """The point stored at ``path``, checked against the listing its name gives.

        Raises:
            RecoveryPointNotFound: If the file is gone.
            CorruptRecord: If it is damaged or holds another point.
        """
        return self._decode(info, path, self._read_bytes(info, path))

    @staticmethod
    def _read_bytes(info: RecoveryPointInfo, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise RecoveryPointNotFound(f"recovery point {info.id} was just pruned") from None
        except OSError as exc:
            raise store_error(exc, "read", path) from exc

    def _decode(self, info: RecoveryPointInfo, path: Path, data: bytes) -> RecoveryPoint:
        doc = codec.load_compressed(data, str(path), self.sealer, "point", info.id)
        mark = JournalMark.take_from(doc, info.seq)
        folder = self._chunk_folder(info.session_id)
        damage = file_states.join(
            doc,
            lambda ref: self._read_chunk(folder / (ref + _CHUNK_SUFFIX)),
            lambda ref: str(folder / (ref + _CHUNK_SUFFIX)),
            info.id,
        )
        point = validate(RecoveryPoint, doc, path)
        if (point.id, point.session_id, point.seq) != (info.id, info.session_id, info.seq):
            raise CorruptRecord(f"{path}: the point inside does not match its file name", str(path))
        point.damage = damage
        if mark is not None:
            self._remember(point.session_id, mark)
        return point

    def _remember(self, session_id: str, mark: JournalMark) -> None:
        if self._mark_count >= _MAX_MARKS:
            self._marks.clear()
            self._mark_count = 0
        marks = self._marks.setdefault(session_id, {})
        self._mark_count += mark.seq not in marks
        marks[mark.seq] = mark

    def mark(self, session_id: str, seq: int) -> JournalMark | None:
        """The journal mark for a read after event ``seq`` of the session (see
        :func:`~.journal_file.mark_for_read`), if this store read or wrote one."""
        return mark_for_read(self._marks.get(session_id, {}), seq)

    def listing(self, session_id: str) -> list[RecoveryPointInfo]:
        """See :meth:`~.base.Store.list_points`."""
        infos = self._scan(session_id)
        return sorted(infos, key=lambda i: (i.seq, i.created, i.id))

    def prune(self, session_id: str, keep_automatic: int) -> list[str]:
        """See :meth:`~.base.Store.prune_points`."""
        entry = self._session(session_id)
        with entry.lock.exclusive():
            doomed = retention.prunable(self.listing(session_id), keep_automatic, self._is_valid)
            folder = self._folder(session_id)
            # No fsync of the folder: an unlink that a power failure undoes brings
            # back an old, valid point, which the next pruning removes again. Only
            # what is kept must be durable, and it already is.
            for info in doomed:
                self._written.pop(info.location, None)
                try:
                    os.unlink(info.location)
                except FileNotFoundError:
                    continue  # gone already: what retention wanted
                except OSError as exc:
                    raise store_error(exc, "delete old recovery points in", folder) from exc
            if doomed:
                self._collect_chunks(session_id)
        return [info.id for info in doomed]

    # -- file-state chunks (see file_states) ------------------------------

    def _chunk_folder(self, session_id: str) -> Path:
        return self.layout.points.parent / "file-states" / session_id

    def _read_chunk(self, path: Path) -> bytes | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise store_error(exc, "read", path) from exc
        return codec.open_blob(data, self.sealer, "chunk", _chunk_owner(path), str(path))

    def _store_chunks(self, session_id: str, chunks: dict[str, bytes]) -> None:
        """Write the chunks a point is about to refer to, unless stored intact already.

        Called under the session's lock, so pruning cannot delete a chunk
        between its check here and the point that refers to it.
        """
        if not chunks:
            return
        folder = self._chunk_folder(session_id)
        ensure_folder(folder)
        if len(self._chunks) >= _MAX_CHUNKS:
            self._chunks.clear()
        for ref, data in chunks.items():
            if (session_id, ref) in self._chunks:
                continue
            path = folder / (ref + _CHUNK_SUFFIX)
            stored = self._read_chunk(path)
            if stored is None or not file_states.intact(ref, stored):
                # A damaged one is replaced whole.
                replace_atomically(
                    path, codec.seal_blob(data, self.sealer, "chunk", _chunk_owner(path))
                )
            self._chunks.add((session_id, ref))

    def _collect_chunks(self, session_id: str) -> None:
        """Delete the chunks no point of the session refers to any more (under its lock)."""
        folder = self._chunk_folder(session_id)
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise store_error(exc, "list", folder) from exc
        docs = []
        for info in self.listing(session_id):
            try:
                data = self._read_bytes(info, Path(info.location))
                docs.append(codec.load_compressed(data, "", self.sealer, "point", info.id))
            except (CorruptRecord, RecoveryPointNotFound):
                return  # a point that cannot be read may refer to any chunk: keep them all
        stored = {n[: -len(_CHUNK_SUFFIX)] for n in names if n.endswith(_CHUNK_SUFFIX)}
        for ref in file_states.unreferenced(stored, docs):
            if not file_states.is_chunk_name(ref):
                continue
            self._chunks.discard((session_id, ref))
            try:
                os.unlink(folder / (ref + _CHUNK_SUFFIX))
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise store_error(exc, "delete unused file-state chunks in", folder) from exc

    def _is_valid(self, info: RecoveryPointInfo) -> bool:
        path = Path(info.location)
        try:
            data = self._read_bytes(info, path)
        except RecoveryPointNotFound:
            return False
        if self._written.get(info.location) == hashlib.sha256(data).digest():
            return True
        try:
            self._decode(info, path, data)
        except CorruptRecord:
            return False
        return True

    def _folder(self, session_id: str) -> Path:
        folder = self._folders.get(session_id)
        if folder is None:
            if len(self._folders) >= _MAX_FOLDERS:
                self._folders.clear()
            folder = self._folders[session_id] = self.layout.point_folder(session_id)
        return folder

    def _parse(self, session_id: str, folder: str, name: str) -> RecoveryPointInfo | None:
        known = self._names.get((session_id, name))
        if known is None:
            known = parse_point_name(session_id, folder, name)
            if known is not None:
                self._names[(session_id, name)] = known
        return known

    def _scan(self, session_id: str) -> list[RecoveryPointInfo]:
        folder = self._folder(session_id)
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise store_error(exc, "list", folder) from exc
        if len(self._names) > _MAX_POINT_NAMES:
            self._names.clear()
        found = []
        folder_text = str(folder)
        for name in names:
            known = self._parse(session_id, folder_text, name)
            if known is not None:
                found.append(known)
        return found

    def find(self, session_id: str, point_id: str) -> tuple[RecoveryPointInfo, Path] | None:
        """The listing and file of point ``point_id``, or None if it has none."""
        # Only the names starting with the id are parsed: a long session has
        # thousands of points, and every save and load looks one up.
        folder = self._folder(session_id)
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise store_error(exc, "list", folder) from exc
        prefix = point_id + "."
        for name in names:
            if name.startswith(prefix):
                info = self._parse(session_id, str(folder), name)
                if info is not None and info.id == point_id:
                    return info, folder / name
        return None


def _chunk_owner(path: Path) -> str:
    """What a sealed chunk is bound to: its session (the folder) and its name."""
    return f"{path.parent.name}/{path.name}"
