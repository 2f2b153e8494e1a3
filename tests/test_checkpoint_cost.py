"""What a recovery point writes: enough to recover, and no more."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent_continuity import SessionManager
from agent_continuity.config import Config


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _manager(tmp_path: Path, clock: Clock) -> SessionManager:
    config = Config(user="alice", context_interval=30.0)
    return SessionManager(
        store="files:store", project_dir=tmp_path, config=config, clock=clock, observer=False
    )


def test_points_after_messages_alone_keep_the_emergency_backup(tmp_path: Path) -> None:
    clock = Clock()
    mgr = _manager(tmp_path, clock)
    session = mgr.start(task="TASK-1", auto_save=False)
    before = mgr.store.load_emergency(session.id)
    assert before is not None

    clock.now += timedelta(seconds=5)
    session.add_message("user", "hello")
    session.checkpoint(trigger="auto")
    assert mgr.store.load_emergency(session.id) == before

    clock.now += timedelta(seconds=5)
    session.decide("Use Twilio", major=False)
    session.checkpoint(trigger="auto")
    after_decision = mgr.store.load_emergency(session.id)
    assert after_decision is not None
    assert after_decision.last_decision == "Use Twilio"

    clock.now += timedelta(seconds=31)  # older than the context interval: restamped
    session.add_message("user", "still there?")
    session.checkpoint(trigger="auto")
    restamped = mgr.store.load_emergency(session.id)
    assert restamped is not None
    assert restamped.updated == clock.now
    assert restamped.seq == session.view.seq
    mgr.close()


def test_auto_save_numbers_continue_after_reopening(tmp_path: Path) -> None:
    clock = Clock()
    mgr = _manager(tmp_path, clock)
    session = mgr.start(auto_save=False, owned_by_process=False)
    first = session.checkpoint(trigger="auto")
    second = session.checkpoint(trigger="auto")
    mgr.close()

    again = _manager(tmp_path, clock)
    third = again.attach(session.id).checkpoint(trigger="auto")

    assert [first, second, third] == [f"RECOVERY-{session.id[8:]}-AUTO-SAVE-{n}" for n in (1, 2, 3)]
    again.close()


def test_a_database_in_the_project_root_is_not_observed(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print('hi')\n")
    mgr = SessionManager(store="sqlite:///sessions.db", project_dir=tmp_path, user_id="alice")
    session = mgr.start(auto_save=False)
    session.checkpoint()
    observed = set(session.view.code_context.files)
    session.end()
    mgr.close()

    assert "app.py" in observed
    assert not any(name.startswith("sessions.db") for name in observed)


def test_points_after_messages_alone_restamp_the_registry_once_per_interval(
    tmp_path: Path,
) -> None:
    clock = Clock()
    mgr = _manager(tmp_path, clock)
    session = mgr.start(task="TASK-1", auto_save=False)
    clock.now += timedelta(seconds=1)
    session.checkpoint(trigger="auto")
    first = mgr.get(session.id)

    clock.now += timedelta(seconds=5)
    session.add_message("user", "hello")
    session.checkpoint(trigger="auto")
    assert mgr.get(session.id) == first  # only activity stamps moved: not rewritten

    session.decide("Use Twilio", major=False)
    session.checkpoint(trigger="auto")
    assert mgr.get(session.id).context.key_decisions == ["Use Twilio"]

    clock.now += timedelta(seconds=31)
    session.add_message("user", "still there?")
    session.checkpoint(trigger="auto")
    latest = mgr.get(session.id)
    assert latest.last_seq == session.view.seq
    assert latest.persistence.last_save == clock.now
    session.end()
    assert mgr.get(session.id).status.value == "completed"
    mgr.close()


def test_pruning_leaves_sqlite_commits_synced(tmp_path: Path) -> None:
    mgr = SessionManager(
        store="sqlite:///s.db", project_dir=tmp_path, user_id="alice", observer=False
    )
    session = mgr.start(auto_save=False)
    for _ in range(8):
        session.checkpoint(trigger="auto")
    store = mgr.store
    assert len(store.list_points(session.id)) == 5
    connection = store._connection()  # type: ignore[attr-defined]
    assert connection.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    session.end()
    mgr.close()


def test_resuming_observes_the_project_once(tmp_path: Path) -> None:
    from agent_continuity.capture.observer import ProjectObserver

    calls: list[str] = []

    class CountingObserver(ProjectObserver):
        def snapshot(self, *, with_build: bool = False):  # type: ignore[no-untyped-def]
            calls.append("snapshot")
            return super().snapshot(with_build=with_build)

        def observe(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append("observe")
            return super().observe(*args, **kwargs)

    (tmp_path / "app.py").write_text("print('hi')\n")
    observer = CountingObserver(tmp_path)
    mgr = SessionManager(
        store="files:store", project_dir=tmp_path, user_id="alice", observer=observer
    )
    session = mgr.start(task="TASK-1", auto_save=False, owned_by_process=False)
    session.add_message("user", "hello")
    session.interrupt("test")
    calls.clear()

    result = mgr.recover(session.id, answer=True)

    assert result.outcome == "restored"
    assert calls == ["observe"]
    assert mgr.load(session.id).point is not None
    assert "app.py" in mgr.load(session.id).view.code_context.files
    mgr.close()
