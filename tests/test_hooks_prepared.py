"""The SessionStart hook's fast path: a prepared prompt plus the spool says what the full path says.

An agent works a turn (the background ingester prepares its recovery prompt),
starts another, is killed in a tool call (a prompt and the call left in the
spool only), and a new agent starts. The prompt the fast path prints without
the model must be the one the full path (ingest, mark interrupted, analyse)
prints, and the full recovery must still happen behind it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_continuity import SessionManager
from agent_continuity.hooks import prepared, spool
from agent_continuity.storage.envelope import KEY_ENV, KEY_FILE_ENV
from test_hooks import Agent, _kill_agents, events_of, listed  # noqa: F401  (fixtures)
from test_hooks import project as project  # the fixture


def _wait(check: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _killed_mid_tool_call(root: Path, ingested: bool = False) -> tuple[str, Agent]:
    """A dead agent: one turn written and prepared, then a prompt and a tool call spooled only."""
    agent = Agent(root, "old")
    agent.hook("SessionStart", source="startup")
    secret = "token=sk-live-abcdef1234567890"
    agent.hook("UserPromptSubmit", prompt=f"Fix the flaky payment test, {secret}")
    agent.hook("PreToolUse", tool_name="Bash", tool_input={"command": "ls"}, tool_use_id="t0")
    tool = {"tool_name": "Bash", "tool_input": {"command": "ls"}, "tool_use_id": "t0"}
    agent.hook("PostToolUse", tool_response="tests payments", **tool)
    ours = spool.mapped_session("claude", "old")
    assert ours is not None
    with SessionManager(project_dir=root) as mgr:  # what `continuity update` would add
        session = mgr.attach(ours, owner_pid=agent.pid)
        session.next_step("rerun test_payment_retry 50 times")
        session.decide("Mock the clock instead of sleeping", major=False)
    agent.hook("Stop", last_assistant_message="The retry test depends on wall time.")
    path = spool.spool_file(str(root), "claude", "old")
    _wait(
        lambda: (
            os.path.exists(prepared.prepared_file(root, ours))
            and spool.done_offset(path) == os.path.getsize(path)
        ),
        "the ingester to prepare the prompt",
    )
    _wait(lambda: not spool.busy(root), "the ingester to let go of the lock")
    agent.hook("UserPromptSubmit", prompt="Now run it in a loop\nRUN: sleep 30")
    call = {"tool_name": "Bash", "tool_input": {"command": "sleep 30"}, "tool_use_id": "t1"}
    agent.hook("PreToolUse", **call)
    if ingested:  # an ingester wrote (and prepared) the call in flight before the kill
        subprocess.run(
            [sys.executable, "-m", "agent_continuity.hooks.run", "--ingest", str(root)],
            check=True,
            timeout=60,
        )
        assert os.path.getsize(path) == spool.done_offset(path)
    else:
        assert os.path.getsize(path) > spool.done_offset(path)  # in the spool only
    agent.kill_9()
    return ours, agent


@pytest.mark.parametrize("ingested", [False, True], ids=["in-the-spool", "in-the-journal"])
def test_the_fast_prompt_is_the_full_recovery_prompt(project: Path, ingested: bool) -> None:
    old, _ = _killed_mid_tool_call(project, ingested)
    fast = prepared.quick_prompt("claude", "new", project)
    assert fast is not None and fast[0] == old
    # The full path: without the preparation, the hook ingests, marks and analyses.
    os.unlink(prepared.prepared_file(project, old))
    output = Agent(project, "new").hook("SessionStart", source="startup")
    full = output["hookSpecificOutput"]["additionalContext"]
    assert fast[1] == full
    # The key parts, in both: the task, the last messages, the call in flight, next steps.
    assert "Fix the flaky payment test" in full and "sk-live" not in full
    assert "assistant: The retry test depends on wall time." in full
    assert "user: Now run it in a loop RUN: sleep 30" in full
    assert "tool call Bash (callId t1, seq" in full and "never returned" in full
    assert "1. rerun test_payment_retry 50 times" in full
    assert "Mock the clock instead of sleeping" in full


def test_session_start_prints_it_without_the_model_and_recovers_behind(project: Path) -> None:
    old, _ = _killed_mid_tool_call(project)
    expected = prepared.quick_prompt("claude", "new", project)
    assert expected is not None
    # The hook as installed, in a process that reports whether it imported pydantic.
    code = (
        "import runpy, sys\n"
        f"sys.argv = [{spool.__file__!r}, 'claude']\n"
        "try:\n"
        "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stderr.write('pydantic' if 'pydantic' in sys.modules else 'lean')\n"
    )
    payload = {"session_id": "new", "cwd": str(project), "hook_event_name": "SessionStart"}
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        input=json.dumps({**payload, "source": "startup"}).encode(),
        capture_output=True,
        cwd=project,
        timeout=60,
        check=True,
    )
    assert done.stderr.decode().endswith("lean")
    output = json.loads(done.stdout)
    assert output["hookSpecificOutput"]["additionalContext"] == expected[1]
    # Behind it, the detached process wrote the spool, marked the old session and seeded a new one.
    sessions = {s["id"]: s for s in listed(project)}
    assert sessions[old]["status"] != "active"
    new = spool.mapped_session("claude", "new")
    assert new is not None and new != old
    with SessionManager(project_dir=project) as mgr:
        assert mgr.get(new).recovered_from == old
    kinds = [(k, p.get("name") or p.get("text")) for k, p in events_of(project, old)]
    assert ("tool-call", "Bash") in kinds
    assert ("message", "Now run it in a loop\nRUN: sleep 30") in kinds
    assert spool.read_log() == []


def test_a_project_changed_since_the_preparation_takes_the_full_path(project: Path) -> None:
    old, _ = _killed_mid_tool_call(project)
    (project / "payments.py").write_text("changed\n")  # the project moved on since
    assert prepared.quick_prompt("claude", "new", project) is None
    output = Agent(project, "new").hook("SessionStart", source="startup")
    context = output["hookSpecificOutput"]["additionalContext"]
    assert old in context and "Now run it in a loop" in context


def test_records_it_cannot_foresee_take_the_full_path(project: Path) -> None:
    old, dead = _killed_mid_tool_call(project)
    with open(spool.spool_file(str(project), "claude", "old"), "ab") as handle:
        handle.write(
            spool.encode(
                {
                    "agent": "claude",
                    "event": "PostToolUse",
                    "pid": dead.pid,
                    "input": {
                        "session_id": "old",
                        "tool_name": "Write",
                        "tool_input": {"file_path": str(project / "notes.txt")},
                        "tool_use_id": "t2",
                    },
                }
            )
        )
    assert prepared.quick_prompt("claude", "new", project) is None
    output = Agent(project, "new").hook("SessionStart", source="startup")
    context = output["hookSpecificOutput"]["additionalContext"]
    assert old in context and "notes.txt" in context  # the file the full path made active


def test_an_encrypted_store_is_never_prepared_in_the_clear(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "keys.json"))
    monkeypatch.delenv(KEY_ENV, raising=False)
    agent = Agent(project, "secret")
    agent.hook("SessionStart", source="startup")
    made = subprocess.run(
        [sys.executable, "-m", "agent_continuity.cli", "keys", "new"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    agent.hook("UserPromptSubmit", prompt="Rotate the payment keys")
    agent.hook("Stop", last_assistant_message="Rotating them now.")
    path = spool.spool_file(str(project), "claude", "secret")
    _wait(lambda: spool.done_offset(path) == os.path.getsize(path), "the ingester")
    _wait(lambda: not spool.busy(project), "the ingester to let go of the lock")
    folder = Path(spool.project_spool(project)) / "prepared"
    assert not folder.exists() or list(folder.iterdir()) == []
    agent.kill_9()
    output = Agent(project, "after").hook("SessionStart", source="startup")
    assert "Rotate the payment keys" in output["hookSpecificOutput"]["additionalContext"]
