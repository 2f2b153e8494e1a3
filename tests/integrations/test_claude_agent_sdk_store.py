"""The Claude Agent SDK's SessionStore on our stores, held to the SDK's own conformance suite."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk.testing import run_session_store_conformance

from agent_continuity import SessionManager
from agent_continuity.errors import ContinuityError, CorruptRecord
from agent_continuity.integrations.claude_agent_sdk import ContinuitySessionStore

STORES = ["files", "sqlite"]


def _url(kind: str, path: Path) -> str:
    return f"files:{path / 'store'}" if kind == "files" else f"sqlite:///{path / 's.db'}"


@pytest.mark.parametrize("kind", STORES)
def test_the_sdk_s_own_conformance_suite_passes(kind: str, tmp_path: Path) -> None:
    opened: list[ContinuitySessionStore] = []

    def fresh() -> ContinuitySessionStore:
        folder = tmp_path / f"s{len(opened)}"
        folder.mkdir()
        opened.append(ContinuitySessionStore(store=_url(kind, folder), project_dir=str(folder)))
        return opened[-1]

    try:
        asyncio.run(run_session_store_conformance(fresh))
    finally:
        for store in opened:
            store.close()
    # Every optional capability but delete ran (the journal is append-only).
    probe = opened[0]
    for method in ("list_sessions", "list_session_summaries", "list_subkeys"):
        assert callable(getattr(probe, method))
    assert not hasattr(probe, "delete")


def _line(uuid: str, kind: str, content: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "uuid": uuid,
        "timestamp": "2026-12-06T10:00:00.000Z",
        "message": {"role": kind, "content": content},
    }


TRANSCRIPT = [
    _line("u1", "user", "Fix the failing test in tests/test_api.py"),
    _line(
        "a1",
        "assistant",
        [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "pytest"}}],
    ),
    _line("u2", "user", [{"type": "tool_result", "tool_use_id": "t1", "content": "1 failed"}]),
    _line("a2", "assistant", [{"type": "text", "text": "The fixture is stale; updating it."}]),
]


@pytest.mark.parametrize("kind", STORES)
def test_a_mirrored_transcript_reads_as_a_session(kind: str, tmp_path: Path) -> None:
    key = {"project_key": "-work-app", "session_id": "5f0c"}
    with ContinuitySessionStore(store=_url(kind, tmp_path), project_dir=str(tmp_path)) as store:
        asyncio.run(store.append(key, TRANSCRIPT[:2]))
        asyncio.run(store.append(key, TRANSCRIPT[1:]))  # a retried batch overlaps
        assert asyncio.run(store.load(key)) == TRANSCRIPT
    with SessionManager(store=_url(kind, tmp_path), project_dir=tmp_path) as mgr:
        (run,) = mgr.sessions()
        assert run.context.current_task == "claude-agent-sdk:-work-app/5f0c"
        kinds = [
            (e.kind.value, e.payload.get("name") or e.payload.get("text"))
            for e in mgr.events(run.id)
        ]
        assert ("message", "Fix the failing test in tests/test_api.py") in kinds
        assert ("tool-call", "Bash") in kinds
        assert ("message", "The fixture is stale; updating it.") in kinds


def test_a_damaged_line_raises_instead_of_loading_short(tmp_path: Path) -> None:
    key = {"project_key": "p", "session_id": "s"}
    with ContinuitySessionStore(store=_url("files", tmp_path), project_dir=str(tmp_path)) as store:
        asyncio.run(store.append(key, TRANSCRIPT))
    journal = next(p for p in (tmp_path / "store").rglob("*.jsonl") if b"fixture" in p.read_bytes())
    journal.write_bytes(journal.read_bytes().replace(b"stale", b"STALE"))
    with ContinuitySessionStore(store=_url("files", tmp_path), project_dir=str(tmp_path)) as store:
        with pytest.raises(CorruptRecord):
            asyncio.run(store.load(key))


def test_real_claude_code_mirrors_its_transcript_through_the_readme_snippet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The README's snippet, run by the SDK against the real Claude Code it bundles,
    # offline: the fake Messages API of tests/coding_agents answers on 127.0.0.1.
    from coding_agents.claude_code import ClaudeCode, claude_binary
    from coding_agents.fake_anthropic import FakeAnthropic

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    code = readme.split("### Claude Agent SDK\n", 1)[1].split("```python\n", 1)[1].split("```")[0]
    assert "ClaudeAgentOptions(session_store=store)" in code
    code = code.replace(
        "ClaudeAgentOptions(session_store=store)",
        "ClaudeAgentOptions(session_store=store, cli_path=cli, env=env, cwd=cwd)",
    )
    project, home = tmp_path / "project", tmp_path / "home"
    (project / ".git").mkdir(parents=True)
    home.mkdir()
    monkeypatch.chdir(project)
    # The SDK mirrors only transcripts under its own config folder: the child's.
    monkeypatch.setenv("HOME", str(home))
    printed: list[Any] = []
    with FakeAnthropic() as api:
        env = ClaudeCode(project, home, api.url).env()
        namespace: dict[str, Any] = {
            "cli": str(claude_binary()),
            "env": env,
            "cwd": str(project),
            "print": printed.append,
        }
        exec(code, namespace)
        asyncio.run(namespace["fix_the_test"]())
        assert api.message_requests(), "Claude Code never called the fake API"

    assert any("Hello from the fake model." in str(m) for m in printed)
    with ContinuitySessionStore(store="sqlite:///sessions.db") as store:
        (project_key,) = {
            r.context.current_task.split(":", 1)[1].rsplit("/", 1)[0]
            for r in store._manager.sessions()
            if r.context.current_task
        }
        (listed,) = asyncio.run(store.list_sessions(project_key))
        key = {"project_key": project_key, "session_id": listed["session_id"]}
        lines = asyncio.run(store.load(key))
    assert lines is not None
    said = json.dumps(lines)
    assert "Fix the failing test" in said and "Hello from the fake model." in said
    # Claude Code's own copy of the transcript has the same lines, in the same order.
    (local,) = (home / ".claude" / "projects").rglob(f"{listed['session_id']}.jsonl")
    uuids = [json.loads(line).get("uuid") for line in local.read_text().splitlines()]
    mirrored = [line["uuid"] for line in lines if line.get("uuid")]
    assert mirrored and mirrored == [u for u in uuids if u]


def test_a_batch_that_failed_is_stored_when_the_sdk_retries_it(tmp_path: Path) -> None:
    key = {"project_key": "p", "session_id": "s"}
    deep: dict[str, Any] = {"text": "x"}
    for _ in range(5000):
        deep = {"inner": deep}
    refused = {
        **TRANSCRIPT[0],
        "message": {"role": "user", "content": TRANSCRIPT[0]["message"]["content"]},
        "x": deep,
    }
    with ContinuitySessionStore(store=_url("sqlite", tmp_path), project_dir=str(tmp_path)) as store:
        with pytest.raises(ContinuityError):
            asyncio.run(store.append(key, [refused, *TRANSCRIPT[1:]]))
        assert asyncio.run(store.load(key)) is None
        # The SDK retries the batch: the uuids of the refused one were never stored.
        asyncio.run(store.append(key, TRANSCRIPT))
        assert asyncio.run(store.load(key)) == TRANSCRIPT
