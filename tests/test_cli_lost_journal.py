"""One session's journal is gone: damage to that session, never a locked store.

Deleting one journal used to make `list`, `start` and `verify --repair` fail
for everyone (marking its dead owner's session interrupted appended to the
missing journal). Now the session is listed as damaged, recovered from its
newest valid point and emergency backup with a warning, every other command
goes on, and `verify --repair` rebuilds the journal so the store verifies
clean and the session can be resumed. Run as a user runs it, on both stores.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cli_support import cli

STORES = ["files:tracking", "sqlite:///sessions.db"]


def ok(root: Path, store: str, *args: str) -> dict[str, object]:
    result = cli(root, store, *args, "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def killed_session(root: Path, store: str) -> str:
    """A session owned by a process that died (`kill -9`) after a point and one more message."""
    script = textwrap.dedent(
        f"""
        import os
        from agent_continuity import SessionManager
        mgr = SessionManager(store={store!r}, project_dir={str(root)!r}, user_id="alice")
        s = mgr.start(type="task-execution", task="TASK-LOST")
        s.add_message("user", "send SMS reminders")
        s.decide("Twilio is the provider")
        s.next_step("test-sms-endpoints")
        s.checkpoint()
        s.add_message("user", "said after the point")
        print(s.id, flush=True)
        os._exit(0)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def delete_journal(root: Path, store: str, session_id: str) -> None:
    if store.startswith("files:"):
        (root / "tracking/snapshots/conversation-history" / f"{session_id}.jsonl").unlink()
        return
    conn = sqlite3.connect(root / "sessions.db", isolation_level=None)
    try:
        journal = "(SELECT id FROM journals WHERE session_id = ?)"
        conn.execute(f"DELETE FROM events WHERE journal = {journal}", (session_id,))
        conn.execute("DELETE FROM journals WHERE session_id = ?", (session_id,))
    finally:
        conn.close()


@pytest.fixture(params=STORES, ids=["files", "sqlite"])
def store(request: pytest.FixtureRequest) -> str:
    url: str = request.param
    return url


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def test_a_lost_journal_is_one_damaged_session_and_repair_mends_it(root: Path, store: str) -> None:
    healthy = str(ok(root, store, "start", "--task", "TASK-OK")["sessionId"])
    lost = killed_session(root, store)
    delete_journal(root, store, lost)

    # Every other command works; the damaged session is listed and marked.
    listed = ok(root, store, "list")
    assert [s["id"] for s in listed["sessions"]] == [healthy, lost]  # type: ignore[index]
    assert "journal" in listed["damaged"][lost] and "missing" in listed["damaged"][lost]  # type: ignore[index]
    table = cli(root, store, "list")
    assert table.returncode == 0 and f"DAMAGED {lost}" in table.stdout
    fresh = str(ok(root, store, "start", "--task", "TASK-NEW")["sessionId"])
    assert fresh not in (healthy, lost)
    ok(root, store, "message", "--role", "user", "to the newest session")
    ok(root, store, "message", "--session", healthy, "--role", "user", "to the healthy one")
    ok(root, store, "show", healthy)
    ok(root, store, "emergency")

    # The lost session recovers from its newest valid point, and says what is missing.
    result = ok(root, store, "recover", lost)
    assert result["sessionId"] == lost
    warnings = " ".join(result["warnings"])  # type: ignore[arg-type]
    assert f"the journal of {lost} is missing" in warnings
    assert "Twilio is the provider" in str(result["prompt"])
    assert "test-sms-endpoints" in result["nextSteps"]  # type: ignore[operator]
    assert result["outcome"] == "needs-repair"
    shown = ok(root, store, "show", lost)
    assert any("missing" in d["detail"] for d in shown["damage"])  # type: ignore[attr-defined]

    # verify names it; repair leaves a store that verifies clean.
    found = cli(root, store, "verify", "--json")
    assert found.returncode == 1
    assert any(lost in d["location"] for d in json.loads(found.stdout)["damage"])
    repaired = ok(root, store, "verify", "--repair")
    assert repaired["repairedAll"] is True
    assert any(lost in line and "tombstone" in line for line in repaired["repaired"])  # type: ignore[attr-defined]
    assert cli(root, store, "verify").returncode == 0
    assert lost not in ok(root, store, "list").get("damaged", {})

    # The session is whole again: it resumes, keeps what its point held, and takes writes.
    resumed = ok(root, store, "recover", lost, "--yes")
    assert resumed["outcome"] == "restored"
    assert "Twilio is the provider" in str(resumed["prompt"])
    ok(root, store, "message", "--session", lost, "--role", "user", "back at work")
    assert cli(root, store, "verify").returncode == 0


