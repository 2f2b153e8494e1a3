"""A death noticed late is scored from when the owner was last alive, not when it was noticed.

A command-line session left without `interrupt`, or a process killed with
``kill -9``, is only marked interrupted by the next command that looks. Three
days later that command must not say "0 min since the session stopped".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent_continuity import SessionManager
from agent_continuity.config import Config
from agent_continuity.model import EventKind, SessionStatus, format_time
from agent_continuity.recovery import recover
from cli_support import continuity as cli
from cli_support import git_project
from recovery_builders import SETTINGS, observe, sms_session

THREE_DAYS = timedelta(days=3)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return git_project(tmp_path / "repo")


def manager_at(root: Path, moment: datetime, cli_lease_ttl: float = 1800.0) -> SessionManager:
    return SessionManager(
        project_dir=root,
        user_id="alice",
        config=Config(user="alice", cli_lease_ttl=cli_lease_ttl),
        clock=lambda: moment,
    )


def abandoned_cli_session(root: Path, moment: datetime, cli_lease_ttl: float = 1800.0) -> str:
    """A command-line session that worked at ``moment`` and was then left, never interrupted."""
    mgr = manager_at(root, moment, cli_lease_ttl)
    s = mgr.start(type="task-execution", task="TASK-7", owned_by_process=False, auto_save=False)
    s.add_message("user", "Add SMS reminders")
    s.next_step("write the sender")
    s.touch_file("app.py")
    mgr.close()
    return s.id


def test_cli_session_left_three_days_ago_is_recovered_in_full_mode_and_not_resumed(
    repo: Path,
) -> None:
    stopped = datetime.now(UTC) - THREE_DAYS
    session_id = abandoned_cli_session(repo, stopped)

    result = cli(repo, "recover", "--json")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["sessionId"] == session_id
    assert data["mode"] == "full"
    assert data["confidence"]["factors"]["elapsed"] == pytest.approx(0.125, abs=0.002)
    assert data["decision"] != "auto-resume"
    assert data["outcome"] == "awaiting-answer"
    elapsed_reason = next(r for r in data["confidence"]["reasons"] if r.startswith("elapsed"))
    assert "3.0 days since the session stopped" in elapsed_reason
    assert "0 min" not in result.stdout
    assert "3.0 days ago" in data["contextSummary"]

    shown = json.loads(cli(repo, "show", session_id, "--json").stdout)["session"]
    assert shown["status"] == "interrupted"
    assert shown["interruption"]["cause"] == "lease-expired"
    assert shown["interruption"]["at"] == format_time(stopped)
    text = cli(repo, "show", session_id).stdout
    assert f"interrupted at {format_time(stopped)}: lease-expired" in text
    (listed,) = json.loads(cli(repo, "list", "--json").stdout)["sessions"]
    assert listed["interruption"]["at"] == format_time(stopped)


def test_the_interruption_event_is_stamped_when_written_and_carries_the_last_alive_time(
    repo: Path,
) -> None:
    stopped = datetime.now(UTC) - THREE_DAYS
    session_id = abandoned_cli_session(repo, stopped)
    noticed = datetime.now(UTC).replace(microsecond=0)
    mgr = manager_at(repo, noticed)

    (marked,) = mgr.detect_interruptions()

    assert marked.id == session_id and marked.interruption is not None
    assert format_time(marked.interruption.at) == format_time(stopped)
    lifecycle = [e for e in mgr.events(session_id) if e.kind is EventKind.LIFECYCLE][-1]
    assert lifecycle.at == noticed
    assert lifecycle.payload["lastAlive"] == format_time(stopped)
    (line,) = [e for e in mgr.store.read_recovery_log() if e.get("event") == "interruption"]
    assert (line["at"], line["lastAlive"]) == (format_time(noticed), format_time(stopped))
    # The final recovery point says the same as the registry.
    point = mgr.store.load_point(mgr.store.list_points(session_id)[-1].id)
    assert point.session.interruption == marked.interruption


def test_session_started_on_the_command_line_and_recovered_three_days_later_in_python(
    repo: Path,
) -> None:
    assert cli(repo, "start", "--task", "TASK-7").returncode == 0
    assert cli(repo, "message", "--role", "user", "Add SMS reminders").returncode == 0
    assert cli(repo, "update", "--next", "write the sender").returncode == 0
    later = datetime.now(UTC) + THREE_DAYS
    mgr = manager_at(repo, later)

    result = mgr.recover()

    assert result.mode == "full"
    assert result.confidence.factors.elapsed == pytest.approx(0.125, abs=0.002)
    assert result.decision != "auto-resume"
    assert result.outcome == "awaiting-answer"
    assert result.reference_time is not None and result.reference_time < later - THREE_DAYS / 2
    assert not any("0 min" in reason for reason in result.confidence.reasons)


def test_a_lease_renewal_after_the_last_event_counts_as_alive(repo: Path) -> None:
    now = datetime.now(UTC)
    ttl = 36 * 3600.0  # long enough for a command two days ago to find the lease still held
    session_id = abandoned_cli_session(repo, now - THREE_DAYS, ttl)
    renewed = now - timedelta(days=2)
    # A command two days ago renewed the lease (attaching) but wrote nothing.
    renewer = manager_at(repo, renewed, ttl)
    renewer.attach(session_id)
    renewer.close()

    result = manager_at(repo, now, ttl).recover()

    assert result.confidence.factors.elapsed == pytest.approx(0.25, abs=0.002)
    assert result.mode == "full"
    record = manager_at(repo, now, ttl).get(session_id)
    assert record.interruption is not None
    assert format_time(record.interruption.at) == format_time(renewed)


# -- the pure engine, from a journal -------------------------------------------------


def test_the_engine_counts_from_the_last_alive_time_the_interruption_event_carries() -> None:
    j = sms_session()
    point = j.point()
    alive = j.at
    j.add(
        EventKind.LIFECYCLE,
        {"status": "interrupted", "cause": "lease-expired", "lastAlive": format_time(alive)},
        minutes=3 * 24 * 60,
    )
    noticed = j.at

    result = recover(j.saved(point), observe(), noticed, SETTINGS)

    assert result.reference_time == alive
    assert result.mode == "full"
    assert result.confidence.factors.elapsed == pytest.approx(0.125, abs=0.001)
    assert result.decision != "auto-resume"
    assert "was interrupted 3.0 days ago" in result.context_summary


def test_an_older_journal_counts_a_noticed_death_from_its_last_activity() -> None:
    j = sms_session()
    last_event = j.at
    j.interrupt("lease-expired", minutes=3 * 24 * 60)  # written before lastAlive existed
    interruption = j.view().record.interruption
    assert interruption is not None and interruption.at == last_event
    # An owner that interrupted itself (a signal) stopped when it wrote the event.
    k = sms_session()
    event = k.interrupt("signal: SIGTERM", minutes=5)
    own = k.view().record.interruption
    assert own is not None and own.at == event.at


AGENT = """
import sys, time
from agent_continuity import SessionManager
mgr = SessionManager(project_dir=sys.argv[1], user_id="alice", observer=False)
s = mgr.start(type="task-execution", task="TASK-9")
s.add_message("user", "Refactor the scheduler")
s.next_step("split the queue")
print(f"session {s.id}", flush=True)
time.sleep(60)
"""


def test_python_process_killed_with_sigkill_and_recovered_three_days_later(repo: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", AGENT, str(repo)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=repo,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("session "), line
    session_id = line.split()[1]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    killed = datetime.now(UTC)
    later = killed + THREE_DAYS
    mgr = manager_at(repo, later)

    result = mgr.recover()

    assert result.session_id == session_id
    assert result.mode == "full"
    assert result.confidence.factors.elapsed == pytest.approx(0.125, abs=0.002)
    assert result.decision != "auto-resume"
    assert not any("0 min" in reason for reason in result.confidence.reasons)
    record = mgr.get(session_id)
    assert record.status is SessionStatus.INTERRUPTED and record.interruption is not None
    assert record.interruption.cause == "lease-expired"
    assert killed - timedelta(minutes=1) <= record.interruption.at <= killed
