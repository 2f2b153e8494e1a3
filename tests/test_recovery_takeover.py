"""Resuming a session: an answered recovery takes the session over first, reads it
once under its new lease, and continues exactly from what it read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from agent_continuity import SessionManager
from agent_continuity.config import Config
from agent_continuity.errors import LeaseHeld
from agent_continuity.model import EventDraft, EventKind, utc_now
from agent_continuity.storage import JournalRead, Store
from agent_continuity.testing.conformance import StoreFactory


def manager(store: Store, clock: Callable[[], datetime] = utc_now) -> SessionManager:
    return SessionManager(
        store=store, user_id="alice", config=Config(user="alice"), clock=clock, observer=False
    )


def crashed_after_its_newest_point_was_damaged(
    factory: StoreFactory,
) -> tuple[SessionManager, str]:
    """A session whose newest point is damaged, so recovery replays journal events
    after an older point, with a tool call that never returned among them."""
    mgr = manager(factory())
    s = mgr.start(task="TASK-1", owned_by_process=False, auto_save=False)
    s.add_message("user", "before the point")
    s.checkpoint(observe=False)
    s.add_message("assistant", "after the point")
    s.next_step("ship it")
    s.record_tool_call("run_tests", {"path": "tests"}, call_id="call-1")
    s.interrupt("laptop slept")  # its final point is the one damaged next
    newest = mgr.store.list_points(s.id)[-1].id
    factory.flip_point_byte(mgr.store, newest)
    return mgr, s.id


def count_reads(
    store: Store, monkeypatch: pytest.MonkeyPatch, before: Callable[[], Any]
) -> list[int]:
    """Count journal reads; ``before`` runs just before each one."""
    reads: list[int] = []
    real = store.read_events

    def read_events(session_id: str, after_seq: int = 0) -> JournalRead:
        before()
        reads.append(after_seq)
        return real(session_id, after_seq)

    monkeypatch.setattr(store, "read_events", read_events)
    return reads


def test_an_answered_recovery_reads_the_journal_once_and_resumes_exactly_there(
    store_factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    mgr, sid = crashed_after_its_newest_point_was_damaged(store_factory)
    reads = count_reads(mgr.store, monkeypatch, lambda: None)
    result = mgr.recover(sid, answer=True)
    assert result.outcome == "restored"
    assert len(reads) == 1, f"the journal was read {len(reads)} times"
    assert any("failed verification" in w for w in result.warnings), result.warnings
    monkeypatch.undo()

    events = mgr.events(sid)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    synthetic = [e for e in events if e.kind is EventKind.TOOL_RESULT]
    assert [e.payload["callId"] for e in synthetic] == ["call-1"]  # repaired once
    again = manager(store_factory()).load(sid)
    view = again.view
    assert again.point is not None and again.point.seq == events[-1].seq
    assert view.record.status.value == "active"
    assert view.record.continuation_id == result.continuation_id
    assert view.pending_calls == {}
    assert view.record.state.next_steps == ["ship it"]
    texts = [m["text"] for m in view.recent_messages]
    assert texts == ["before the point", "after the point"]


def test_the_previous_holder_is_fenced_off_before_an_answered_recovery_reads(
    store_factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resuming continues from the state recovery read, so whoever held the lease
    last must not slip an event in after that read: it is refused, and told so."""
    mgr, sid = crashed_after_its_newest_point_was_damaged(store_factory)
    previous = mgr.store.read_lease(sid)
    assert previous is not None
    late = EventDraft(kind=EventKind.NOTE, at=utc_now(), payload={"text": "late"})
    refused: list[LeaseHeld] = []

    def late_writer() -> None:
        try:
            mgr.store.append(previous, [late])
        except LeaseHeld as exc:
            refused.append(exc)

    count_reads(mgr.store, monkeypatch, late_writer)
    assert mgr.recover(sid, answer=True).outcome == "restored"
    assert refused, "the previous holder appended while recovery was reading"
    assert "late" not in [e.payload.get("text") for e in mgr.events(sid)]


def test_analysing_and_an_unanswered_prompt_write_nothing(store_factory: StoreFactory) -> None:
    _, sid = crashed_after_its_newest_point_was_damaged(store_factory)
    two_days_later = utc_now() + timedelta(days=2)
    mgr = manager(store_factory(), clock=lambda: two_days_later)
    journal = [e.to_wire() for e in mgr.events(sid)]
    lease = mgr.store.read_lease(sid)
    assert mgr.analyse(sid).decision == "prompt"
    result = mgr.recover(sid, confirm=lambda _result: None)
    assert (result.decision, result.outcome) == ("prompt", "awaiting-answer")
    assert [e.to_wire() for e in mgr.events(sid)] == journal
    assert mgr.store.read_lease(sid) == lease
