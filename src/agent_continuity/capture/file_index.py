"""A stat index of a folder tree, and the digest cache that keeps it cheap.

Outside git the observer records every file under the project root. Hashing
100,000 files on every save would take seconds, so a digest is reused
whenever a file's size and modification time still match the ones it was
computed for, either from an earlier call of the same observer
(:class:`DigestCache`) or from the saved code context being compared with.

A match is trusted only when the file had been left alone for a while before
it was hashed (:data:`RACY_MARGIN_NS`): a file rewritten with the same size
within one tick of the file system's clock keeps its modification time, and
git's "racy clean" problem would otherwise make us miss the change.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import NamedTuple

# Two seconds covers the coarsest common clock (FAT); ext4, APFS and NTFS
# tick far faster, so only files written in the last moments are re-hashed.
RACY_MARGIN_NS = 2_000_000_000

_CHUNK = 1 << 20

ALWAYS_IGNORED = ".git"


class FileStat(NamedTuple):
    """What ``lstat`` says about one file."""

    size: int
    mtime_ns: int
    is_link: bool = False


@dataclass(frozen=True)
class PathFilter:
    """Decides which relative paths the observer skips.

    ``.git`` is skipped at any depth (submodules, nested repositories);
    every folder in ``folders`` is skipped with everything under it.

    Attributes:
        folders: Relative POSIX folder paths, without a trailing slash.
    """

    folders: frozenset[str] = frozenset()

    @classmethod
    def from_patterns(cls, root: Path, folders: Iterable[str]) -> PathFilter:
        """Normalise folder names given relative to ``root`` (or absolute under it)."""
        normalised: set[str] = set()
        for folder in folders:
            path = Path(folder)
            if path.is_absolute():
                try:
                    path = path.resolve().relative_to(root)
                except ValueError:
                    continue  # outside the project: nothing of ours to skip
            text = PurePosixPath(path.as_posix()).as_posix().strip("/")
            if text and text != ".":
                normalised.add(text)
        return cls(frozenset(normalised))

    def excluded(self, rel: str) -> bool:
        """Whether ``rel`` (a relative POSIX path) is skipped."""
        if ALWAYS_IGNORED in rel.split("/"):
            return True
        return any(rel == f or rel.startswith(f + "/") for f in self.folders)


def json_safe(name: str) -> bool:
    """Whether a path can go into a JSON document (valid UTF-8, no surrogate escapes)."""
    # Names that are not valid UTF-8 arrive with surrogate escapes; they
    # cannot be written to a JSON document, so the index leaves them out.
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def scan_tree(root: Path, skip: PathFilter) -> dict[str, FileStat]:
    """Every regular file and symlink under ``root``, by relative POSIX path.

    Symlinks are recorded, not followed (a link to a folder would otherwise
    loop or leave the project). Folders that cannot be read are skipped.

    Args:
        root: The folder to walk.
        skip: Which relative paths to leave out.

    Returns:
        Relative path -> stat, in no particular order.
    """
    return dict(_walk(str(root), skip))


def _walk(top: str, skip: PathFilter) -> Iterator[tuple[str, FileStat]]:
    stack = [(top, "")]
    while stack:
        folder, rel_folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            rel = rel_folder + entry.name
            # Parents were checked on the way down, so an exact match suffices.
            if entry.name == ALWAYS_IGNORED or rel in skip.folders or not json_safe(rel):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, rel + "/"))
                    continue
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # vanished while we looked
            if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                yield rel, FileStat(st.st_size, st.st_mtime_ns, stat.S_ISLNK(st.st_mode))


def stat_file(path: Path) -> FileStat | None:
    """``lstat`` of one path as a :class:`FileStat`; None when it does not exist."""
    try:
        st = path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return FileStat(st.st_size, st.st_mtime_ns, stat.S_ISLNK(st.st_mode))


def sha256_of_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, or of ``symlink\\0<target>`` for a symlink.

    Raises:
        OSError: The file cannot be read.
    """
    if path.is_symlink():
        return hashlib.sha256(b"symlink\0" + os.fsencode(os.readlink(path))).hexdigest()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class DigestCache:
    """Digests remembered by path, size and modification time.

    Not thread-safe; the observer serialises its calls.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[int, int, str]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, path: str, st: FileStat) -> str | None:
        """The remembered digest of ``path`` if its stat has not changed."""
        entry = self._entries.get(path)
        if entry is not None and entry[0] == st.size and entry[1] == st.mtime_ns:
            return entry[2]
        return None

    def put(self, path: str, st: FileStat, digest: str, hashed_at_ns: int) -> None:
        """Remember a digest computed at ``hashed_at_ns`` (``time.time_ns()``).

        Files modified within :data:`RACY_MARGIN_NS` of the hashing are not
        remembered, so they are hashed again next time.
        """
        if trustworthy(st.mtime_ns, hashed_at_ns):
            self._entries[path] = (st.size, st.mtime_ns, digest)
        else:
            self._entries.pop(path, None)

    def keep_only(self, paths: Mapping[str, object] | set[str]) -> None:
        """Forget every path not in ``paths`` (files that no longer exist)."""
        for path in [p for p in self._entries if p not in paths]:
            del self._entries[path]


def trustworthy(mtime_ns: int, hashed_at_ns: int) -> bool:
    """Whether a digest taken at ``hashed_at_ns`` may stand for this mtime later."""
    return mtime_ns < hashed_at_ns - RACY_MARGIN_NS
