"""Every way a session can die is noticed, with its cause and a final recovery point.

These tests run real processes and send them real signals.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent_continuity import SessionManager
from agent_continuity.model import SessionStatus, Trigger

STORES = ["files", "sqlite"]


def _url(kind: str, tmp_path: Path) -> str:
    return f"files:{tmp_path / 'tracking'}" if kind == "files" else f"sqlite:///{tmp_path / 's.db'}"


@pytest.fixture(params=STORES)
def project(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root, _url(request.param, tmp_path)


AGENT = """
import os, sys, time
from agent_continuity import SessionManager
mgr = SessionManager(store=sys.argv[1], project_dir=sys.argv[2], user_id="alice")
mode = sys.argv[3]
s = mgr.start(type="task-execution", task="TASK-1")
for i in range(3):
    seq = s.add_message("user", f"message {i}")
    print(f"ack {seq}", flush=True)
print(f"session {s.id}", flush=True)
if mode == "exception":
    with s:
        raise ValueError("boom")
if mode == "exit":
    sys.exit(0)
if mode == "status":
    sys.exit(4)
print("ready", flush=True)
time.sleep(60)
"""


def _spawn(root: Path, url: str, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", AGENT, url, str(root), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=root,
    )


def run_python(root: Path, url: str, code: str) -> subprocess.CompletedProcess[str]:
    """`continuity run -- python -c CODE` in the project, as a user would type it."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "agent_continuity.cli",
            "--store",
            url,
            "run",
            "--",
            sys.executable,
            "-c",
            code,
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _read_until_ready(proc: subprocess.Popen[str]) -> tuple[str, int]:
    assert proc.stdout is not None
    session_id, last_ack = "", 0
    for line in proc.stdout:
        if line.startswith("ack "):
            last_ack = int(line.split()[1])
        if line.startswith("session "):
            session_id = line.split()[1]
        if line.startswith("ready"):
            break
    return session_id, last_ack


def _final_state(root: Path, url: str, session_id: str) -> tuple[str, str, list[str]]:
    mgr = SessionManager(store=url, project_dir=root, user_id="alice", observer=False)
    mgr.detect_interruptions()
    record = mgr.get(session_id)
    triggers = [p.trigger.value for p in mgr.store.list_points(session_id)]
    cause = record.interruption.cause if record.interruption else ""
    mgr.close()
    return record.status.value, cause, triggers


def test_unhandled_exception_marks_interrupted_with_the_exception(
    project: tuple[Path, str],
) -> None:
    root, url = project
    proc = _spawn(root, url, "exception")
    out, _ = proc.communicate(timeout=60)
    session_id = out.split("session ")[1].split()[0]
    status, cause, triggers = _final_state(root, url, session_id)
    assert status == "interrupted"
    assert cause == "exception: ValueError: boom"
    assert Trigger.INTERRUPTION.value in triggers


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_marks_interrupted_with_the_signal(project: tuple[Path, str], signum: int) -> None:
    root, url = project
    proc = _spawn(root, url, "sleep")
    session_id, _ = _read_until_ready(proc)
    proc.send_signal(signum)
    proc.wait(timeout=60)
    status, cause, triggers = _final_state(root, url, session_id)
    assert status == "interrupted"
    assert cause == f"signal: {signal.Signals(signum).name}"
    assert Trigger.INTERRUPTION.value in triggers


def test_exit_without_end_marks_interrupted(project: tuple[Path, str]) -> None:
    root, url = project
    proc = _spawn(root, url, "exit")
    out, _ = proc.communicate(timeout=60)
    session_id = out.split("session ")[1].split()[0]
    status, cause, _ = _final_state(root, url, session_id)
    assert (status, cause) == ("interrupted", "exit-without-end")


def test_kill_9_is_found_by_the_next_command_and_keeps_acknowledged_events(
    project: tuple[Path, str],
) -> None:
    root, url = project
    proc = _spawn(root, url, "sleep")
    session_id, last_ack = _read_until_ready(proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    listed = subprocess.run(
        [sys.executable, "-m", "agent_continuity.cli", "--store", url, "list", "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    (entry,) = [s for s in json.loads(listed.stdout)["sessions"] if s["id"] == session_id]
    assert entry["status"] == "interrupted"
    assert entry["interruption"]["cause"] == "lease-expired"
    mgr = SessionManager(store=url, project_dir=root, user_id="alice", observer=False)
    events = mgr.events(session_id)
    assert [e.payload["text"] for e in events if e.kind == "message"] == [
        "message 0",
        "message 1",
        "message 2",
    ]
    assert any(e.seq == last_ack for e in events)
    points = mgr.store.list_points(session_id)
    assert points and points[-1].trigger is Trigger.INTERRUPTION
    assert mgr.store.load_point(points[-1].id).seq >= last_ack
    log = mgr.store.read_recovery_log()
    assert any(e.get("sessionId") == session_id and e.get("cause") == "lease-expired" for e in log)


def test_run_records_a_failing_exit_status(project: tuple[Path, str]) -> None:
    root, url = project
    result = run_python(root, url, "import sys; sys.exit(3)")
    assert result.returncode == 3
    mgr = SessionManager(store=url, project_dir=root, observer=False)
    (record,) = mgr.sessions()
    assert record.status is SessionStatus.INTERRUPTED
    assert record.interruption is not None and record.interruption.cause == "exit status 3"
    assert mgr.store.list_points(record.id)[-1].trigger is Trigger.INTERRUPTION


def test_run_completes_on_success_and_warns_of_an_interrupted_session(
    project: tuple[Path, str],
) -> None:
    root, url = project
    first = run_python(root, url, "import sys; sys.exit(1)")
    assert first.returncode == 1
    script = textwrap.dedent(
        """
        import os, subprocess, sys
        subprocess.run([sys.executable, "-m", "agent_continuity.cli", "message",
                        "--session", os.environ["CONTINUITY_SESSION"], "--role", "assistant",
                        "written from inside the run"], check=True)
        """
    )
    second = run_python(root, url, script)
    assert second.returncode == 0, second.stderr
    assert "was interrupted (exit status 1)" in second.stderr
    assert "continuity recover" in second.stderr
    mgr = SessionManager(store=url, project_dir=root, observer=False)
    newest = mgr.sessions()[-1]
    assert newest.status is SessionStatus.COMPLETED
    texts = [e.payload.get("text") for e in mgr.events(newest.id) if e.kind == "message"]
    assert texts == ["written from inside the run"]


def test_run_records_file_changes_in_the_project_with_a_recovery_point(
    project: tuple[Path, str],
) -> None:
    root, url = project
    (root / "continuity.toml").write_text('watch-debounce = "0.2s"\n')
    script = (
        "import pathlib, time\n"
        "pathlib.Path('src').mkdir()\n"
        "pathlib.Path('src/app.py').write_text('print(1)')\n"
        "time.sleep(1.5)\n"
    )
    result = run_python(root, url, script)
    assert result.returncode == 0, result.stderr
    mgr = SessionManager(store=url, project_dir=root, observer=False)
    (record,) = mgr.sessions()
    files = [e.payload for e in mgr.events(record.id) if e.kind == "file"]
    assert {"path": "src/app.py", "change": "modified"} in files
    assert not any(p["path"].startswith(("projectDocs", ".git")) for p in files)
    assert Trigger.FILE_MODIFICATION in [p.trigger for p in mgr.store.list_points(record.id)]
    assert record.status is SessionStatus.COMPLETED
