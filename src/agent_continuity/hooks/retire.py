"""Retiring the hooks' spool files once the journal holds them, so the spool stays bounded.

Every record a hook spools is also written to the journal by the next
ingest; the spool file is then only a copy, and an agent session's file
would otherwise grow for as long as the session is resumed. After each
ingest, under the project's spool lock (so no ingest reads meanwhile), a
file whose every byte is ingested and that no hook wrote for
:data:`RETIRE_AFTER` seconds is retired, then deleted :data:`RETIRED_GRACE`
seconds later:

1. its ``.done`` mark (offset and inode) is written for the retired name;
2. it is renamed ``<name>.retired-<ns>.jsonl``; a hook of the same agent
   session creates a new file at the old name, whose inode no mark names, so
   it is read from its first byte;
3. the old ``.done`` is removed (a crash before that leaves it naming the
   retired file's inode: it is ignored, and removed later).

Hooks do not take the lock: one that opened the file just before the rename
writes into the retired file. A retired file is read like any other (before
the new one of its session), so such a record is ingested too, and deletion
waits until neither the rename nor a write happened for the grace period.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from agent_continuity.hooks import spool

#: A fully ingested spool file no hook wrote for this long is retired (a day).
RETIRE_AFTER = 24 * 3600.0
#: A retired file is deleted this long after its rename and its last write.
#: A hook writes right after it opens the file; a minute covers a slow one.
RETIRED_GRACE = 60.0


def retire(
    root: str | os.PathLike[str],
    *,
    idle_after: float = RETIRE_AFTER,
    grace: float = RETIRED_GRACE,
) -> int:
    """Retire the project's idle, fully ingested spool files; delete those retired long enough.

    Call it holding the project's spool lock, after an ingest.

    Args:
        root: The project.
        idle_after: Seconds without a write before a file is retired.
        grace: Seconds after the rename, and after the last write, before deletion.

    Returns:
        How many retired files were deleted.
    """
    deleted = 0
    now = time.time()
    for path in spool.spool_files(root):
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            continue
        if stat.st_size > spool.done_offset(path):
            continue  # records wait for the journal
        retired_at = _retired_at(path)
        if retired_at is None:
            if now - stat.st_mtime >= idle_after:
                _rename(path, stat.st_size)
        elif now - retired_at >= grace and now - stat.st_mtime >= grace:
            _delete(path, stat.st_ino)
            deleted += 1
    _remove_stray_marks(root, now, grace)
    return deleted


def _retired_at(path: str) -> float | None:
    """When a retired file was retired (from its name); None for a live one."""
    name = os.path.basename(path)
    if spool.RETIRED not in name:
        return None
    stamp = name.rsplit(spool.RETIRED, 1)[1].removesuffix(".jsonl")
    try:
        return int(stamp) / 1e9
    except ValueError:
        return 0.0  # not ours to date: old enough


def _rename(path: str, size: int) -> None:
    stem = path.removesuffix(".jsonl")
    retired = f"{stem}{spool.RETIRED}{time.time_ns()}.jsonl"
    spool.mark_done(path, size, done=f"{retired}.done")
    os.rename(path, retired)
    _unlink(f"{path}.done")


def _delete(path: str, inode: int) -> None:
    live = f"{path.split(spool.RETIRED, 1)[0]}.jsonl.done"
    if _marked_inode(live) == inode:  # a crash between rename and removal left it
        _unlink(live)
    _unlink(path)
    _unlink(f"{path}.done")


def _marked_inode(done: str) -> int | None:
    try:
        fields = Path(done).read_text().split()
        return int(fields[1]) if len(fields) > 1 else None
    except (OSError, ValueError):
        return None


def _remove_stray_marks(root: str | os.PathLike[str], now: float, grace: float) -> None:
    """Remove ``.done`` marks whose spool file is gone (a crash between two steps above)."""
    folder = spool.project_spool(root)
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if name.endswith(".jsonl.done") and name.removesuffix(".done") not in names:
            path = os.path.join(folder, name)
            try:
                if now - os.stat(path).st_mtime >= grace:
                    os.unlink(path)
            except FileNotFoundError:
                pass


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
