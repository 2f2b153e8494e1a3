"""What the Store conformance suite builds on: the factory a backend provides, and test data."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent_continuity import ids
from agent_continuity.model import (
    AgentInfo,
    EventDraft,
    EventKind,
    RecoveryPoint,
    SessionContext,
    SessionRecord,
    SessionState,
    Trigger,
)
from agent_continuity.replay import SessionView
from agent_continuity.storage.base import LeaseRequest, Store

T0 = datetime(2024, 11, 24, 10, 0, tzinfo=UTC)
ALICE = "alice@host-a"
BOB = "bob@host-b"
PROCESSES = 8
CREATES_PER_PROCESS = 25


class StoreFactory(ABC):
    """Opens the store under test (again and again, on the same data) and damages it.

    Args:
        location: A folder of its own for this test's data.
    """

    def __init__(self, location: Path) -> None:
        self.location = location
        self._opened: list[Store] = []

    def __call__(self) -> Store:
        """Open the store; every call opens the same data. Closed by :meth:`close_all`."""
        store = self.open()
        self._opened.append(store)
        return store

    @abstractmethod
    def open(self) -> Store:
        """A new handle on this factory's data (the same object is fine for in-memory stores)."""

    @abstractmethod
    def truncate_journal(self, store: Store, session_id: str, nbytes: int) -> None:
        """Cut the last ``nbytes`` bytes off the session's stored journal (a torn write)."""

    @abstractmethod
    def flip_journal_byte(self, store: Store, session_id: str, seq: int) -> None:
        """Change one byte inside the stored record of event ``seq`` (bit rot)."""

    @abstractmethod
    def flip_point_byte(self, store: Store, point_id: str) -> None:
        """Change one byte inside a stored recovery point."""

    @abstractmethod
    def delete_journal(self, store: Store, session_id: str) -> None:
        """Delete the session's whole journal, leaving everything else as it is."""

    def close_all(self) -> None:
        """Close every store this factory opened."""
        for store in self._opened:
            store.close()
        self._opened.clear()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_opened"] = []  # open handles stay in the parent process
        return state


# -- builders -------------------------------------------------------------


def lease_request(holder: str = ALICE, now: datetime = T0, minutes: int = 5) -> LeaseRequest:
    """A lease request by ``holder`` at ``now`` for ``minutes``."""
    host = holder.partition("@")[2]
    return LeaseRequest(holder=holder, pid=None, host=host, ttl=timedelta(minutes=minutes), now=now)


def draft_record(created: datetime = T0) -> SessionRecord:
    """A session in the specification's shape, before the store gives it an id."""
    return SessionRecord(
        id="",
        type="task-execution",
        created=created,
        last_activity=created,
        user_id="alice",
        project_dir="/work/project",
        agent=AgentInfo(
            type="development-assistant",
            capabilities=["coding", "debugging"],
            specialization="react-wordpress-integration",
        ),
        context=SessionContext(
            current_task="TASK-6-004",
            current_phase="phase-6",
            working_directory="/projectDocs/task-board/",
            active_files=["TASK-6-004-implementation.md"],
            conversation_summary="Working on SMS integration",
            key_decisions=["Using Twilio as primary SMS provider"],
        ),
        state=SessionState(completed_steps=["database-schema-created"], progress=85),
    )


def message(text: str, minute: int = 1) -> EventDraft:
    """A user message at ``T0 + minute``."""
    at = T0 + timedelta(minutes=minute)
    return EventDraft(kind=EventKind.MESSAGE, at=at, payload={"role": "user", "text": text})


def make_point(
    store: Store, session_id: str, number: int, trigger: Trigger = Trigger.AUTO
) -> RecoveryPoint:
    """A recovery point of the session as it is now, the ``number``-th of the test."""
    view = SessionView.replay(store.read_events(session_id).events)
    created = T0 + timedelta(minutes=10, seconds=number)
    if trigger is Trigger.AUTO:
        point_id = ids.make_recovery_id(session_id, auto_save=number)
    else:
        point_id = ids.make_recovery_id(session_id, at=created)
    return view.to_point(point_id, created, trigger)


def create_sessions(
    factory: StoreFactory, count: int, start: Any, results: Any, holder: str
) -> None:
    """Child process (or thread) body of the id allocation race; puts its ids or its error."""
    try:
        store = factory.open()
        try:
            start.wait(60)
            made = [
                store.create_session(draft_record(), lease_request(holder))[0].id
                for _ in range(count)
            ]
        finally:
            store.close()
    except BaseException as exc:
        results.put(f"{holder} failed: {exc!r}")
        raise
    results.put(made)
