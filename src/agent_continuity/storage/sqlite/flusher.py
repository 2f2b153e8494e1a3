"""``batched`` mode's flusher thread: the WAL is fsynced within an interval of each commit."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def fsync_path(path: Path, *, directory: bool = False) -> None:
    """Flush a file (or a folder's entries) to disk."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WalFlusher:
    """Bounds what ``batched`` mode can lose to power failure.

    With ``synchronous=NORMAL`` SQLite writes each commit to the WAL but
    fsyncs it only at checkpoints, which may be minutes apart for a quiet
    session. This thread fsyncs the WAL at most ``interval`` seconds after a
    commit. Any file descriptor works: fsync flushes the file, not the handle.
    """

    def __init__(self, wal: Path, interval: float) -> None:
        self.wal = wal
        self.interval = interval
        self.error: OSError | None = None
        self._dirty = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def committed(self) -> None:
        """Note a commit; the WAL is fsynced within ``interval``."""
        if self._dirty.is_set():
            return  # a flush is already due; setting the event again costs a lock
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name=f"continuity-wal-flush:{self.wal.name}", daemon=True
                    )
                    self._thread.start()
        self._dirty.set()

    def close(self) -> None:
        """Flush what is pending and stop the thread."""
        self._closing.set()
        self._dirty.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while True:
            self._dirty.wait()
            closing = self._closing.wait(self.interval)
            self._dirty.clear()
            self._flush()
            if closing:
                return

    def _flush(self) -> None:
        try:
            fsync_path(self.wal)
            # The WAL may be new since the last flush; its name must survive too.
            fsync_path(self.wal.parent, directory=True)
        except FileNotFoundError:
            pass  # the last connection checkpointed (and synced) it into the database
        except OSError as exc:
            # Nobody waits for this thread; the next write reports it instead.
            self.error = exc
