"""`continuity import` of the transcripts the real Codex and Gemini CLIs write, offline.

Each CLI (from npm, pinned, cached under ~/.cache/agent-continuity/npm) runs
non-interactively in a throwaway HOME against a fake model API on 127.0.0.1
that asks it to run ``echo WORD`` in its shell and then answers with what the
shell said. The transcript the CLI wrote is imported; then imported again
(nothing added); then the CLI resumes the same session for a second turn,
which grows the same file (only the new turn is added); then a torn line is
appended (reported with its line number, nothing added).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from agent_cli_support import CODEX, GEMINI, agent_env, fake_api, npm_cli
from agent_continuity import SessionManager
from cli_support import cli_json, git_project


def run_agent(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"{argv[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def imported(url: str, root: Path, session_id: str) -> list[dict[str, Any]]:
    """The imported events of the session, as JSON."""
    with SessionManager(store=url, project_dir=root, user_id="alice", observer=False) as mgr:
        return [e.to_wire() for e in mgr.events(session_id) if "imported" in e.payload]


def turn(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(kind, what) per event: the role and text, the call's name, the result's output."""
    out = []
    for e in events:
        p = e["payload"]
        if e["kind"] == "message":
            out.append(("message", f"{p['role']}: {p['text']}"))
        elif e["kind"] == "tool-call":
            out.append(("tool-call", f"{p['name']} {json.dumps(p['arguments'], sort_keys=True)}"))
        else:
            out.append(("tool-result", str(p["output"])))
    return out


def check_turn(events: list[dict[str, Any]], word: str, started: datetime) -> None:
    """One turn: the user's ask, the shell call, its output, the answer, in order and in time."""
    kinds = [k for k, _ in turn(events)]
    assert kinds == ["message", "tool-call", "tool-result", "message"], turn(events)
    said = turn(events)
    assert said[0][1] == f"user: Run echo {word} in the shell"
    assert f"echo {word}" in said[1][1]
    assert word in said[2][1]
    assert said[3][1] == f"assistant: The shell said {word}."
    calls = {e["payload"]["callId"] for e in events if e["kind"].startswith("tool-")}
    assert len(calls) == 1  # the result answers the call
    times = [datetime.fromisoformat(e["at"].replace("Z", "+00:00")) for e in events]
    assert times == sorted(times)
    assert started.replace(microsecond=0) <= times[0] and times[-1] <= datetime.now(
        tz=times[0].tzinfo
    )


def import_json(root: Path, url: str, agent: str, path: Path) -> dict[str, Any]:
    return cli_json(root, url, "import", agent, str(path))


def grow_and_tear(root: Path, url: str, agent: str, path: Path, session_id: str) -> None:
    """A torn last line is reported by number and adds nothing; the session keeps its events."""
    lines = path.read_bytes().count(b"\n")
    with path.open("ab") as f:
        f.write(b'{"id": "torn", "timestamp": "2026-')
    report = import_json(root, url, agent, path)
    assert report["imported"] == 0 and report["sessionId"] == session_id
    assert [d["line"] for d in report["damaged"]] == [lines + 1]
    assert report["damaged"][0]["reason"].startswith("torn")


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, str, Path]]:
    """(project root, store URL, HOME of the agent)."""
    home = tmp_path / "home"
    home.mkdir()
    yield git_project(tmp_path / "app"), f"files:{tmp_path / 'store'}", home


def test_codex_transcripts_import_whole_once_and_grow_by_their_new_lines(
    project: tuple[Path, str, Path], tmp_path: Path
) -> None:
    root, url, home = project
    codex = str(npm_cli(*CODEX))
    codex_home = home / ".codex"
    codex_home.mkdir()
    with fake_api("fake_openai.py", tmp_path / "openai.log") as port:
        (codex_home / "config.toml").write_text(
            'model = "gpt-test"\nmodel_provider = "fake"\napproval_policy = "never"\n'
            'sandbox_mode = "danger-full-access"\n\n[model_providers.fake]\nname = "fake"\n'
            f'base_url = "http://127.0.0.1:{port}/v1"\nwire_api = "responses"\n'
            'env_key = "FAKE_OPENAI_KEY"\nrequest_max_retries = 0\nstream_max_retries = 0\n'
        )
        env = agent_env(home, CODEX_HOME=str(codex_home), FAKE_OPENAI_KEY="dummy")
        started = datetime.now().astimezone()
        run_agent(
            [codex, "exec", "--skip-git-repo-check", "Run echo banana42 in the shell"], root, env
        )
        [rollout] = sorted((codex_home / "sessions").rglob("rollout-*.jsonl"))
        agent_sid = json.loads(rollout.read_text().splitlines()[0])["payload"]["id"]

        first = import_json(root, url, "codex", rollout)
        session_id = first["sessionId"]
        assert first["imported"] == 4 and first["damaged"] == [] and first["skipped"] > 0
        events = imported(url, root, session_id)
        check_turn(events, "banana42", started)
        # Each event has the time its line has in the rollout.
        stamps = {json.loads(line)["timestamp"] for line in rollout.read_text().splitlines()}
        assert all(e["at"][:19] in {s[:19] for s in stamps} for e in events)
        shown = cli_json(root, url, "show", session_id)
        assert shown["session"]["agent"]["name"] == "codex"
        assert shown["session"]["agent"]["sessionId"] == agent_sid

        again = import_json(root, url, "codex", rollout)
        assert (again["sessionId"], again["imported"], again["skipped"]) == (session_id, 0, 0)
        assert imported(url, root, session_id) == events

        # `codex exec resume` appends the second turn to the same rollout.
        size = rollout.stat().st_size
        run_agent(
            [
                codex,
                "exec",
                "--skip-git-repo-check",
                "resume",
                agent_sid,
                "Run echo cherry7 in the shell",
            ],
            root,
            env,
        )
        assert rollout.stat().st_size > size
        grown = import_json(root, url, "codex", rollout)
        assert (grown["sessionId"], grown["imported"]) == (session_id, 4)
        after = imported(url, root, session_id)
        assert after[:4] == events
        check_turn(after[4:], "cherry7", started)
    grow_and_tear(root, url, "codex", rollout, session_id)


