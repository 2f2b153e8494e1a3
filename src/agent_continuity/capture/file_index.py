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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from agent_continuity.model import FileStamp

# Two seconds covers the coarsest common clock (FAT); ext4, APFS and NTFS
# tick far faster, so only files written in the last moments are re-hashed.
RACY_MARGIN_NS = 2_000_000_000

_CHUNK = 1 << 20

ALWAYS_IGNORED = ".git"
#: Folders of generated files skipped outside git, at any depth (git projects
#: follow their own .gitignore instead).
GENERATED_FOLDERS = frozenset(
    {
        "node_modules",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".cache",
        ".hypothesis",
    }
)
#: Outside git, more files than this are not indexed (see CodeContext.index_limit_exceeded).
MAX_INDEXED_FILES = 50_000


class TooManyFiles(Exception):
    """The folder holds more files than the index takes."""


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


def scan_tree(root: Path, skip: PathFilter, limit: int | None = None) -> dict[str, FileStat]:
    """Every regular file and symlink under ``root``, by relative POSIX path.

    Symlinks are recorded, not followed (a link to a folder would otherwise
    loop or leave the project). Folders that cannot be read are skipped.

    Args:
        root: The folder to walk.
        skip: Which relative paths to leave out.
        limit: Give up past this many files (None: no limit).

    Returns:
        Relative path -> stat, in no particular order.

    Raises:
        TooManyFiles: Past ``limit`` files.
    """
    found: dict[str, FileStat] = {}
    stack = [(str(root), "")]
    while stack:
        folder, rel_folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                listing = list(entries)
        except OSError:
            continue
        for entry in listing:
            rel = rel_folder + entry.name
            # Parents were checked on the way down, so an exact match suffices.
            if entry.name == ALWAYS_IGNORED or rel in skip.folders or not json_safe(rel):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in GENERATED_FOLDERS:
                        stack.append((entry.path, rel + "/"))
                    continue
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # vanished while we looked
            mode = st.st_mode
            if limit is not None and len(found) >= limit:
                raise TooManyFiles(f"more than {limit} files under {root}")
            if stat.S_ISREG(mode):
                found[rel] = FileStat(st.st_size, st.st_mtime_ns)
            elif stat.S_ISLNK(mode):
                found[rel] = FileStat(st.st_size, st.st_mtime_ns, True)
    return found


def stat_file(path: Path) -> FileStat | None:
    """``lstat`` of one path as a :class:`FileStat`; None when it does not exist.

    A path that exists but cannot be examined (a folder without search
    permission on the way) gets size 0 and mtime 0: present, content unknown.
    """
    try:
        st = path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return FileStat(0, 0)
    return FileStat(st.st_size, st.st_mtime_ns, stat.S_ISLNK(st.st_mode))


def sha256_of_file(path: Path) -> str:
    """Hex sha256 of a file's bytes (following a symlink).

    Plain ``os.open``/``os.read``: on a tree of small files the per-file cost
    of a buffered file object is larger than the hashing itself.

    Raises:
        OSError: The file cannot be read.
    """
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        while chunk := os.read(fd, _CHUNK):
            digest.update(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest()


def sha256_of_link(path: Path) -> str:
    """Hex sha256 of ``symlink\0<target>``: a link is recorded, not followed.

    Raises:
        OSError: The link cannot be read.
    """
    return hashlib.sha256(b"symlink\0" + os.fsencode(os.readlink(path))).hexdigest()


class StampCache:
    """File stamps remembered by path, reused while size and mtime still match.

    Reusing the stamp object itself, not just its digest, is what makes a
    warm snapshot of 100,000 files cheap: no model is built for a file that
    did not change. Stamps handed out are shared, so treat them as read-only.
    Not thread-safe; the observer serialises its calls.
    """

    def __init__(self) -> None:
        self._stamps: dict[str, FileStamp] = {}

    def __len__(self) -> int:
        return len(self._stamps)

    def get(self, path: str, st: FileStat) -> FileStamp | None:
        """The remembered stamp of ``path`` if its size and mtime have not changed."""
        stamp = self._stamps.get(path)
        if stamp is not None and stamp.size == st.size and stamp.mtime_ns == st.mtime_ns:
            return stamp
        return None

    def put(self, path: str, stamp: FileStamp, hashed_at_ns: int) -> None:
        """Remember a stamp whose digest was computed at ``hashed_at_ns`` (``time.time_ns()``).

        Files modified within :data:`RACY_MARGIN_NS` of the hashing are not
        remembered, so they are hashed again next time.
        """
        if stamp.digest is not None and trustworthy(stamp.mtime_ns, hashed_at_ns):
            self._stamps[path] = stamp
        else:
            self._stamps.pop(path, None)

    def keep_only(self, paths: Mapping[str, object]) -> None:
        """Forget every path not in ``paths`` (files that no longer exist)."""
        for path in self._stamps.keys() - paths.keys():
            del self._stamps[path]


class SavedStamps:
    """The stamps of a saved code context, reusable while a file's stat matches.

    This is what lets a new process compare with a saved context without
    hashing every file again: only files whose size or mtime moved are read.

    Args:
        files: The saved stamps by relative path.
        hashed_at_ns: When they were taken (the context's ``observed_at``).
    """

    def __init__(self, files: Mapping[str, FileStamp] | None = None, hashed_at_ns: int = 0):
        self._files: Mapping[str, FileStamp] = files or {}
        self._settled_before = hashed_at_ns - RACY_MARGIN_NS

    def get(self, path: str, st: FileStat) -> FileStamp | None:
        """The saved stamp of ``path`` if it still describes the file."""
        stamp = self._files.get(path)
        if (
            stamp is None
            or stamp.digest is None
            or stamp.size != st.size
            or stamp.mtime_ns != st.mtime_ns
            or st.mtime_ns >= self._settled_before
        ):
            return None
        return stamp


def trustworthy(mtime_ns: int, hashed_at_ns: int) -> bool:
    """Whether a digest taken at ``hashed_at_ns`` may stand for this mtime later."""
    return mtime_ns < hashed_at_ns - RACY_MARGIN_NS
