"""The Claude Agent SDK's SessionStore on our stores, held to the SDK's own conformance suite."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk.testing import run_session_store_conformance

from agent_continuity import SessionManager
from agent_continuity.errors import CorruptRecord
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
