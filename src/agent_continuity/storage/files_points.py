"""The files store's recovery points: one gzip JSON file per point.

``snapshots/recovery-points/SESSION-…/RECOVERY-….seqN.TIME.TRIGGER.json.gz``:
the file name carries the point's listing, so listing a session's points
reads a folder, not the points. A point is written atomically (temporary
file, fsync, rename, fsync of the folder) under the session's lock, after
the journal it covers is flushed, and never overwritten.
"""

from __future__ import annotations

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

from . import codec, retention
from .atomic import FileLock, ensure_folder, replace_atomically, store_error
from .files_documents import validate
from .files_layout import Layout, parse_point_file_name, parse_point_name, point_file_name
from .journal_file import JournalHandle

_MAX_POINT_NAMES = 100_000  # parsed point names remembered per store


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
        # Point file name -> its parsed listing. A name says everything about the
        # point's listing, so entries never go stale; recovery lists a long
        # session's thousands of points several times.
        self._names: dict[tuple[str, str], RecoveryPointInfo] = {}

    def save(self, point: RecoveryPoint) -> RecoveryPointInfo:
        """See :meth:`~.base.Store.save_point`."""
        ids.validate_recovery_id(point.id)
        if ids.session_of_recovery_id(point.id) != point.session_id:
            raise InvalidInput(
                f"recovery point {point.id} names another session than {point.session_id}; "
                "build its id with make_recovery_id(session_id, ...)"
            )
        data = codec.dump_compressed(point.to_wire())
        folder = self.layout.point_folder(point.session_id)
        info = RecoveryPointInfo(
            id=point.id,
            session_id=point.session_id,
            seq=point.seq,
            created=point.created,
            trigger=point.trigger,
        )
        path = folder / point_file_name(info)
        entry = self._session(point.session_id)
        with entry.lock.exclusive():
            if not entry.journal.path.exists():
                raise SessionNotFound(f"no session {point.session_id} in {self.url}")
            # The point must never cover events that a power failure could still take back.
            entry.journal.flush()
            ensure_folder(folder)
            existing = self.find(point.session_id, point.id)
            if existing is not None:
                raise DuplicateRecord(
                    f"recovery point {point.id} exists already ({existing[1]}); points are "
                    "never overwritten, save under a new id"
                )
            replace_atomically(path, data)
        parsed = parse_point_file_name(point.session_id, path)
        assert parsed is not None  # we just built this name
        return parsed

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
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise RecoveryPointNotFound(f"recovery point {info.id} was just pruned") from None
        except OSError as exc:
            raise store_error(exc, "read", path) from exc
        point = validate(RecoveryPoint, codec.load_compressed(data, str(path)), path)
        if (point.id, point.session_id, point.seq) != (info.id, info.session_id, info.seq):
            raise CorruptRecord(f"{path}: the point inside does not match its file name", str(path))
        return point

    def listing(self, session_id: str) -> list[RecoveryPointInfo]:
        """See :meth:`~.base.Store.list_points`."""
        infos = self._scan(session_id)
        return sorted(infos, key=lambda i: (i.seq, i.created, i.id))

    def prune(self, session_id: str, keep_automatic: int) -> list[str]:
        """See :meth:`~.base.Store.prune_points`."""
        entry = self._session(session_id)
        with entry.lock.exclusive():
            doomed = retention.prunable(self.listing(session_id), keep_automatic, self._is_valid)
            folder = self.layout.point_folder(session_id)
            # No fsync of the folder: an unlink that a power failure undoes brings
            # back an old, valid point, which the next pruning removes again. Only
            # what is kept must be durable, and it already is.
            try:
                for info in doomed:
                    Path(info.location).unlink(missing_ok=True)
            except OSError as exc:
                raise store_error(exc, "delete old recovery points in", folder) from exc
        return [info.id for info in doomed]

    def _is_valid(self, info: RecoveryPointInfo) -> bool:
        try:
            self.load(info.id)
        except (CorruptRecord, RecoveryPointNotFound):
            return False
        return True

    def _scan(self, session_id: str) -> list[RecoveryPointInfo]:
        folder = self.layout.point_folder(session_id)
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
            known = self._names.get((session_id, name))
            if known is None:
                known = parse_point_name(session_id, folder_text, name)
                if known is None:
                    continue
                self._names[(session_id, name)] = known
            found.append(known)
        return found

    def find(self, session_id: str, point_id: str) -> tuple[RecoveryPointInfo, Path] | None:
        """The listing and file of point ``point_id``, or None if it has none."""
        # Only the names starting with the id are parsed: a long session has
        # thousands of points, and every save and load looks one up.
        folder = self.layout.point_folder(session_id)
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise store_error(exc, "list", folder) from exc
        prefix = point_id + "."
        for name in names:
            if name.startswith(prefix):
                info = parse_point_file_name(session_id, folder / name)
                if info is not None and info.id == point_id:
                    return info, folder / name
        return None
