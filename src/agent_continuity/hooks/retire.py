"""Retiring the hooks' spool files once the journal holds them, so the spool stays bounded.

Every record a hook spools is also written to the journal by the next
ingest; the spool file is then only a copy, and an agent session's file
would otherwise grow for as long as the session is resumed. After each
ingest, under the project's spool lock (so no ingest reads meanwhile), a
file whose every byte is ingested and that no hook wrote for
:data:`RETIRE_AFTER` seconds is deleted.

Hooks do not take the project's lock, but each holds an exclusive lock of
the spool file while it writes, and writes only if its name still names the
file it holds (:func:`agent_continuity.hooks.spool.write_if_current`; if
not, it opens the name again, making a new file). The file is deleted under an
exclusive lock of it, skipped if a hook holds it, so no line is ever written
into a deleted file, and none is left unread in one.

A file is idle when no hook wrote it and no ingest advanced its mark for
:data:`RETIRE_AFTER`: the journal has long made durable what the ingest
wrote (a store in ``batched`` mode flushes within a second).

The order of the steps makes a crash at any point safe:

1. the file's mark is rewritten, durably, naming the file by its first
   line's checksum (a mark of an older version names nothing);
2. under the exclusive lock, the file is checked again and deleted; the
   folder is flushed;
3. the mark is deleted. A crash before this leaves a mark that names the
   deleted file: a new file at the same name (another first line) is read
   from its first byte, and the mark goes with the next retirement.
"""

from __future__ import annotations

import fcntl
import os
import time

from agent_continuity.hooks import spool

#: A fully ingested spool file no hook wrote for this long is deleted (a day).
RETIRE_AFTER = 24 * 3600.0


def retire(root: str | os.PathLike[str], *, idle_after: float = RETIRE_AFTER) -> int:
    """Delete the project's fully ingested spool files idle for ``idle_after`` seconds.

    Idle: no hook wrote the file, and no ingest advanced its mark (so the
    journal has long flushed what it holds), for ``idle_after`` seconds. Call
    it holding the project's spool lock, after an ingest. A file that cannot
    be retired is logged and kept.

    Returns:
        How many files were deleted.
    """
    deleted = 0
    now = time.time()
    for path in spool.spool_files(root):
        try:
            deleted += _retire_one(path, now, idle_after)
        except OSError as exc:  # kept: the spool only stays bigger
            spool.log_error(f"could not retire a spool file: {exc!r}", file=path)
    _remove_stray_marks(root)
    return deleted


def _retire_one(path: str, now: float, idle_after: float) -> int:
    """1 if the spool file was idle, fully ingested and is now deleted, else 0."""
    try:
        stat = os.stat(path)
        marked = os.stat(f"{path}.done").st_mtime
    except FileNotFoundError:
        return 0
    size = spool.done_offset(path)
    if stat.st_size > size or now - max(stat.st_mtime, marked) < idle_after:
        return 0
    # The mark, naming the file (an older mark names nothing) and durable
    # before the file goes: a crash from here on leaves a mark that only this
    # file matches. Written before the lock, so hooks wait only for the
    # unlink below; not rewritten if it already says so (its age is kept).
    if spool.read_mark(path) == spool.mark_text(path, size):
        _flush_file(f"{path}.done")
    else:
        spool.mark_done(path, size, durable=True)
    _flush_folder(path)
    fd = os.open(path, os.O_RDWR)  # NFS locks exclusively only what is open for writing
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # a hook is writing it
        held = os.fstat(fd)
        named = os.stat(path)
        if (named.st_dev, named.st_ino) != (held.st_dev, held.st_ino) or held.st_size != size:
            return 0
        os.unlink(path)
    finally:
        os.close(fd)
    _flush_folder(path)
    _unlink(f"{path}.done")
    return 1


def _flush_folder(path: str) -> None:
    _flush_file(os.path.dirname(path))


def _flush_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stray_marks(root: str | os.PathLike[str]) -> None:
    """Delete the marks (and their temporary files) a crash left without a spool file."""
    folder = spool.project_spool(root)
    try:
        names = set(os.listdir(folder))
    except OSError:
        return
    for name in names:
        stem = name.removesuffix(".tmp").removesuffix(".done")
        if stem != name and stem.endswith(".jsonl") and stem not in names:
            try:
                _unlink(os.path.join(folder, name))
            except OSError as exc:
                spool.log_error(f"could not remove a stale spool mark: {exc!r}", file=name)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
