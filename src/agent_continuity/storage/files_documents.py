"""The files store's checksummed JSON documents and its recovery log, read and written.

Documents (registry, active list, leases, context snapshots, emergency
backups) are whole files replaced atomically; the recovery log is one
checksummed line per recovery, appended. Reading either reports damage as
:class:`~agent_continuity.errors.CorruptRecord` (or :class:`~.model.Damage`
for a log line), never as an empty result.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agent_continuity.errors import CorruptRecord, StoreError
from agent_continuity.model import Damage

from . import codec
from .atomic import FILE_MODE, append_durably, fsync_folder, store_error
from .envelope import Sealer
from .journal_file import split_lines

_Model = TypeVar("_Model", bound=BaseModel)


def read_model(
    path: Path, model: type[_Model], sealer: Sealer | None = None, kind: str = ""
) -> _Model | None:
    """A checksummed document as ``model``; None when absent, CorruptRecord when damaged.

    With ``sealer`` (an encrypted store) the document is opened first, bound
    to ``kind`` and the session its file is named after.
    """
    doc = read_document(path)
    if doc is None:
        return None
    if kind:
        doc = codec.open_document(doc, sealer, kind, path.name.split(".")[0], str(path))
    return validate(model, doc, path)


def read_document(path: Path) -> dict[str, Any] | None:
    """A checksummed document without its checksum; None when absent.

    Raises:
        CorruptRecord: If it fails its checksum.
        StoreError: If it cannot be read.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise store_error(exc, "read", path) from exc
    try:
        return codec.load_document(data, str(path))
    except CorruptRecord as exc:
        raise CorruptRecord(
            f"{exc.message}; run `continuity verify --repair` to move it aside", str(path)
        ) from None


def validate(model: type[_Model], doc: dict[str, Any], path: Path) -> _Model:
    """``doc`` (read from ``path``) as ``model``.

    Raises:
        CorruptRecord: If it passed its checksum but is not a ``model``.
    """
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise CorruptRecord(
            f"{path}: passes its checksum but is not a {model.__name__} "
            f"({exc.error_count()} problems); run `continuity verify --repair`",
            str(path),
        ) from None


def append_log_line(path: Path, entry: dict[str, Any], sealer: Sealer | None = None) -> None:
    """Append one checksummed line to the recovery log (the caller holds the registry lock).

    Raises:
        StoreError: If it could not be written; a log file created for it is removed again.
    """
    # One line per entry, checksummed the way the codec seals documents.
    sealed = json.loads(codec.dump_document(entry, sealer, "log"))
    line = json.dumps(sealed, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    try:
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, FILE_MODE)
    except OSError as exc:
        raise store_error(exc, "open", path) from exc
    try:
        append_durably(fd, path, os.fstat(fd).st_size, line, sync=True)
        if created:
            fsync_folder(path.parent)
    except (OSError, StoreError) as exc:
        if created:  # a failed write leaves the store as it was: no empty log
            path.unlink(missing_ok=True)
        if isinstance(exc, StoreError):
            raise
        raise store_error(exc, "append to", path) from exc
    finally:
        os.close(fd)


def read_log(path: Path, sealer: Sealer | None = None) -> tuple[list[dict[str, Any]], list[Damage]]:
    """The recovery log's intact entries, and a Damage for each line that is not.

    Raises:
        StoreError: If it cannot be read.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        raise store_error(exc, "read", path) from exc
    entries: list[dict[str, Any]] = []
    damage: list[Damage] = []
    for line in split_lines(data):
        try:
            entries.append(codec.load_sealed_document(line.data, str(path), sealer, "log"))
        except CorruptRecord as exc:
            damage.append(
                Damage(location=str(path), kind="checksum", detail=exc.message, offset=line.offset)
            )
    return entries, damage