GEMINI_SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": False}},
    "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
}


def test_gemini_cli_transcripts_import_each_message_once_as_last_written(
    project: tuple[Path, str, Path], tmp_path: Path
) -> None:
    root, url, home = project
    gemini = str(npm_cli(*GEMINI))
    (home / ".gemini").mkdir()
    (home / ".gemini" / "settings.json").write_text(json.dumps(GEMINI_SETTINGS))
    with fake_api("fake_gemini.py", tmp_path / "gemini.log") as port:
        env = agent_env(
            home,
            GEMINI_API_KEY="dummy",
            GOOGLE_GEMINI_BASE_URL=f"http://127.0.0.1:{port}",
            GEMINI_CLI_TRUST_WORKSPACE="true",
        )
        ask = ["--approval-mode", "yolo", "-p"]
        started = datetime.now().astimezone()
        run_agent([gemini, *ask, "Run echo banana42 in the shell"], root, env)
        [chat] = sorted((home / ".gemini" / "tmp").rglob("chats/session-*.jsonl"))
        lines = [json.loads(line) for line in chat.read_text().splitlines()]
        ids = [r["id"] for r in lines if "id" in r and "type" in r]
        assert len(ids) > len(set(ids))  # the CLI wrote a message again as it changed

        first = import_json(root, url, "gemini", chat)
        session_id = first["sessionId"]
        assert first["imported"] == 4 and first["damaged"] == []
        events = imported(url, root, session_id)
        check_turn(events, "banana42", started)
        shown = cli_json(root, url, "show", session_id)
        assert shown["session"]["agent"]["sessionId"] == lines[0]["sessionId"]

        again = import_json(root, url, "gemini", chat)
        assert (again["sessionId"], again["imported"]) == (session_id, 0)
        assert imported(url, root, session_id) == events

        # `--resume latest` appends the second turn to the same chat file.
        size = chat.stat().st_size
        run_agent([gemini, "--resume", "latest", *ask, "Run echo cherry7 in the shell"], root, env)
        assert chat.stat().st_size > size
        grown = import_json(root, url, "gemini", chat)
        assert (grown["sessionId"], grown["imported"]) == (session_id, 4)
        after = imported(url, root, session_id)
        assert after[:4] == events
        check_turn(after[4:], "cherry7", started)
    grow_and_tear(root, url, "gemini", chat, session_id)


def test_claude_code_transcripts_import_whole_once(
    claude_transcripts: list[Path], project: tuple[Path, str, Path]
) -> None:
    # Written by the real Claude Code (tests/coding_agents/fixtures.py): a Bash call
    # in the first run, a Write in the resumed one.
    root, url, _ = project
    reports = [import_json(root, url, "claude", path) for path in claude_transcripts]
    assert all(r["damaged"] == [] for r in reports)
    assert sum(r["imported"] for r in reports) >= 8
    said = [what for r in reports for what in turn(imported(url, root, r["sessionId"]))]
    assert ("message", "user: List the files\nRUN: ls -a") in said
    calls = [what for kind, what in said if kind == "tool-call"]
    assert any(c.startswith("Bash ") and "ls -a" in c for c in calls), calls
    assert any(c.startswith("Write ") and "notes.txt" in c for c in calls), calls
    assert any(kind == "tool-result" for kind, _ in said)
    assert any(kind == "message" and what.startswith("assistant: ") for kind, what in said)

    again = [import_json(root, url, "claude", path) for path in claude_transcripts]
    assert [r["imported"] for r in again] == [0] * len(again)
