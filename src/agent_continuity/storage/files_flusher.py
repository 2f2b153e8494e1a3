"""Batched mode of the files store: a thread that syncs journals soon after their appends.

With ``durability="batched"`` an append returns once its bytes are written
to the journal (``kill -9`` cannot take them back) and marks the session
dirty; this thread syncs every dirty journal at most :data:`FLUSH_INTERVAL`
later. A power failure can lose the appends of that interval plus the flush
in progress. A sync that fails is remembered, and the store refuses further
appends: the caller must learn that acknowledged events may not be durable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from agent_continuity.errors import StoreError

FLUSH_INTERVAL = 0.05  # seconds between fdatasync calls in batched mode


class JournalFlusher:
    """Syncs the journals marked dirty, from a daemon thread started on the first mark.

    Args:
        name: The thread's name.
        flush: Makes one session's journal durable (taking its lock); raises StoreError.
    """

    def __init__(self, name: str, flush: Callable[[str], None]) -> None:
        self._name = name
        self._flush = flush
        self._mutex = threading.Lock()
        self._dirty: set[str] = set()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.error: StoreError | None = None  # the first sync that failed, if any

    def mark(self, session_id: str) -> None:
        """Queue ``session_id``'s journal for the next flush."""
        if session_id in self._dirty:
            return  # already queued; flush_all swaps the set under the mutex
        with self._mutex:
            self._dirty.add(session_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL):
            self.flush_all()

    def flush_all(self) -> None:
        """Sync every journal marked dirty so far; a failure is kept in :attr:`error`."""
        with self._mutex:
            dirty, self._dirty = self._dirty, set()
        for session_id in dirty:
            try:
                self._flush(session_id)
            except StoreError as exc:
                self.error = exc

    def stop(self) -> None:
        """Stop the thread (it starts again on the next mark) and sync what is left."""
        with self._mutex:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()
            self._stop.clear()
        self.flush_all()
