"""The hooks in the real Codex and Gemini CLIs, offline: what a run records, and a kill -9.

Each CLI (from npm, pinned, cached; see ``agent_cli_support``) runs
non-interactively in a throwaway HOME against its fake model API on
127.0.0.1, with the hooks installed by ``continuity hooks install``. A run
that asks for ``echo WORD`` records the prompt, the shell call, its result,
the reply and the end. A run killed with ``kill -9`` (its whole process group,
as when the terminal dies) while the shell runs ``sleep 30`` is found
interrupted by the next ``continuity list``, and the agent's next run starts
with the recovery in its first request to the model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent_cli_support import CODEX, GEMINI, agent_env, fake_api, npm_cli
from agent_continuity import SessionManager
from cli_support import git_project
from coding_agents.claude_code import wait_for, wait_until_ingested


@dataclass
class HookedAgent:
    """A git project, a HOME, the hooks' state, and one real agent CLI hooked up to them."""

    name: str
    root: Path
    home: Path
    state: Path
    log: Path
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def continuity(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``continuity ARGS`` in the project, seeing the same HOME and hooks state."""
        return subprocess.run(
            [sys.executable, "-m", "agent_continuity.cli", *args],
            cwd=self.root,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def _command(self, prompt: str, resume: str | None = None) -> list[str]:
        if resume is None:
            return [*self.argv, prompt]
        if self.name == "codex":  # `codex exec [OPTIONS] resume SESSION PROMPT`
            return [*self.argv, "resume", resume, prompt]
        return [self.argv[0], "--resume", resume, *self.argv[1:], prompt]

    def run(self, prompt: str, resume: str | None = None) -> str:
        """One whole non-interactive turn (of the agent's session ``resume``); its output."""
        done = subprocess.run(
            self._command(prompt, resume),
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, f"{self.name}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def start(self, prompt: str) -> subprocess.Popen[str]:
        """A turn left running, in its own process group (the agent and its tools)."""
        return subprocess.Popen(
            self._command(prompt),
            cwd=self.root,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )

    def requests(self) -> list[dict[str, Any]]:
        """The request bodies the fake model API got for turns, oldest first."""
        if not self.log.exists():
            return []
        found = [json.loads(line) for line in self.log.read_text().splitlines()]
        turns = ("/responses", ":streamGenerateContent")
        return [r["body"] for r in found if r["path"].split("?")[0].endswith(turns)]

    def spooled(self, event: str) -> bool:
        return any(f'"{event}"' in p.read_text() for p in (self.state / "spool").rglob("*.jsonl"))

    def drained(self) -> None:
        """Wait until the detached ingesters wrote the spool into the journal."""
        wait_until_ingested(self.state)

    def sessions(self) -> list[dict[str, Any]]:
        listed = self.continuity("list", "--json")
        assert listed.returncode == 0, listed.stderr
        sessions: list[dict[str, Any]] = json.loads(listed.stdout)["sessions"]
        return sessions

    def events(self, session_id: str) -> list[tuple[str, dict[str, Any]]]:
        with SessionManager(project_dir=self.root) as mgr:
            return [(e.kind.value, e.payload) for e in mgr.events(session_id)]


CODEX_CONFIG = """model = "gpt-test"
model_provider = "fake"
approval_policy = "never"
sandbox_mode = "danger-full-access"

[model_providers.fake]
name = "fake"
base_url = "http://127.0.0.1:{port}/v1"
wire_api = "responses"
env_key = "FAKE_OPENAI_KEY"
request_max_retries = 0
stream_max_retries = 0
"""

GEMINI_SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": False}},
    "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
}


def _base(tmp_path: Path) -> tuple[Path, Path, Path]:
    home, state = tmp_path / "home", tmp_path / "state"
    home.mkdir()
    state.mkdir()
    return git_project(tmp_path / "app"), home, state


@pytest.fixture(params=["codex", "gemini"])
def hooked(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HookedAgent]:
    """A project with the hooks installed into the real agent's own settings."""
    root, home, state = _base(tmp_path)
    log = tmp_path / "api.log"
    if request.param == "codex":
        binary = str(npm_cli(*CODEX))
        codex_home = home / ".codex"
        codex_home.mkdir()
        with fake_api("fake_openai.py", log) as port:
            (codex_home / "config.toml").write_text(CODEX_CONFIG.format(port=port))
            env = agent_env(
                home,
                CODEX_HOME=str(codex_home),
                FAKE_OPENAI_KEY="dummy",
                CONTINUITY_STATE_DIR=str(state),
            )
            # Codex reads a project's .codex/ only once the project is trusted (--trust),
            # and runs hooks only once they are trusted (its /hooks review, kept in
            # config.toml); `exec` can skip that, as automation that vetted them would.
            argv = [binary, "exec", "--trust", "--dangerously-bypass-hook-trust"]
            agent = HookedAgent("codex", root, home, state, log, argv, env)
            done = agent.continuity("hooks", "install", "codex")  # the project's settings
            assert done.returncode == 0, done.stderr
            assert "hooks = true" in (root / ".codex" / "config.toml").read_text()
            yield agent
    else:
        binary = str(npm_cli(*GEMINI))
        (home / ".gemini").mkdir()
        (home / ".gemini" / "settings.json").write_text(json.dumps(GEMINI_SETTINGS))
        with fake_api("fake_gemini.py", log) as port:
            env = agent_env(
                home,
                GEMINI_API_KEY="dummy",
                GOOGLE_GEMINI_BASE_URL=f"http://127.0.0.1:{port}",
                GEMINI_CLI_TRUST_WORKSPACE="true",
                CONTINUITY_STATE_DIR=str(state),
            )
            argv = [binary, "--approval-mode", "yolo", "-p"]
            agent = HookedAgent("gemini", root, home, state, log, argv, env)
            done = agent.continuity("hooks", "install", "gemini")  # the project's settings
            assert done.returncode == 0, done.stderr
            yield agent


def test_a_real_run_records_the_prompt_the_shell_call_its_result_the_reply_and_the_end(
    hooked: HookedAgent,
) -> None:
    out = hooked.run("Run echo banana42 in the shell")
    assert "The shell said banana42." in out
    hooked.drained()
    (only,) = hooked.sessions()
    assert only["status"] == "completed"  # its SessionEnd ended it
    events = hooked.events(only["id"])
    said = [(k, p) for k, p in events if k in ("message", "tool-call", "tool-result")]
    assert [k for k, _ in said] == ["message", "tool-call", "tool-result", "message"], said
    assert said[0][1]["role"] == "user" and said[0][1]["text"] == "Run echo banana42 in the shell"
    call, result = said[1][1], said[2][1]
    assert "echo banana42" in json.dumps(call["arguments"])
    assert result["callId"] == call["callId"]  # the result answers that call
    assert "banana42" in json.dumps(result["output"])
    assert (said[3][1]["role"], said[3][1]["text"]) == ("assistant", "The shell said banana42.")
    kinds = [k for k, _ in events]
    assert kinds.index("tool-result") < len(kinds) - 1 - kinds[::-1].index("lifecycle")
    # Nothing was compacted: no recovery point says so (Gemini CLI's PreCompress
    # hook fires before every model request, compressing or not).
    shown = hooked.continuity("show", only["id"], "--json")
    assert shown.returncode == 0, shown.stderr
    triggers = [p["trigger"] for p in json.loads(shown.stdout).get("recoveryPoints", [])]
    assert "compaction" not in triggers
    with SessionManager(project_dir=hooked.root) as mgr:
        assert (
            mgr.get(only["id"]).agent.type
            == {"codex": "codex", "gemini": "gemini-cli"}[hooked.name]
        )


def test_kill_9_mid_shell_call_is_found_interrupted_and_the_next_run_is_told(
    hooked: HookedAgent,
) -> None:
    agent = hooked.start("Fix the flaky payment test\nRUN: echo started && sleep 30")
    try:
        wait_for(lambda: hooked.requests(), 60, "the first model request")
        tool_event = "PreToolUse" if hooked.name == "codex" else "BeforeTool"
        wait_for(lambda: hooked.spooled(tool_event), 60, "the shell call to start")
        time.sleep(0.5)
    finally:
        # The terminal dies: the agent and its tools, no SessionEnd, no Stop.
        os.killpg(agent.pid, signal.SIGKILL)
        agent.wait(timeout=10)
    (old,) = hooked.sessions()
    assert old["status"] == "interrupted"
    events = hooked.events(old["id"])
    asked = [p["text"] for k, p in events if k == "message" and p["role"] == "user"]
    assert asked == ["Fix the flaky payment test\nRUN: echo started && sleep 30"]
    call = next(p for k, p in events if k == "tool-call")
    assert "sleep 30" in json.dumps(call["arguments"])
    assert not any(k == "tool-result" for k, _ in events)  # it died in the call

    before = len(hooked.requests())
    assert "The shell said cherry7." in hooked.run("Say hello\nRUN: echo cherry7")
    sent = json.dumps(hooked.requests()[before])
    # The new agent's first request carries the recovery: the task and where it stopped.
    assert "Session Recovery" in sent and old["id"] in sent
    assert "Fix the flaky payment test" in sent and "sleep 30" in sent
    hooked.drained()
    new = next(s for s in hooked.sessions() if s["id"] != old["id"])
    with SessionManager(project_dir=hooked.root) as mgr:
        assert mgr.get(new["id"]).recovered_from == old["id"]
    said = [p["text"] for k, p in hooked.events(new["id"]) if k == "message"]
    assert said[-2:] == ["Say hello\nRUN: echo cherry7", "The shell said cherry7."]


def test_resuming_the_killed_agent_session_continues_the_same_session(
    hooked: HookedAgent,
) -> None:
    agent = hooked.start("Refactor the billing module\nRUN: echo go && sleep 30")
    try:
        tool_event = "PreToolUse" if hooked.name == "codex" else "BeforeTool"
        wait_for(lambda: hooked.spooled(tool_event), 60, "the shell call to start")
        time.sleep(0.5)
    finally:
        os.killpg(agent.pid, signal.SIGKILL)
        agent.wait(timeout=10)
    (mapped,) = (hooked.state / "map").glob(f"{hooked.name}-*")
    agent_session, ours = mapped.name.removeprefix(f"{hooked.name}-"), mapped.read_text()
    resume = agent_session if hooked.name == "codex" else "latest"
    assert "The shell said cherry7." in hooked.run("Go on\nRUN: echo cherry7", resume=resume)
    hooked.drained()
    (only,) = hooked.sessions()  # no second session: the same one went on
    assert only["id"] == ours and only["status"] == "completed"
    said = [p["text"] for k, p in hooked.events(ours) if k == "message"]
    assert said[0] == "Refactor the billing module\nRUN: echo go && sleep 30"
    assert said[-2:] == ["Go on\nRUN: echo cherry7", "The shell said cherry7."]


def test_codex_user_hooks_go_to_codex_home_when_it_is_set(tmp_path: Path) -> None:
    root, home, state = _base(tmp_path)
    codex_home = tmp_path / "elsewhere"
    env = {"HOME": str(home), "CODEX_HOME": str(codex_home), "CONTINUITY_STATE_DIR": str(state)}
    agent = HookedAgent("codex", root, home, state, tmp_path / "api.log", [], env)
    done = agent.continuity("hooks", "install", "codex", "--scope", "user")
    assert done.returncode == 0, done.stderr
    assert "SessionStart" in json.loads((codex_home / "hooks.json").read_text())["hooks"]
    assert "[features]\nhooks = true\n" in (codex_home / "config.toml").read_text()
    assert not (home / ".codex").exists()


def test_installing_again_removes_our_gemini_precompress_hook_and_keeps_theirs(
    tmp_path: Path,
) -> None:
    from agent_continuity.hooks.settings import hook_command

    root, home, state = _base(tmp_path)
    theirs = {"type": "command", "command": "notify-send compressing", "name": "mine"}
    ours = {"type": "command", "command": hook_command("gemini"), "name": "agent-continuity"}
    settings = root / ".gemini" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"hooks": {"PreCompress": [{"hooks": [theirs, ours]}]}}))
    env = {"HOME": str(home), "CONTINUITY_STATE_DIR": str(state)}
    agent = HookedAgent("gemini", root, home, state, tmp_path / "api.log", [], env)
    assert agent.continuity("hooks", "install", "gemini").returncode == 0
    hooks = json.loads(settings.read_text())["hooks"]
    assert hooks["PreCompress"] == [{"hooks": [theirs]}]
    assert "BeforeTool" in hooks and "AfterTool" in hooks
