"""The live session API: appends, triggers, leases, and what a later reader sees."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent_continuity import SessionManager
from agent_continuity.config import Config
from agent_continuity.errors import InvalidInput, LeaseHeld, NoActiveSession
from agent_continuity.liveness import Owner
from agent_continuity.model import SessionStatus, Trigger


class Clock:
    """A clock tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


Make = Callable[..., SessionManager]


@pytest.fixture(params=["files", "sqlite"])
def make(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Make:
    """Managers of one store (files or sqlite), as separate processes would open it."""
    url = (
        f"files:{tmp_path / 'tracking'}"
        if request.param == "files"
        else f"sqlite:///{tmp_path}/s.db"
    )

    def build(**config: object) -> SessionManager:
        settings = Config(user="alice").with_values(config, "test")
        return SessionManager(
            store=url,
            project_dir=tmp_path,
            user_id="alice",
            config=settings,
            clock=clock,
            observer=False,
        )

    return build


def test_the_design_example_runs_and_is_read_back_in_order(make: Make, clock: Clock) -> None:
    mgr = make()
    with mgr.start(type="task-execution", task="TASK-6-004", auto_save=False) as s:
        seq = s.add_message("user", "Add SMS reminders")
        s.decide("Using Twilio as primary SMS provider")
        s.complete_step("database-schema-created")
        s.next_step("test-sms-endpoints")
        point = s.checkpoint(trigger="task-completion")
    assert seq == 3  # 1: session, 2: task, 3: the message
    assert point.startswith(f"RECOVERY-{s.id[len('SESSION-') :]}-")
    reader = make()
    record = reader.get(s.id)
    assert record.status is SessionStatus.COMPLETED
    assert record.context.current_task == "TASK-6-004"
    assert record.context.key_decisions == ["Using Twilio as primary SMS provider"]
    assert record.state.completed_steps == ["database-schema-created"]
    assert record.state.next_steps == ["test-sms-endpoints"]
    kinds = [e.kind.value for e in reader.events(s.id)]
    assert kinds == [
        "session",
        "task",
        "message",
        "decision",
        "step-completed",
        "next-step",
        "lifecycle",
    ]
    assert [e.seq for e in reader.events(s.id)] == list(range(1, 8))


@pytest.mark.parametrize(
    ("action", "trigger"),
    [
        (lambda s: s.complete_step("step-a"), Trigger.TASK_COMPLETION),
        (lambda s: s.set_task("TASK-1", status="done"), Trigger.TASK_COMPLETION),
        (lambda s: s.decide("use postgres"), Trigger.MAJOR_DECISION),
        (lambda s: s.touch_file("src/app.py"), Trigger.FILE_MODIFICATION),
        (lambda s: s.record_error("build broke", "BuildError"), Trigger.ERROR_OCCURRENCE),
        (lambda s: s.checkpoint(), Trigger.USER_REQUEST),
    ],
)
def test_each_trigger_makes_its_recovery_point(
    make: Make, clock: Clock, action: object, trigger: Trigger
) -> None:
    mgr = make()
    s = mgr.start(task="TASK-1", auto_save=False)
    before = len(mgr.store.list_points(s.id))
    action(s)  # type: ignore[operator]
    points = mgr.store.list_points(s.id)
    assert len(points) == before + 1
    assert points[-1].trigger is trigger
    assert mgr.store.load_point(points[-1].id).seq == s.view.seq
    s.end()


def test_a_trigger_left_out_of_the_configuration_makes_no_point(make: Make, clock: Clock) -> None:
    mgr = make(triggers=["task-completion"])
    s = mgr.start(auto_save=False)
    s.decide("no point for this")
    assert mgr.store.list_points(s.id) == []
    s.complete_step("but one for this")
    assert [p.trigger for p in mgr.store.list_points(s.id)] == [Trigger.TASK_COMPLETION]


def test_automatic_points_are_pruned_to_backup_count_but_trigger_points_stay(
    make: Make, clock: Clock
) -> None:
    mgr = make(backup_count=2)
    s = mgr.start(auto_save=False)
    s.decide("keep me")
    for i in range(6):
        s.add_message("user", f"turn {i}")
        clock.advance(seconds=1)
        s.checkpoint(Trigger.AUTO)
    points = mgr.store.list_points(s.id)
    assert [p.trigger for p in points].count(Trigger.AUTO) == 2
    assert [p.trigger for p in points].count(Trigger.MAJOR_DECISION) == 1
    assert points[-1].seq == s.view.seq


def test_bad_input_is_refused_and_nothing_is_written(make: Make, clock: Clock) -> None:
    mgr = make()
    s = mgr.start(auto_save=False)
    last = s.view.seq
    for call in (
        lambda: s.add_message("robot", "hi"),
        lambda: s.add_message("user", 5),  # type: ignore[arg-type]
        lambda: s.decide("   "),
        lambda: s.set_progress(101),
        lambda: s.set_task("T", status="finished"),
        lambda: s.touch_file("a.py", "renamed"),
        lambda: s.add_message("user", "\udcff lone surrogate"),
    ):
        with pytest.raises(InvalidInput):
            call()
    assert mgr.events(s.id)[-1].seq == last


def test_a_second_process_owner_is_fenced_out(make: Make, clock: Clock) -> None:
    mgr = make()
    s = mgr.start(auto_save=False)
    other = make()
    # Same pid here, so pretend the other writer is the command line.
    with pytest.raises(LeaseHeld, match="being written by"):
        other.attach(s.id)
    s.end()


def test_a_command_line_session_expires_after_its_idle_time(make: Make, clock: Clock) -> None:
    mgr = make(cli_lease_ttl="30m")
    s = mgr.start(owned_by_process=False, auto_save=False)
    clock.advance(minutes=29)
    assert mgr.detect_interruptions() == []
    mgr.attach(s.id).add_message("user", "still here")  # renews the lease
    clock.advance(minutes=29)
    assert mgr.detect_interruptions() == []
    clock.advance(minutes=2)
    (marked,) = mgr.detect_interruptions()
    assert marked.id == s.id and marked.status is SessionStatus.INTERRUPTED
    assert marked.interruption is not None and marked.interruption.cause == "lease-expired"
    with pytest.raises(NoActiveSession):
        mgr.attach(s.id)


def test_commands_without_a_session_act_on_the_newest_active_one(make: Make, clock: Clock) -> None:
    mgr = make()
    with pytest.raises(NoActiveSession, match="continuity start"):
        mgr.attach()
    first = mgr.start(owned_by_process=False, auto_save=False)
    second = mgr.start(owned_by_process=False, auto_save=False)
    assert mgr.attach().id == second.id
    mgr.end()
    assert mgr.attach().id == first.id


def test_a_session_the_journal_ended_is_not_written_to_even_if_the_registry_missed_it(
    make: Make, clock: Clock
) -> None:
    """An ``end`` whose registry write failed (a full disk) left the registry saying
    active; the journal says completed, and a command must not append after the end."""
    mgr = make()
    session = mgr.start(owned_by_process=False, auto_save=False)
    stale = mgr.get(session.id)
    session.add_message("user", "the last words")
    session.end()
    # What a full disk leaves behind: the registry entry and a command-line lease as
    # they were before the end, whose writes failed after the journal recorded it.
    mgr.store.put_session(stale)
    mgr.store.acquire_lease(session.id, Owner.cli(mgr.config.cli_lease_ttl).request(clock()))
    events_before = len(mgr.events(session.id))

    with pytest.raises(NoActiveSession, match="completed"):
        make().attach(session.id)

    assert len(mgr.events(session.id)) == events_before
    assert mgr.get(session.id).status is SessionStatus.COMPLETED  # the registry was mended


def test_update_records_everything_as_one_group(make: Make, clock: Clock) -> None:
    mgr = make()
    s = mgr.start(owned_by_process=False, auto_save=False)
    record, events = mgr.update(
        task="TASK-2",
        step="wire-api",
        complete=["schema"],
        next_steps=["tests", "docs"],
        blockers=["waiting for keys"],
        decisions=["REST not GraphQL"],
        progress=40,
        summary="API work",
        files=["api.py"],
    )
    assert [e.seq for e in events] == list(range(events[0].seq, events[0].seq + len(events)))
    assert record.context.current_task == "TASK-2"
    assert record.state.progress == 40 and record.state.current_step == "wire-api"
    assert record.state.blockers == ["waiting for keys"]
    assert mgr.store.list_points(s.id)[-1].trigger is Trigger.TASK_COMPLETION
    backup = mgr.store.load_emergency(s.id)
    assert backup is not None and backup.last_decision == "REST not GraphQL"
    assert backup.next_steps == ["tests", "docs"]
    with pytest.raises(InvalidInput, match="nothing to record"):
        mgr.update()


def test_recovery_says_when_a_plain_folder_was_too_big_to_track(tmp_path: Path) -> None:
    from agent_continuity.capture import ProjectObserver

    project = tmp_path / "notes"
    project.mkdir()
    for i in range(8):
        (project / f"n{i}.md").write_text(str(i))
    mgr = SessionManager(
        store="memory:",
        project_dir=project,
        user_id="alice",
        config=Config(user="alice"),
        observer=ProjectObserver(project, max_files=5),
    )
    s = mgr.start(task="T-1", auto_save=False)
    s.checkpoint()
    s.interrupt("closed")
    result = mgr.recover(s.id)
    assert any("too many files to index" in w for w in result.warnings)
    assert result.state_diff.modified_files == [] and result.status == "partial"
