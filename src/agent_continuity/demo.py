"""``continuity demo``: a session dies by ``kill -9`` mid-task and comes back.

Everything happens in a temporary git project that is removed afterwards: a
real agent process does real work through the public API, is killed without
warning while a tool call is in flight, the project changes behind its back,
and recovery detects the death, measures the change, scores its confidence,
decides, and writes the prompt for the next agent.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent_continuity.recovery import RecoveryResult

AGENT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from agent_continuity import SessionManager

    root = Path(sys.argv[1])
    mgr = SessionManager(project_dir=root, user_id="demo")
    s = mgr.start(type="task-execution", task="TASK-6-004", phase="phase-6")
    s.add_message("user", "Add SMS reminders to the booking system, Twilio as provider.")
    s.add_message("assistant", "Plan: schema first, then the provider interface, then tests.")
    s.decide("Using Twilio as primary SMS provider")
    s.decide("Implementing a mock provider for tests")
    (root / "sms.py").write_text("class SmsProvider:\\n    def send(self, to, body): ...\\n")
    s.touch_file("sms.py", "added")
    s.complete_step("database-schema-created")
    s.complete_step("sms-provider-interface-implemented")
    s.set_step("admin-interface-integration")
    s.next_step("test-sms-endpoints")
    s.next_step("integrate-with-settings")
    s.set_progress(85)
    s.add_message("assistant", "Running the test suite before wiring the admin page.")
    s.record_tool_call("run_tests", {"path": "tests/"})
    print("working", s.id, flush=True)
    time.sleep(600)
    """
)

SEED_FILES = {
    "app.py": "def book(slot):\n    return {'slot': slot, 'confirmed': True}\n",
    "README.md": "# Booking system\n",
    "tests/test_app.py": "from app import book\n\ndef test_book():\n    assert book(1)\n",
    "notes/old-plan.md": "Send e-mail reminders only.\n",
}


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=demo", "-c", "user.email=demo@example.invalid", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def _make_project(root: Path) -> None:
    for rel, text in SEED_FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / ".gitignore").write_text("projectDocs/\n")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "Booking system")


def run_demo(
    echo: Callable[[str], None],
    show_result: Callable[[RecoveryResult], str],
    *,
    keep: bool = False,
) -> RecoveryResult:
    """Run the demo, printing each stage through ``echo``.

    Args:
        echo: Prints one block of text.
        show_result: Renders a recovery result for people.
        keep: Keep the temporary project and say where it is.

    Returns:
        The recovery result.
    """
    from agent_continuity.session import SessionManager

    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="continuity-demo-"))
    try:
        root = folder / "project"
        root.mkdir()
        _make_project(root)
        echo(f"1. A coding agent starts a session in a fresh git project ({root}).")
        env = {**os.environ, "CONTINUITY_STORE": ""}
        agent = subprocess.Popen(
            [sys.executable, "-c", AGENT, str(root)],
            cwd=root,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert agent.stdout is not None
        line = agent.stdout.readline().split()
        if not line or line[0] != "working":
            agent.kill()
            raise RuntimeError("the demo agent did not start; run `make test` to see why")
        session_id = line[1]
        echo(
            f"   {session_id}: 3 messages, 2 decisions, 2 steps done, 85%, "
            "and a `run_tests` tool call in flight."
        )
        os.kill(agent.pid, signal.SIGKILL)
        agent.wait()
        agent.stdout.close()
        echo(f"2. kill -9 {agent.pid}: the agent dies without a word, mid tool call.")
        (root / "README.md").write_text("# Booking system\n\nNow with SMS reminders.\n")
        (root / "docs").mkdir()
        (root / "docs" / "sms.md").write_text("Twilio credentials live in the vault.\n")
        (root / "notes" / "old-plan.md").unlink()
        echo("3. Meanwhile someone edits README.md, adds docs/sms.md, deletes notes/old-plan.md.")
        mgr = SessionManager(project_dir=root, user_id="demo")
        found = [r for r in mgr.detect_interruptions() if r.id == session_id]
        cause = found[0].interruption.cause if found and found[0].interruption else "unknown"
        echo(f"4. The next command notices the dead owner: {session_id} interrupted ({cause}).")
        result = mgr.recover()
        echo("5. `continuity recover` rebuilds the session and decides:\n")
        echo(show_result(result))
        mgr.close()
        echo(f"\n(demo finished in {time.monotonic() - started:.1f} s)")
        if keep:
            echo(f"The demo project is kept in {root}")
        return result
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
