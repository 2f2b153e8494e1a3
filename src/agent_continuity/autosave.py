"""The auto-save scheduler: the specification's four intervals, and the heartbeat.

One daemon thread per live session. It wakes at the earliest due time, does
only the saves whose interval elapsed *and* whose part changed since its last
save, and never holds the session's lock while sleeping, so it never blocks
an append.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

from agent_continuity.config import Config
from agent_continuity.errors import ContinuityError, LeaseHeld
from agent_continuity.live import LiveSession
from agent_continuity.model import CodeContext, Trigger

_KINDS = ("context", "conversation", "projectState", "full", "heartbeat")


def _comparable(code: CodeContext) -> dict[str, object]:
    return code.model_dump(exclude={"observed_at"})


@dataclass
class _Marks:
    """What each kind saw when it last saved: the journal seq or message count."""

    context: int = -1
    conversation: int = -1
    full: int = -1


class AutoSaver:
    """Runs the interval saves of one live session in a background thread."""

    def __init__(
        self, session: LiveSession, config: Config, *, heartbeat: bool, saves: bool = True
    ) -> None:
        self._session = session
        interval = {
            "context": config.context_interval,
            "conversation": config.conversation_interval,
            "projectState": config.project_state_interval,
            "full": config.full_snapshot_interval,
        }
        # A zero interval switches a kind off: the heartbeat can run without
        # the saves (auto_save=False) and the saves without the heartbeat.
        self._intervals = {kind: (value if saves else 0.0) for kind, value in interval.items()}
        self._intervals["heartbeat"] = config.heartbeat_interval if heartbeat else 0.0
        self._marks = _Marks(full=session.view.seq)
        self._last_code: dict[str, object] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"continuity-autosave-{session.id}", daemon=True
        )

    def start(self) -> AutoSaver:
        """Start the thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread; waits for a save in progress (not when called from the thread)."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        start = time.monotonic()
        due = {kind: start + interval for kind, interval in self._intervals.items() if interval}
        while due and not self._stop.is_set():
            wait = max(0.0, min(due.values()) - time.monotonic())
            if self._stop.wait(wait):
                return
            now = time.monotonic()
            for kind in _KINDS:
                if kind in due and due[kind] <= now:
                    due[kind] = now + self._intervals[kind]
                    try:
                        self.run_once(kind)
                    except LeaseHeld:
                        return  # taken over: this process must not write any more
                    except ContinuityError as exc:
                        # A failed save must not kill the session; the journal
                        # still holds everything and the next interval retries.
                        print(f"continuity: auto-save ({kind}) failed: {exc}", file=sys.stderr)

    def run_once(self, kind: str) -> bool:
        """Do one save of ``kind`` if its part changed. Returns whether it saved."""
        session = self._session
        if session.closed:
            return False
        if kind == "heartbeat":
            session.heartbeat()
            return True
        # What `continuity run`'s agent appended counts as a change to save.
        session.catch_up()
        view = session.view
        if kind == "context":
            if view.seq == self._marks.context:
                return False
            self._marks.context = view.seq
            session.save_context_snapshot("context")
            return True
        if kind == "conversation":
            if view.message_count == self._marks.conversation:
                return False
            self._marks.conversation = view.message_count
            # The snapshot derives the conversation context from the view.
            session.save_context_snapshot("conversation")
            return True
        if kind == "projectState":
            session.capture_code_context()
            current = _comparable(session.view.code_context)
            if current == self._last_code:
                return False
            self._last_code = current
            session.save_context_snapshot("projectState")
            return True
        if kind == "full":
            if view.seq == self._marks.full:
                return False
            self._marks.full = view.seq
            session.checkpoint(Trigger.AUTO, observe=False)
            return True
        raise ValueError(f"unknown auto-save kind {kind!r}")
