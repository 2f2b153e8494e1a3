"""The `continuity` command line, run as a user runs it: real processes, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from agent_continuity.cli.main import cli

TRACKING = Path("projectDocs/tracking")


def run(
    root: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent_continuity.cli", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
        env={**os.environ, "CONTINUITY_USER": "alice", **(env or {})},
    )


def ok(root: Path, *args: str, stdin: str | None = None) -> dict[str, object]:
    result = run(root, *args, "--json", stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    data: dict[str, object] = json.loads(result.stdout)
    return data


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def test_start_lays_out_the_specification_folders_and_they_fill(repo: Path) -> None:
    started = ok(
        repo, "start", "--type", "task-execution", "--task", "TASK-6-004", "--phase", "phase-6"
    )
    session_id = str(started["sessionId"])
    registry = json.loads((repo / TRACKING / "sessions/session-registry.json").read_text())
    meta = registry["sessionRegistry"]["metadata"]
    assert meta["totalSessions"] == 1 and meta["lastSessionId"] == session_id
    entry = registry["sessionRegistry"]["sessions"][session_id]
    assert entry["context"]["currentTask"] == "TASK-6-004"
    assert entry["persistence"]["backupCount"] == 5

    ok(repo, "message", "--role", "user", "Add SMS reminders")
    ok(repo, "message", "--role", "assistant", "-", stdin="Plan: schema, provider, tests\n")
    ok(
        repo,
        "update",
        "--decision",
        "Twilio is the provider",
        "--next",
        "test-sms",
        "--complete",
        "schema",
        "--progress",
        "40",
        "--file",
        "sms.py",
    )
    saved = ok(repo, "save")
    assert str(saved["recoveryPointId"]).startswith("RECOVERY-")

    journal = repo / TRACKING / "snapshots/conversation-history"
    lines = [json.loads(line) for f in journal.iterdir() for line in f.read_text().splitlines()]
    texts = [e["payload"].get("text") for e in lines if e["kind"] == "message"]
    assert texts == ["Add SMS reminders", "Plan: schema, provider, tests\n"]
    assert any((repo / TRACKING / "snapshots/recovery-points").rglob("*.gz"))
    assert list((repo / TRACKING / "recovery/emergency-backups").iterdir())

    shown = ok(repo, "show", session_id)
    session = shown["session"]
    assert isinstance(session, dict)
    assert session["state"]["progress"] == "40%"
    assert session["state"]["nextSteps"] == ["test-sms"]
    assert session["context"]["keyDecisions"] == ["Twilio is the provider"]
    listed = ok(repo, "list", "--status", "active")
    assert [s["id"] for s in listed["sessions"]] == [session_id]  # type: ignore[union-attr]

    ok(repo, "end")
    assert ok(repo, "show", session_id)["session"]["status"] == "completed"  # type: ignore[index]


def test_interrupt_then_list_shows_the_cause(repo: Path) -> None:
    ok(repo, "start", "--task", "T-1")
    assert run(repo, "interrupt", "--cause", "laptop slept").returncode == 0
    (entry,) = ok(repo, "list")["sessions"]  # type: ignore[misc]
    assert entry["status"] == "interrupted"
    assert entry["interruption"]["cause"] == "laptop slept"


@pytest.mark.slow  # eight processes at once: a durability stress test, left out of `make quick`
def test_eight_processes_starting_25_sessions_each_get_200_distinct_ids(repo: Path) -> None:
    def burst(_: int) -> list[str]:
        script = (
            "import json, subprocess, sys\n"
            "ids = []\n"
            "for _ in range(25):\n"
            "    out = subprocess.run([sys.executable, '-m', 'agent_continuity.cli', 'start',"
            " '--json'], capture_output=True, text=True, check=True).stdout\n"
            "    ids.append(json.loads(out)['sessionId'])\n"
            "print(json.dumps(ids))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        return list(json.loads(done.stdout))

    with ThreadPoolExecutor(8) as pool:
        ids = [i for batch in pool.map(burst, range(8)) for i in batch]
    assert len(ids) == 200 and len(set(ids)) == 200
    registry = json.loads((repo / TRACKING / "sessions/session-registry.json").read_text())
    assert registry["sessionRegistry"]["metadata"]["totalSessions"] == 200
    assert set(registry["sessionRegistry"]["sessions"]) == set(ids)


def test_verify_names_a_torn_journal_and_a_flipped_recovery_point(repo: Path) -> None:
    session_id = str(ok(repo, "start", "--task", "T-1")["sessionId"])
    for i in range(5):
        ok(repo, "message", "--role", "user", f"message {i}")
    ok(repo, "save")
    assert run(repo, "verify").returncode == 0

    journal = repo / TRACKING / "snapshots/conversation-history" / f"{session_id}.jsonl"
    data = journal.read_bytes()
    journal.write_bytes(data[:-7])
    torn = run(repo, "verify")
    assert torn.returncode == 1
    assert journal.name in torn.stdout
    shown = ok(repo, "show", session_id)
    assert shown["damage"]
    assert [m["text"] for m in shown["recentMessages"]][:4] == [  # type: ignore[index,union-attr]
        f"message {i}" for i in range(4)
    ]
    journal.write_bytes(data)

    (point,) = [
        p
        for p in (repo / TRACKING / "snapshots/recovery-points").rglob("*.gz")
        if "AUTO" not in p.name
    ][-1:]
    raw = bytearray(point.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    point.write_bytes(bytes(raw))
    flipped = run(repo, "verify", "--json")
    assert flipped.returncode == 1
    report = json.loads(flipped.stdout)
    assert any(point.name in d["location"] for d in report["damage"])


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (("show", "../../etc/passwd"), "invalid-identifier", "not a session id"),
        (("show", "SESSION-2411-1"), "invalid-identifier", "not a session id"),
        (("show", "SESSION-241124-009"), "no-store", "no store"),  # this project has none yet
        (("message", "--role", "robot", "hi"), "usage", "robot"),
        (("update",), "no-active-session", "no active session"),
        (("list", "--bogus"), "usage", "No such option"),
        (("save", "--trigger", "whenever"), "invalid-input", "unknown trigger"),
        (("--store", "ftp://x", "list"), "config-error", "unknown store URL"),
        (("run",), "usage", "Missing argument"),
    ],
)
def test_errors_are_one_line_on_stderr_and_exit_1(
    repo: Path, args: tuple[str, ...], code: str, fragment: str
) -> None:
    result = run(repo, *args)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"continuity: error [{code}]: ")
    assert fragment.lower() in lines[0].lower()
    assert "Traceback" not in result.stderr


def test_a_bad_config_file_is_an_error_not_a_traceback(repo: Path) -> None:
    (repo / "continuity.toml").write_text("backup-count = 'many'\n")
    result = run(repo, "list")
    assert result.returncode == 1
    assert "backup_count must be a whole number" in result.stderr


def test_store_comes_from_the_option_then_the_environment(repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "elsewhere.db"
    ok(repo, "--store", f"sqlite:///{db}", "start")
    assert db.exists() and not (repo / TRACKING).exists()
    listed = run(repo, "list", "--json", env={"CONTINUITY_STORE": f"sqlite:///{db}"})
    assert len(json.loads(listed.stdout)["sessions"]) == 1


def test_every_command_has_help_that_explains_it() -> None:
    for name, command in cli.commands.items():
        assert command.help and len(command.help) > 20, name
        result = subprocess.run(
            [sys.executable, "-m", "agent_continuity.cli", name, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0 and "Usage: continuity" in result.stdout, name


def test_a_batched_command_makes_its_appends_durable_before_it_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In batched mode a background thread syncs the journal; a command's process
    # ends right after it returns, and that thread with it.
    (tmp_path / ".git").mkdir()
    monkeypatch.chdir(tmp_path)
    env = {"CONTINUITY_USER": "alice", "CONTINUITY_DURABILITY": "batched"}
    runner = CliRunner()
    started = runner.invoke(cli, ["start", "--json"], env=env)
    assert started.exit_code == 0, started.output
    synced: list[int] = []
    fdatasync = os.fdatasync

    def recording_fdatasync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", recording_fdatasync)
    said = runner.invoke(cli, ["message", "--role", "user", "hello"], env=env)
    assert said.exit_code == 0, said.output

    session_id = json.loads(started.output)["sessionId"]
    [journal] = (tmp_path / TRACKING / "snapshots/conversation-history").glob(f"{session_id}*")
    assert journal.stat().st_ino in synced
    flushers = [t for t in threading.enumerate() if str(tmp_path) in t.name]
    assert flushers == []


def test_a_bug_is_one_line_and_continuity_debug_shows_its_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from agent_continuity.cli.errors import run as run_group

    @click.group()
    def group() -> None:
        pass

    @group.command()
    def crash() -> None:
        raise RuntimeError("boom")

    assert run_group(group, ["crash"]) == 1
    quiet = capsys.readouterr().err
    assert quiet.count("\n") == 1 and "RuntimeError: boom" in quiet and "CONTINUITY_DEBUG" in quiet
    assert run_group(group, ["crash"], debug=True) == 1
    loud = capsys.readouterr().err
    assert loud.startswith("Traceback") and 'raise RuntimeError("boom")' in loud
