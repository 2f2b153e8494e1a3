"""Durable file primitives for the files store: complete writes, atomic replace, locks.

Every write of the files backend goes through these few functions, so the
ordering rules of DESIGN.md §3 live in one place:

* a whole file is replaced atomically: temporary file in the same folder,
  fsync, ``os.replace``, fsync the folder;
* an appended record goes out in *one* ``os.write`` of complete lines, so
  ``kill -9`` can never leave half a line; a failed append is cut back off
  with ``ftruncate`` so the file is as it was;
* every ``OSError`` leaves here as a :class:`~agent_continuity.errors.StoreError`
  whose message says what to do.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agent_continuity.errors import StoreError

_TEMP_SUFFIX = ".tmp"
_counter = itertools.count()
# Private by default (issue 17): a store holds what users tell their agents.
# Modes given to mkdir/open are only ever narrowed by the umask, so these hold
# whatever the umask is.
FILE_MODE = 0o600
FOLDER_MODE = 0o700

_ADVICE = {
    errno.ENOSPC: "the disk is full; free some space and try again",
    errno.EDQUOT: "the disk quota is used up; free some space and try again",
    errno.EACCES: "permission denied; make the folder writable by this user or choose "
    "another store with --store",
    errno.EPERM: "operation not permitted; make the folder writable by this user or choose "
    "another store with --store",
    errno.EROFS: "the file system is read-only; choose another store with --store",
    errno.EIO: "the disk reported an I/O error; check the device, then run `continuity verify`",
    errno.EMFILE: "too many open files; close other programs or raise the limit (ulimit -n)",
    errno.ENFILE: "too many open files system-wide; close other programs and try again",
}


def store_error(exc: OSError, action: str, path: Path | str) -> StoreError:
    """A StoreError for ``exc`` that names the file and what to do.

    Args:
        exc: The operating-system error.
        action: What was being done, e.g. ``"append to"``.
        path: The file or folder concerned.
    """
    advice = _ADVICE.get(exc.errno or 0, "check the folder and its permissions, then try again")
    reason = exc.strerror or str(exc)
    return StoreError(f"could not {action} {path}: {reason}; {advice}")


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary file left by :func:`replace_atomically`."""
    return name.startswith(".") and name.endswith(_TEMP_SUFFIX)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data``; loop only because the kernel may write less."""
    written = os.write(fd, data)
    if written < len(data):
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view) :]


def fsync_folder(folder: Path) -> None:
    """Make a folder's entries (a rename, a new file) durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_folder(folder: Path) -> None:
    """Create ``folder`` and missing parents, each one made durable in its parent.

    Raises:
        StoreError: If a folder cannot be created.
    """
    missing: list[Path] = []
    current = folder
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=FOLDER_MODE, exist_ok=True)
            fsync_folder(path.parent)
        except OSError as exc:
            raise store_error(exc, "create the folder", path) from exc


def make_private(path: Path, mode: int) -> bool:
    """Narrow ``path`` to ``mode`` when others (group, world) may use it.

    For stores made before they were private by default, or by hand. Only
    the owner may change a mode, so a path of another user is left as it is.

    Returns:
        True when the mode was changed.
    """
    try:
        current = path.stat().st_mode & 0o777
        if current & 0o077 == 0 or path.stat().st_uid != os.geteuid():
            return False
        os.chmod(path, mode)
    except OSError:
        return False  # gone, or not ours: opening it reports what matters
    return True


