"""Watch the project folder and report bursts of file changes.

An editor saving a file, a formatter rewriting a tree or a ``git checkout``
produce dozens of file-system events within milliseconds. The watcher
collects them and calls back once the folder has been quiet for the debounce
period, with the sorted set of relative paths touched in the burst. A
session uses that to trigger a ``file-modification`` save without saving
once per event.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from agent_continuity.capture.file_index import PathFilter, json_safe
from agent_continuity.capture.observer import DEFAULT_STORE_FOLDER

log = logging.getLogger(__name__)

# Vim swap files and its "4913" write probe, Emacs lock and auto-save files,
# backup files: none of them is a change to the project.
EDITOR_TEMP_PATTERNS = ("*.swp", "*.swo", "*.swx", "*~", ".#*", "#*#", "4913")

_REPORTED = frozenset({"created", "deleted", "modified", "moved"})


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: ProjectWatcher) -> None:
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _REPORTED:
            return  # opened/closed events carry no change of their own
        if event.is_directory and event.event_type == "modified":
            return  # a folder's mtime changes with every file in it
        paths = (
            [event.src_path, event.dest_path] if event.event_type == "moved" else [event.src_path]
        )
        self._watcher._record([os.fsdecode(p) for p in paths if p])


class ProjectWatcher:
    """Calls ``on_change`` with the paths changed in each burst of file activity.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.

    Args:
        root: The folder to watch, recursively.
        on_change: Called from the watcher's own thread with the sorted
            relative POSIX paths changed in one burst. Exceptions it raises
            are logged and do not stop the watcher.
        ignore: Folders, relative to ``root``, whose changes are not
            reported. ``.git`` and the default store folder always are not.
        debounce: Seconds of quiet that end a burst.
        max_delay: Seconds after a burst's first change by which it is
            reported even if changes keep coming (a build writing
            continuously must not postpone the callback forever).
    """

    def __init__(
        self,
        root: Path,
        on_change: Callable[[list[str]], None],
        *,
        ignore: Sequence[str] = (),
        debounce: float = 1.0,
        max_delay: float = 30.0,
    ) -> None:
        self.root = Path(root).resolve()
        self.debounce = debounce
        self.max_delay = max(max_delay, debounce)
        self._on_change = on_change
        self._skip = PathFilter.from_patterns(self.root, [DEFAULT_STORE_FOLDER, *ignore])
        self._root_text = str(self.root)
        self._cond = threading.Condition()
        self._pending: set[str] = set()
        self._first_at = 0.0
        self._last_at = 0.0
        self._stopping = False
        self._observer: BaseObserver | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the watcher has been started and not stopped."""
        return self._thread is not None

    def start(self) -> None:
        """Start watching. Calling it on a running watcher does nothing."""
        if self._thread is not None:
            return
        self._stopping = False
        self._observer = self._start_observer()
        self._thread = threading.Thread(
            target=self._deliver_loop, name="continuity-watch-debounce", daemon=True
        )
        self._thread.start()

    def _start_observer(self) -> BaseObserver:
        handler = _Handler(self)
        try:
            observer: BaseObserver = Observer()
            observer.schedule(handler, self._root_text, recursive=True)
            observer.start()
        except OSError as exc:
            # inotify instances or watches exhausted: poll instead, slower but correct.
            log.warning("native file watching unavailable (%s); polling %s", exc, self.root)
            observer = PollingObserver(timeout=1.0)
            observer.schedule(handler, self._root_text, recursive=True)
            observer.start()
        return observer

    def stop(self) -> None:
        """Stop watching, report any pending burst, and join the threads."""
        observer, thread = self._observer, self._thread
        if observer is not None:
            observer.stop()
            observer.join()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if thread is not None:
            thread.join()
        self._observer = self._thread = None

    def __enter__(self) -> ProjectWatcher:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _relative(self, path: str) -> str | None:
        rel = os.path.relpath(path, self._root_text)
        if rel == "." or rel.startswith(".."):
            return None
        rel = rel.replace(os.sep, "/")
        name = rel.rsplit("/", 1)[-1]
        if self._skip.excluded(rel) or not json_safe(rel):
            return None
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in EDITOR_TEMP_PATTERNS):
            return None
        return rel

    def _record(self, paths: list[str]) -> None:
        rels = [rel for rel in map(self._relative, paths) if rel is not None]
        if not rels:
            return
        with self._cond:
            now = time.monotonic()
            if not self._pending:
                self._first_at = now
            self._pending.update(rels)
            self._last_at = now
            self._cond.notify_all()

    def _deliver_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                while self._pending and not self._stopping:
                    now = time.monotonic()
                    due = min(self._last_at + self.debounce, self._first_at + self.max_delay)
                    if now >= due:
                        break
                    self._cond.wait(due - now)
                batch = sorted(self._pending)
                self._pending.clear()
                stopping = self._stopping
            if batch:
                # Called without the lock, so a slow callback never blocks
                # the event thread that records the next burst.
                try:
                    self._on_change(batch)
                except Exception:
                    log.exception("file-change callback failed for %d paths", len(batch))
            if stopping:
                return
