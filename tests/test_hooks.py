"""`continuity hooks` and the hook process, without a real agent (see test_hooks_claude.py).

The hook is run exactly as an agent runs it: the command ``hooks install``
wrote, through ``sh -c``, with the hook's JSON on stdin, from a parent
process that plays the agent (its pid holds the session's lease).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent_continuity import SessionManager
from agent_continuity.hooks import spool
from agent_continuity.hooks.settings import hook_command


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    monkeypatch.setenv("CONTINUITY_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CONTINUITY_STORE", raising=False)
    return root


def continuity(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent_continuity.cli", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# An "agent": a Python process that runs each hook it is given (one JSON input
# a line on its stdin) through a shell, as Claude Code does, and answers with
# the hook's output on one line. Its pid is the agent's.
AGENT = """
import subprocess, sys
for line in sys.stdin:
    done = subprocess.run(["sh", "-c", sys.argv[1]], input=line.encode(), capture_output=True)
    print(done.stdout.decode().strip(), flush=True)
"""


class Agent:
    """One agent process of one agent session id, running hooks in ``root``."""

    def __init__(self, root: Path, session: str) -> None:
        self.root, self.session = root, session
        self.process = subprocess.Popen(
            [sys.executable, "-c", AGENT, hook_command("claude")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=root,
        )
        LIVING.append(self.process)

    @property
    def pid(self) -> int:
        return self.process.pid

    def hook(self, event: str, **fields: Any) -> Any:
        """Run the installed hook for ``event``; what it printed (parsed), or None."""
        payload = {"session_id": self.session, "cwd": str(self.root), "hook_event_name": event}
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({**payload, **fields}) + "\n")
        self.process.stdin.flush()
        output = self.process.stdout.readline().strip()
        return json.loads(output) if output else None

    def kill_9(self) -> None:
        """Kill the agent with SIGKILL: no SessionEnd, no Stop."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


LIVING: list[subprocess.Popen[str]] = []  # the fixture kills those left


@pytest.fixture(autouse=True)
def _kill_agents() -> Any:
    yield
    while LIVING:
        process = LIVING.pop()
        process.kill()
        process.wait()


def events_of(root: Path, session_id: str) -> list[tuple[str, dict[str, Any]]]:
    with SessionManager(project_dir=root) as mgr:
        return [(e.kind.value, e.payload) for e in mgr.events(session_id)]


def listed(root: Path) -> list[dict[str, Any]]:
    done = continuity(root, "list", "--json")
    assert done.returncode == 0, done.stderr
    sessions: list[dict[str, Any]] = json.loads(done.stdout)["sessions"]
    return sessions


# -- hooks install / uninstall / status --------------------------------------