def replace_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file, whole.

    Raises:
        StoreError: If the write failed; ``path`` is then untouched and no
            temporary file is left behind.
    """
    temp = path.with_name(f".{path.name}.{os.getpid()}.{next(_counter)}{_TEMP_SUFFIX}")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
        fsync_folder(path.parent)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise store_error(exc, "write", path) from exc


def append_durably(
    fd: int, path: Path, size: int, data: bytes, *, sync: bool, ends_clean: bool | None = None
) -> int:
    """Append ``data`` (complete lines) at ``size``, the file's current length.

    The caller holds the file's lock and knows its length. When the file
    does not end with a newline (a tail torn by power loss), a newline goes
    first, so the fragment stays one detectable damaged line instead of
    merging with the new record.

    Args:
        fd: The file, opened with ``O_APPEND`` and readable.
        path: Its path, for messages.
        size: Its current length in bytes.
        data: One or more complete, newline-terminated lines.
        sync: Whether to ``fdatasync`` before returning.
        ends_clean: Whether the file is known to end with a newline (or be
            empty); None reads its last byte.

    Returns:
        The new length of the file.

    Raises:
        StoreError: If the write failed; the file is cut back to ``size``.
    """
    if ends_clean is None:
        ends_clean = size == 0 or os.pread(fd, 1, size - 1) == b"\n"
    if not ends_clean:
        data = b"\n" + data
    try:
        write_all(fd, data)
        if sync:
            os.fdatasync(fd)
    except BaseException as exc:
        _cut_back(fd, path, size, sync)
        if isinstance(exc, OSError):
            raise store_error(exc, "append to", path) from exc
        raise
    return size + len(data)


def _cut_back(fd: int, path: Path, size: int, sync: bool) -> None:
    try:
        os.ftruncate(fd, size)
        if sync:
            os.fdatasync(fd)
    except OSError as exc:
        # The partial line stays; readers report it as a damaged line, never as an event.
        raise store_error(exc, "undo a failed append to", path) from exc


class FileLock:
    """An ``flock`` on a lock file that also excludes other threads of this process.

    ``flock`` belongs to an open file description, so two threads sharing
    one descriptor would not exclude each other, and a shared request from
    one thread would silently downgrade another thread's exclusive lock.
    The re-entrant mutex in front prevents both; nested use by the holding
    thread is allowed and keeps the outer mode. ``with lock:`` holds it
    exclusively (this sits on the append path, hence no generator).

    ``release(keep=True)`` lets other threads in but keeps the ``flock``, so
    no other process can take it until the next plain release (the owner
    must make sure one comes soon); the next ``acquire`` then costs no
    system call and sets :attr:`resumed`: nobody outside this process held
    the lock in between.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mutex = threading.RLock()
        self._fd: int | None = None
        self._depth = 0
        self._mode = fcntl.LOCK_UN
        self._kept = False  # the flock is held though no thread holds the lock
        # Set by acquire: the flock was kept since the last release, held without a gap.
        self.resumed = False

    def acquire(self, mode: int = fcntl.LOCK_EX) -> None:
        """Take the lock (``fcntl.LOCK_EX`` or ``fcntl.LOCK_SH``); wait while others hold it.

        Raises:
            StoreError: If the lock file cannot be opened or locked.
        """
        self._mutex.acquire()
        if self._depth == 0:
            # A kept lock is exclusive, which serves a shared request as well.
            self.resumed = self._kept
            if not self._kept:
                try:
                    if self._fd is None:
                        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
                    fcntl.flock(self._fd, mode)
                except OSError as exc:
                    self._mutex.release()
                    raise store_error(exc, "lock", self.path) from exc
                self._mode = mode
        self._depth += 1

    def release(self, keep: bool = False) -> None:
        """Give back one level of :meth:`acquire`.

        Args:
            keep: Keep holding an exclusive ``flock`` for this process when the
                last level goes (see the class documentation).
        """
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            self._kept = keep and self._mode == fcntl.LOCK_EX
            if not self._kept:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._mutex.release()

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def exclusive(self) -> FileLock:
        """Hold the lock alone (writers): ``with lock.exclusive(): ...``."""
        return self

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the lock together with other readers."""
        self.acquire(fcntl.LOCK_SH)
        try:
            yield
        finally:
            self.release()

    def close(self) -> None:
        """Close the lock file (the lock must not be held)."""
        with self._mutex:
            if self._fd is not None and self._depth == 0:
                os.close(self._fd)  # which gives up a kept flock too
                self._fd = None
                self._kept = False
