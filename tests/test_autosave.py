"""Auto-save: each snapshot kind on its schedule, and only when something changed."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agent_continuity import SessionManager
from agent_continuity.autosave import AutoSaver
from agent_continuity.config import load_config
from agent_continuity.model import Trigger


def _project(tmp_path: Path, toml: str) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "continuity.toml").write_text(toml)
    return root


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_intervals_from_configuration_drive_every_snapshot_kind(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        'context-interval = "0.3s"\nconversation-interval = "0.6s"\n'
        'project-state-interval = "0.9s"\nfull-snapshot-interval = "1.2s"\n',
    )
    mgr = SessionManager(project_dir=root, user_id="alice", config=load_config(root, environ={}))
    session = mgr.start(task="TASK-1")
    session.add_message("user", "please add reminders")
    store = mgr.store

    def updated(part: str) -> bool:
        snap = store.load_context_snapshot(session.id)
        return snap is not None and part in snap.updated

    assert _wait_for(lambda: updated("context"))
    assert _wait_for(lambda: updated("conversation"))
    assert _wait_for(lambda: updated("projectState"))
    assert _wait_for(lambda: any(p.trigger is Trigger.AUTO for p in store.list_points(session.id)))
    snap = store.load_context_snapshot(session.id)
    assert snap is not None
    assert snap.conversation_context.recent_discussions == ["please add reminders"]
    assert snap.code_context.vcs == "git"
    session.end()


def test_nothing_is_saved_again_when_nothing_changed(tmp_path: Path) -> None:
    root = _project(tmp_path, "")
    mgr = SessionManager(project_dir=root, user_id="alice", config=load_config(root, environ={}))
    session = mgr.start(task="TASK-1", auto_save=False)
    saver = AutoSaver(session, mgr.config, heartbeat=False)
    session.add_message("user", "one")
    assert [saver.run_once(k) for k in ("context", "conversation", "projectState", "full")] == [
        True,
        True,
        True,
        True,
    ]
    assert [saver.run_once(k) for k in ("context", "conversation", "projectState", "full")] == [
        False,
        False,
        False,
        False,
    ]
    session.decide("a decision is not a message", major=False)
    assert saver.run_once("context") and not saver.run_once("conversation")
    assert saver.run_once("full") and not saver.run_once("projectState")
    (root / "new.txt").write_text("a change in the project")
    assert saver.run_once("projectState")
    snap = mgr.store.load_context_snapshot(session.id)
    assert snap is not None and "new.txt" in snap.code_context.last_modified_files
    session.end()


def test_the_scheduler_stops_when_the_session_ends(tmp_path: Path) -> None:
    root = _project(tmp_path, 'context-interval = "0.1s"\nheartbeat-interval = "0.1s"\n')
    mgr = SessionManager(project_dir=root, user_id="alice", config=load_config(root, environ={}))

    def savers() -> int:
        # Sessions other tests left open have savers too; count, do not list.
        return sum(t.name.startswith("continuity-autosave") for t in threading.enumerate())

    before = savers()
    session = mgr.start()
    time.sleep(0.3)
    assert savers() == before + 1
    session.end()
    assert savers() == before


def test_a_live_owner_keeps_its_lease_even_without_auto_save(tmp_path: Path) -> None:
    root = _project(tmp_path, 'heartbeat-interval = "0.1s"\nprocess-lease-ttl = "0.5s"\n')
    mgr = SessionManager(project_dir=root, user_id="alice", config=load_config(root, environ={}))
    session = mgr.start(auto_save=False)
    time.sleep(1.2)
    other = SessionManager(project_dir=root, user_id="alice", config=load_config(root, environ={}))
    assert other.detect_interruptions() == []
    session.add_message("user", "still mine")
    session.end()
    assert mgr.store.list_points(session.id)[-1].trigger is Trigger.END