def test_an_interrupted_session_whose_journal_is_lost_does_not_stop_start(
    root: Path, store: str
) -> None:
    lost = str(ok(root, store, "start", "--task", "TASK-LOST")["sessionId"])
    ok(root, store, "message", "--role", "user", "before the loss")
    assert cli(root, store, "interrupt", "--cause", "laptop closed").returncode == 0
    delete_journal(root, store, lost)

    fresh = str(ok(root, store, "start", "--task", "TASK-NEW")["sessionId"])
    listed = ok(root, store, "list")
    assert [s["id"] for s in listed["sessions"]] == [lost, fresh]  # type: ignore[index]
    assert lost in listed["damaged"]  # type: ignore[operator]
    recovered = ok(root, store, "recover")
    assert recovered["sessionId"] == lost
    assert any("missing" in w for w in recovered["warnings"])  # type: ignore[attr-defined]
    # Told to resume it, recover changes nothing and says how to mend it first.
    answered = ok(root, store, "recover", lost, "--yes")
    assert answered["outcome"] == "needs-repair"
    assert any("verify --repair" in w for w in answered["warnings"])  # type: ignore[attr-defined]
    assert lost in ok(root, store, "list")["damaged"]  # type: ignore[operator]

    # Or it continues in a new session at once, seeded from what survived.
    continued = ok(root, store, "start", "--recover", lost)
    assert continued["recoveredFrom"] == lost
    assert continued["session"]["context"]["currentTask"] == "TASK-LOST"  # type: ignore[index]
    assert any("not archived" in w for w in continued["recovery"]["warnings"])  # type: ignore[index]


def delete_registry_entry(root: Path, store: str, session_id: str) -> None:
    if store.startswith("files:"):
        (root / "tracking/sessions/session-registry.json").unlink()  # the whole registry
        return
    conn = sqlite3.connect(root / "sessions.db", isolation_level=None)
    try:
        conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
    finally:
        conn.close()


def test_losing_the_registry_too_never_drops_what_a_point_still_holds(
    root: Path, store: str
) -> None:
    healthy = str(ok(root, store, "start", "--task", "TASK-OK")["sessionId"])
    lost = killed_session(root, store)  # the day's highest number
    delete_journal(root, store, lost)
    delete_registry_entry(root, store, lost)

    if store.startswith("files:"):  # the files store derives its registry on every read
        listed = ok(root, store, "list")
        assert [s["id"] for s in listed["sessions"]] == [healthy, lost]  # type: ignore[index]
        assert lost in listed["damaged"]  # type: ignore[operator]
    # Its number is not handed out again while its points hold it.
    fresh = str(ok(root, store, "start")["sessionId"])
    assert fresh not in (lost, healthy)
    found = cli(root, store, "verify", "--json")
    assert found.returncode == 1
    assert any(lost in d["location"] for d in json.loads(found.stdout)["damage"])
    assert ok(root, store, "verify", "--repair")["repairedAll"] is True
    assert cli(root, store, "verify").returncode == 0
    listed = [s["id"] for s in ok(root, store, "list")["sessions"]]  # type: ignore[index]
    assert listed == [healthy, lost, fresh]  # type: ignore[index]
    assert "Twilio is the provider" in str(ok(root, store, "recover", lost, "--yes")["prompt"])
