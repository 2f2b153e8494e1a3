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


def damage_the_backup(kind: str, base: Path, session_id: str) -> str:
    """Flip one letter inside the session's emergency backup; returns how it is named."""

    def flip(data: bytearray) -> None:
        at = data.index(b"TASK-6-004")
        data[at] ^= 0x20  # "tASK-6-004": still JSON, no longer what was written

    if kind == "files":
        path = base / "tracking" / "recovery" / "emergency-backups" / f"{session_id}.json"
        data = bytearray(path.read_bytes())
        flip(data)
        path.write_bytes(bytes(data))
        return path.name
    with sqlite3.connect(base / "continuity.db") as conn:
        (doc,) = conn.execute(
            "SELECT doc FROM emergency WHERE session_id = ?", (session_id,)
        ).fetchone()
        data = bytearray(doc)
        flip(data)
        conn.execute("UPDATE emergency SET doc = ? WHERE session_id = ?", (bytes(data), session_id))
    conn.close()
    return f"emergency/{session_id}"


def interrupted_session(url: str, project: Path) -> str:
    with manager(url, project) as mgr:
        live = mgr.start(
            task="TASK-6-004", phase="phase-6", owned_by_process=False, auto_save=False
        )
        live.add_message("user", "Add SMS reminders to bookings")
        live.next_step("test-sms-endpoints")
        live.decide("Using Twilio as primary SMS provider")
        live.interrupt("laptop slept")
        return live.id


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_damaged_backup_is_reported_as_the_backup_and_the_rest_still_holds_it(
    kind: str, tmp_path: Path
) -> None:
    url = store_url(kind, tmp_path)
    session_id = interrupted_session(url, tmp_path)
    name = damage_the_backup(kind, tmp_path, session_id)
    FIGURES["emergency backups damaged"] += 1

    done = run_cli(["--store", url, "recover", session_id, "--yes", "--json"], tmp_path)
    assert done.code == 0, done
    result = done.json()
    assert (result["status"], result["outcome"]) == ("partial", "restored")
    about = [w for w in result["warnings"] if name in w]
    assert len(about) == 1, result["warnings"]
    assert about[0].startswith("the emergency backup "), about
    assert "still recoverable from recovery point RECOVERY-" in about[0], about
    assert not any(
        "recovery point" in w and "failed verification" in w and name not in w
        for w in result["warnings"]
    ), result["warnings"]
    identified = result["steps"][0]["output"]
    assert "skipped as damaged" not in identified, identified
    # What the backup held came back from the recovery point and the journal.
    assert result["nextSteps"] == ["test-sms-endpoints"]
    assert "TASK-6-004" in result["prompt"]

    # Resuming wrote a sound backup again.
    with manager(url, tmp_path) as mgr:
        backup = mgr.store.load_emergency(session_id)
        assert backup is not None and backup.current_task == "TASK-6-004"


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_damaged_backup_with_nothing_else_left_says_the_critical_info_is_lost(
    kind: str, tmp_path: Path
) -> None:
    url = store_url(kind, tmp_path)
    session_id = interrupted_session(url, tmp_path)
    name = damage_the_backup(kind, tmp_path, session_id)
    if kind == "files":
        root = tmp_path / "tracking" / "snapshots"
        shutil.rmtree(root / "recovery-points")
        (root / "conversation-history" / f"{session_id}.jsonl").write_bytes(b"")
    else:
        with sqlite3.connect(tmp_path / "continuity.db") as conn:
            conn.execute("DELETE FROM points")
            conn.execute("DELETE FROM events")
        conn.close()

    done = run_cli(["--store", url, "recover", session_id, "--json"], tmp_path)
    assert done.code == 0, done
    result = done.json()
    assert result["status"] == "failed"
    about = [w for w in result["warnings"] if name in w]
    assert len(about) == 1, result["warnings"]
    assert "nothing else holds" in about[0], about
