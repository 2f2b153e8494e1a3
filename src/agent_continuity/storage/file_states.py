"""A point's file stamps stored once by hash: chunks shared between recovery points.

A code context lists one stamp per file: every dirty file in git (untracked
ones included), every file outside it. A project with 5,000 untracked files
makes that 500 KB of JSON, and a point every turn would copy it every turn.
So the stores keep a large ``files`` map apart from the point:

- the paths, sorted, are cut into chunks where a path's CRC-32 is a multiple
  of :data:`CHUNK_SPREAD` (so about that many files per chunk, and a file
  added or removed moves only the boundaries next to it);
- each chunk is ``{"files": {path: stamp}}`` as canonical JSON, stored
  gzip-compressed under the SHA-256 of that JSON, once per session;
- the point's document holds ``codeContext.fileChunks``, the list of those
  hashes, in place of ``codeContext.files`` (inside the point's checksum).

A point taken after one file changed writes one new chunk and shares the
rest. Reading a chunk back checks its bytes against its name: a chunk that
is missing or damaged is reported (a :class:`~agent_continuity.model.Damage`
of kind ``file-state``) and the point's code context is then unknown, never
partly filled in; recovery says so and does not compare files. Maps of at
most :data:`INLINE_FILES` files stay inside the point, as before.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import zlib
from collections.abc import Callable, Iterable
from typing import Any

from agent_continuity.checksums import canonical
from agent_continuity.model import Damage

#: The key of the chunk list inside a stored point's ``codeContext``.
KEY = "fileChunks"
#: Maps of this many files or fewer stay inside the point.
INLINE_FILES = 64
#: About this many files per chunk.
CHUNK_SPREAD = 128
#: A chunk is cut here whatever the paths' CRC-32 say.
MAX_CHUNK = 1024
_HASH = re.compile(r"[0-9a-f]{64}")
_GZIP_LEVEL, _GZIP_WBITS = 6, 16 + 15


def split(doc: dict[str, Any]) -> dict[str, bytes]:
    """Move a point document's file stamps into chunks; return the chunks by hash.

    ``doc`` (a point's wire form) is changed in place: ``codeContext.files``
    gives way to ``codeContext.fileChunks``. Small maps are left alone (and
    nothing is returned).
    """
    code = doc.get("codeContext")
    files = code.get("files") if isinstance(code, dict) else None
    if not isinstance(code, dict) or not isinstance(files, dict) or len(files) <= INLINE_FILES:
        return {}
    chunks: dict[str, bytes] = {}
    refs: list[str] = []
    current: dict[str, Any] = {}

    def cut() -> None:
        body = canonical({"files": current})
        digest = hashlib.sha256(body).hexdigest()
        refs.append(digest)
        if digest not in chunks:
            gz = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
            chunks[digest] = gz.compress(body) + gz.flush()

    for path in sorted(files):
        current[path] = files[path]
        if len(current) >= MAX_CHUNK or zlib.crc32(path.encode()) % CHUNK_SPREAD == 0:
            cut()
            current = {}
    if current:
        cut()
    del code["files"]
    code[KEY] = refs
    return chunks


def refs_of(doc: dict[str, Any]) -> list[str]:
    """The chunk hashes a stored point document refers to (none for an inline map)."""
    code = doc.get("codeContext")
    refs = code.get(KEY) if isinstance(code, dict) else None
    if not isinstance(refs, list):
        return []
    return [ref for ref in refs if isinstance(ref, str)]


def is_chunk_name(name: str) -> bool:
    """Whether ``name`` is a chunk's hash."""
    return _HASH.fullmatch(name) is not None


def join(
    doc: dict[str, Any],
    read: Callable[[str], bytes | None],
    where: Callable[[str], str],
    point_id: str,
) -> list[Damage]:
    """Put the file stamps of a stored point document back from its chunks.

    Args:
        doc: The point's document, changed in place.
        read: The stored bytes of a chunk by hash, None when there are none.
        where: Where a chunk is stored, for messages.
        point_id: The point, for messages.

    Returns:
        What was found damaged or missing; the code context is then emptied
        (unknown), never partly filled in.
    """
    code = doc.get("codeContext")
    if not isinstance(code, dict) or KEY not in code:
        return []
    refs = code.pop(KEY)
    files: dict[str, Any] = {}
    damage: list[Damage] = []
    if not isinstance(refs, list) or not all(isinstance(r, str) and is_chunk_name(r) for r in refs):
        damage.append(
            Damage(
                location=point_id,
                kind="file-state",
                detail=f"recovery point {point_id} names its file-state chunks wrongly",
            )
        )
        refs = []
    for ref in refs:
        problem = _load(ref, read(ref), files)
        if problem is not None:
            damage.append(
                Damage(
                    location=where(ref),
                    kind="file-state",
                    detail=f"file-state chunk {ref[:12]} of recovery point {point_id} {problem}",
                )
            )
    if damage:
        # Unknown, not partial: a half-filled map would report the missing files
        # as changed (or miss changes) when recovery compares the project with it.
        doc["codeContext"] = {}
    else:
        code["files"] = files
    return damage


def _load(ref: str, data: bytes | None, into: dict[str, Any]) -> str | None:
    """Add the stamps of chunk ``ref`` (stored as ``data``) to ``into``; None, or what is wrong."""
    if data is None:
        return "is missing"
    try:
        body = gzip.decompress(data)
    except (OSError, EOFError, zlib.error):
        return "is damaged (not gzip)"
    if hashlib.sha256(body).hexdigest() != ref:
        return "fails its checksum"
    try:
        files = json.loads(body)["files"]
    except (ValueError, KeyError, TypeError):
        return "cannot be decoded"
    if not isinstance(files, dict):
        return "cannot be decoded"
    into.update(files)
    return None


def intact(ref: str, data: bytes) -> bool:
    """Whether ``data`` is exactly the chunk ``ref``."""
    return _load(ref, data, {}) is None


def unreferenced(stored: Iterable[str], docs: Iterable[dict[str, Any]]) -> set[str]:
    """The stored chunks that none of the point documents ``docs`` refers to."""
    kept: set[str] = set()
    for doc in docs:
        kept.update(refs_of(doc))
    return set(stored) - kept
