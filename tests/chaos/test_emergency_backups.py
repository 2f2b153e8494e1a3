"""Emergency backups: destroy the registry, the recovery points and even the journals,
and ``continuity emergency`` still says what the active session was doing."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from chaos_support import FIGURES, STORE_KINDS, manager, run_cli, store_url

from agent_continuity.model import SessionStatus

DESTROYED = {
    "registry-and-points": (
        ["sessions/session-registry.json", "sessions/active-sessions.json"],
        ["snapshots/recovery-points"],
        ("sessions", "points"),
    ),
    "everything-but-the-backups": (
        ["sessions/session-registry.json", "sessions/active-sessions.json"],
        [
            "snapshots/recovery-points",
            "snapshots/conversation-history",
            "snapshots/context-snapshots",
            "sessions/leases",
            "sessions/session-archive",
            "recovery/recovery-logs",
        ],
        ("sessions", "points", "events", "leases", "snapshots", "recovery_log"),
    ),
}


def destroy(kind: str, base: Path, what: str) -> None:
    files, folders, tables = DESTROYED[what]
    if kind == "files":
        root = base / "tracking"
        for name in files:
            (root / name).unlink()
        for name in folders:
            shutil.rmtree(root / name)
        return
    with sqlite3.connect(base / "continuity.db") as conn:
        for table in tables:
            conn.execute(f"DELETE FROM {table}")
    conn.close()


@pytest.mark.parametrize("what", list(DESTROYED))
@pytest.mark.parametrize("kind", STORE_KINDS)
def test_emergency_recovery_needs_nothing_but_the_backups(
    kind: str, what: str, tmp_path: Path
) -> None:
    url = store_url(kind, tmp_path)
    with manager(url, tmp_path) as mgr:
        old = mgr.start(task="TASK-OLD", phase="phase-1", owned_by_process=False, auto_save=False)
        old.decide("an old decision")
        old.end()
        live = mgr.start(
            type="task-execution",
            task="TASK-6-004",
            phase="phase-6",
            owned_by_process=False,
            auto_save=False,
        )
        live.add_message("user", "Add SMS reminders to bookings")
        live.complete_step("database-schema-created")
        live.next_step("test-sms-endpoints")
        live.next_step("write the opt-in page")
        live.block("Twilio account not verified yet")
        live.decide("Using Twilio as primary SMS provider")
        live.decide("Reminders go out 24 h before the booking")
        live.set_step("sms-endpoint")
        live.set_progress(40)
        live.add_message("assistant", "Working on the endpoint now")
        assert mgr.get(live.id).status is SessionStatus.ACTIVE
        session_id = live.id

    destroy(kind, tmp_path, what)
    FIGURES["stores destroyed but for their emergency backups"] += 1

    done = run_cli(["--store", url, "emergency", "--json"], tmp_path)
    assert done.code == 0, done
    result = done.json()
    assert result["status"] == "success", result["warnings"]
    assert result["mode"] == "emergency"
    top = result["urgentTasks"][0]
    assert top["sessionId"] == session_id
    assert top["task"] == "TASK-6-004"
    assert top["phase"] == "phase-6"
    assert top["step"] == "sms-endpoint"
    assert top["progress"] == "40%"
    assert top["nextSteps"] == ["test-sms-endpoints", "write the opt-in page"]
    assert top["blockers"] == ["Twilio account not verified yet"]
    assert result["criticalInfo"]["lastDecisions"][0] == "Reminders go out 24 h before the booking"
    assert result["criticalInfo"]["currentPhase"] == "phase-6"
    assert "resolve blocker: Twilio account not verified yet" in result["nextSteps"]
    assert "TASK-6-004" in result["basicContext"]
    # The completed session is known, but not urgent.
    assert [t["sessionId"] for t in result["urgentTasks"]] == [session_id]
