"""Retiring the hooks' spool files once the journal holds them, so the spool stays bounded.

Every record a hook spools is also written to the journal by the next
ingest; the spool file is then only a copy, and an agent session's file
would otherwise grow for as long as the session is resumed. After each
ingest, under the project's spool lock (so no ingest reads meanwhile), a
file whose every byte is ingested and that no hook wrote for
:data:`RETIRE_AFTER` seconds is deleted.

Hooks do not take the project's lock, but each holds a shared lock of the
spool file while it writes, and writes only if the file it holds is still
linked (:func:`agent_continuity.hooks.spool.write_if_linked`; if not, it
opens the name again, making a new file). The file is deleted under an
exclusive lock of it, skipped if a hook holds it, so no line is ever written
into a deleted file, and none is left unread in one.

The order of the steps makes a crash at any point safe:

1. the file's mark is rewritten, durably, naming the file by its first
   line's checksum (a mark of an older version names nothing);
2. the file is deleted, and its folder flushed;
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
    """Delete the project's fully ingested spool files that no hook wrote for ``idle_after`` s.

    Call it holding the project's spool lock, after an ingest.

    Returns:
        How many files were deleted.
    """
    deleted = 0
    now = time.time()
    for path in spool.spool_files(root):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a hook is writing it
            stat = os.fstat(fd)
            if (
                stat.st_nlink == 0
                or stat.st_size > spool.done_offset(path)
                or now - stat.st_mtime < idle_after
            ):
                continue
            spool.mark_done(path, stat.st_size, durable=True)
            os.unlink(path)
            _flush_folder(path)
            _unlink(f"{path}.done")
            deleted += 1
        finally:
            os.close(fd)
    _remove_stray_marks(root)
    return deleted


def _flush_folder(path: str) -> None:
    fd = os.open(os.path.dirname(path), os.O_RDONLY)
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
            _unlink(os.path.join(folder, name))


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