def test_install_merges_into_claude_settings_and_twice_changes_nothing(project: Path) -> None:
    settings = project / ".claude" / "settings.json"
    settings.parent.mkdir()
    theirs = {"type": "command", "command": "echo theirs"}
    settings.write_text(
        json.dumps({"model": "opus", "hooks": {"Stop": [{"hooks": [theirs]}]}}, indent=4)
    )
    first = continuity(project, "hooks", "install", "claude", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["changed"] is True
    written = settings.read_bytes()
    data = json.loads(written)
    assert data["model"] == "opus"
    assert {"hooks": [theirs]} in data["hooks"]["Stop"]  # theirs kept as it was
    for event in ("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop"):
        commands = [h["command"] for g in data["hooks"][event] for h in g["hooks"]]
        assert hook_command("claude") in commands
    again = continuity(project, "hooks", "install", "claude", "--json")
    assert json.loads(again.stdout)["changed"] is False
    assert settings.read_bytes() == written

    status = json.loads(continuity(project, "hooks", "status", "--json").stdout)
    claude = next(a for a in status["agents"] if a["agent"] == "claude" and a["scope"] == "project")
    assert claude["installed"] and "PostToolUse" in claude["events"]

    gone = continuity(project, "hooks", "uninstall", "claude", "--json")
    assert json.loads(gone.stdout)["changed"] is True
    assert json.loads(settings.read_text()) == {
        "model": "opus",
        "hooks": {"Stop": [{"hooks": [theirs]}]},
    }


def test_user_scope_writes_the_settings_in_home(project: Path, tmp_path: Path) -> None:
    done = continuity(project, "hooks", "install", "claude", "--scope", "user")
    assert done.returncode == 0, done.stderr
    assert (
        "SessionStart" in json.loads((tmp_path / "home/.claude/settings.json").read_text())["hooks"]
    )
    assert not (project / ".claude").exists()


def test_gemini_and_codex_get_their_own_events_and_files(project: Path) -> None:
    assert continuity(project, "hooks", "install", "gemini").returncode == 0
    gemini = json.loads((project / ".gemini/settings.json").read_text())["hooks"]
    assert {"SessionStart", "BeforeAgent", "AfterTool", "AfterAgent", "SessionEnd"} <= set(gemini)

    config = project / ".codex" / "config.toml"
    config.parent.mkdir()
    config.write_text('model = "o3"\n\n[features]\nweb_search = true\n')
    assert continuity(project, "hooks", "install", "codex").returncode == 0
    codex = json.loads((project / ".codex/hooks.json").read_text())["hooks"]
    assert {"SessionStart", "UserPromptSubmit", "PostToolUse", "Stop"} <= set(codex)
    text = config.read_text()
    assert 'model = "o3"' in text and "web_search = true" in text
    assert "[features]\nhooks = true\n" in text  # hooks are behind this flag in Codex
    assert continuity(project, "hooks", "install", "codex").returncode == 0
    assert config.read_text() == text

    status = json.loads(continuity(project, "hooks", "status", "--json").stdout)
    entry = next(a for a in status["agents"] if a["agent"] == "codex" and a["scope"] == "project")
    assert entry["installed"] and entry["enabled"]
    assert "continuity import codex" in entry["note"]


def test_settings_that_are_not_json_are_refused_and_left_alone(project: Path) -> None:
    settings = project / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text("{not json")
    done = continuity(project, "hooks", "install", "claude")
    assert done.returncode == 1
    assert "not valid JSON" in done.stderr and "Traceback" not in done.stderr
    assert settings.read_text() == "{not json"


# -- the hook process ---------------------------------------------------------


def test_a_hook_never_fails_the_turn_and_its_error_shows_in_verify(project: Path) -> None:
    done = subprocess.run(
        shlex.split(hook_command("claude")),
        input=b"\x00 not json at all",
        capture_output=True,
        cwd=project,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, b"")
    assert continuity(project, "start").returncode == 0
    report = json.loads(continuity(project, "verify", "--json").stdout)
    assert report["hookErrors"]["count"] == 1
    assert "session id" in report["hookErrors"]["newest"][0]["error"]
    assert "hook errors" in continuity(project, "verify").stdout


def test_the_agent_holds_the_lease_and_a_kill_9_is_an_interruption_at_once(project: Path) -> None:
    continuity(project, "hooks", "install", "claude")
    agent = Agent(project, "agent-1")
    agent.hook("SessionStart", source="startup")
    agent.hook("UserPromptSubmit", prompt="Add SMS reminders")
    (session,) = listed(project)
    assert session["status"] == "active"  # its agent lives
    # The hooks ran in processes that have exited: the agent's pid holds the lease.
    with SessionManager(project_dir=project) as mgr:
        assert mgr.store.read_lease(session["id"]).pid == agent.pid
    agent.kill_9()
    (session,) = listed(project)
    assert session["status"] == "interrupted"
    assert ("message", {"role": "user", "text": "Add SMS reminders"}) in events_of(
        project, session["id"]
    )


def test_commands_write_the_spool_first_even_when_the_agent_died_before_it_was_read(
    project: Path,
) -> None:
    agent = Agent(project, "agent-2")
    assert agent.hook("SessionStart", source="startup") is None  # nothing to recover yet
    agent.hook("UserPromptSubmit", prompt="Fix the payment test")
    agent.hook("PreToolUse", tool_name="Bash", tool_input={"command": "pytest"}, tool_use_id="t1")
    agent.kill_9()  # a prompt and a tool call in flight, perhaps not written yet
    (session,) = listed(project)  # `list` ingests before it looks
    assert session["status"] == "interrupted"
    kinds = [kind for kind, _ in events_of(project, session["id"])]
    assert kinds.count("message") == 1 and kinds.count("tool-call") == 1
    assert kinds.index("tool-call") < kinds.index("lifecycle")  # written before the end


def test_session_start_injects_the_recovery_of_an_interrupted_session(project: Path) -> None:
    old = Agent(project, "old")
    old.hook("SessionStart", source="startup")
    old.hook("UserPromptSubmit", prompt="Migrate the billing tables")
    old.kill_9()
    output = Agent(project, "new").hook("SessionStart", source="startup")
    context = output["hookSpecificOutput"]
    assert context["hookEventName"] == "SessionStart"
    assert "Migrate the billing tables" in context["additionalContext"]
    sessions = {s["id"]: s for s in listed(project)}
    assert len(sessions) == 2
    # The new agent lives: a third start has nothing to recover (the old one was, once).
    assert Agent(project, "newer").hook("SessionStart", source="startup") is None


def test_precompact_makes_a_recovery_point_with_its_own_trigger(project: Path) -> None:
    agent = Agent(project, "c1")
    agent.hook("SessionStart", source="startup")
    agent.hook("PreCompact", trigger="auto")
    (session,) = listed(project)
    shown = json.loads(continuity(project, "show", session["id"], "--json").stdout)
    assert "compaction" in [p["trigger"] for p in shown["recoveryPoints"]]


def test_a_torn_last_line_waits_and_a_damaged_line_is_reported(project: Path) -> None:
    agent = Agent(project, "t1")
    agent.hook("SessionStart", source="startup")
    path = spool.spool_file(str(project), "claude", "t1")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    good = spool.encode(
        {
            "agent": "claude",
            "event": "UserPromptSubmit",
            "pid": agent.pid,
            "input": {"session_id": "t1", "prompt": "one"},
        }
    )
    damaged = bytearray(good)
    damaged[30] ^= 0x01
    with open(path, "ab") as handle:
        handle.write(bytes(damaged) + good + good[:20])  # the last line is still being written
    (session,) = listed(project)
    texts = [p["text"] for kind, p in events_of(project, session["id"]) if kind == "message"]
    assert texts == ["one"]
    assert spool.done_offset(path) == os.path.getsize(path) - 20  # the torn line waits
    log = spool.read_log()
    assert any(e.get("error") == "damaged spool line skipped" and e.get("line") == 1 for e in log)


def test_field_reads_top_level_strings_without_parsing() -> None:
    raw = json.dumps(
        {"session_id": 'a"b', "cwd": "/tmp/é x", "hook_event_name": "Stop", "n": {"cwd": "no"}}
    ).encode()
    assert spool.field(raw, "session_id") == 'a"b'
    assert spool.field(raw, "cwd") == "/tmp/é x"
    assert spool.field(raw, "hook_event_name") == "Stop"
    assert spool.field(raw, "missing") is None
    assert spool.field(b'{"cwd" : 3}', "cwd") is None


def test_a_recording_hook_imports_only_a_few_standard_modules() -> None:
    # The hook script's own imports, in the interpreter the installed command starts.
    code = (
        "import sys; before = set(sys.modules)\n"
        f"exec(compile(open({spool.__file__!r}).read(), 'spool', 'exec'), {{'__name__': 'x'}})\n"
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    loaded = set(done.stdout.split())
    assert not loaded & {"json", "re", "typing", "pathlib", "threading", "agent_continuity"}


def test_a_command_run_before_the_first_session_is_written_writes_it(project: Path) -> None:
    # The first SessionStart in a project only spools (nothing to recover); a
    # reading command that runs before the ingester creates the store.
    agent = Agent(project, "first")
    assert agent.hook("SessionStart", source="startup") is None
    agent.hook("UserPromptSubmit", prompt="hello")
    (session,) = listed(project)
    assert session["status"] == "active"
    assert ("message", {"role": "user", "text": "hello"}) in events_of(project, session["id"])
    assert spool.read_log() == []


# -- the public API the hooks stand on ----------------------------------------


def test_a_session_owned_by_another_process_is_interrupted_when_it_dies(project: Path) -> None:
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    LIVING.append(owner)  # type: ignore[arg-type]
    with SessionManager(store="memory:", project_dir=project, observer=False) as mgr:
        session = mgr.start(task="TASK-1", owner_pid=owner.pid)
        session.add_message("user", "before")
        assert mgr.detect_interruptions() == []  # its owner lives (no heartbeat thread here)
        owner.kill()
        owner.wait()
        # What the dead owner left is still written for it, without marking it first...
        late = mgr.attach(session.id, owner_pid=owner.pid)
        late.add_message("assistant", "after")
        # ...and the next look finds it interrupted, with everything in it.
        (marked,) = mgr.detect_interruptions()
        assert marked.id == session.id and marked.status.value == "interrupted"
        texts = [e.payload.get("text") for e in mgr.events(session.id) if e.kind.value == "message"]
        assert texts == ["before", "after"]
        assert mgr.start_recovered(session.id, owner_pid=os.getpid()).new_session_id


def test_resuming_an_ended_agent_session_continues_it_in_a_linked_session(project: Path) -> None:
    first = Agent(project, "r1")
    first.hook("SessionStart", source="startup")
    first.hook("UserPromptSubmit", prompt="Plan the release")
    first.hook("SessionEnd", reason="prompt_input_exit")
    (ended,) = listed(project)
    assert ended["status"] == "completed"
    again = Agent(project, "r1")  # `claude --resume r1`: a new process, the same agent session
    assert again.hook("SessionStart", source="resume") is None  # it ended well: nothing to recover
    again.hook("UserPromptSubmit", prompt="Now ship it")
    sessions = {s["id"]: s for s in listed(project)}
    (current,) = [s for s in sessions.values() if s["id"] != ended["id"]]
    assert current["status"] == "active" and current["recoveredFrom"] == ended["id"]
    assert ("message", {"role": "user", "text": "Now ship it"}) in events_of(project, current["id"])
    assert spool.read_log() == []
