"""The OpenAI Agents SDK's Session protocol on our stores, driven by the SDK's own Runner.

The SDK's ScriptedModel plays the model (no key, no network); the same script runs
against the SDK's SQLiteSession in the same test, so the histories can be compared.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, Runner, SQLiteSession, function_tool, set_tracing_disabled
from agents.memory import Session
from agents.testing import ScriptedModel, assistant_message, function_call

from agent_continuity import SessionManager
from agent_continuity.errors import ContinuityError, CorruptRecord
from agent_continuity.integrations.openai_agents import ContinuitySession

STORES = ["files", "sqlite"]
# Traces go to OpenAI's servers; there is no key here and nothing to send.
set_tracing_disabled(True)


def _url(kind: str, tmp_path: Path) -> str:
    return f"files:{tmp_path / 'store'}" if kind == "files" else f"sqlite:///{tmp_path / 's.db'}"


@function_tool
def order_status(order_id: str) -> str:
    """Look up an order."""
    return f"order {order_id} ships tomorrow"


def _script() -> list[Any]:
    """A two-turn conversation: a tool call and its answer, then a plain reply."""
    return [
        [function_call("order_status", {"order_id": "A-17"}, call_id="call-1")],
        [assistant_message("Your order A-17 ships tomorrow.", item_id="m1")],
        [assistant_message("You're welcome!", item_id="m2")],
    ]


async def _converse(session: Session) -> ScriptedModel:
    model = ScriptedModel(_script())
    agent = Agent(name="support", model=model, tools=[order_status])
    await Runner.run(agent, "Where is order A-17?", session=session)
    await Runner.run(agent, "Thanks", session=session)
    return model


def _shape(items: list[Any]) -> list[tuple[Any, ...]]:
    """What a history says, without ids the SDK makes up per run."""
    out = []
    for item in items:
        if item.get("type") == "function_call":
            out.append(("call", item["name"], item["arguments"]))
        elif item.get("type") == "function_call_output":
            out.append(("output", item["output"]))
        else:
            content = item.get("content")
            text = content if isinstance(content, str) else content[0]["text"]
            out.append((item.get("role"), text))
    return out


@pytest.mark.parametrize("kind", STORES)
def test_runner_keeps_the_same_history_as_sqlite_session(kind: str, tmp_path: Path) -> None:
    ours = ContinuitySession("support-42", store=_url(kind, tmp_path), project_dir=tmp_path)
    theirs = SQLiteSession("support-42", str(tmp_path / "openai.db"))
    model = asyncio.run(_converse(ours))
    asyncio.run(_converse(theirs))

    mine, reference = asyncio.run(ours.get_items()), asyncio.run(theirs.get_items())
    assert _shape(mine) == _shape(reference)
    assert _shape(mine)[0] == ("user", "Where is order A-17?")
    assert ("output", "order A-17 ships tomorrow") in _shape(mine)
    # The second turn's request carried the first turn's history from the session.
    second_turn_input = model.calls[-1].input
    assert any("ships tomorrow" in str(item) for item in second_turn_input)
    ours.close()

    # The conversation is readable as a session: `continuity show` sees the words.
    with SessionManager(store=_url(kind, tmp_path), project_dir=tmp_path) as mgr:
        (run,) = mgr.sessions()
        assert run.status.value == "completed"
        assert run.context.current_task == "openai-agents:support-42"
        texts = [e.payload.get("text") for e in mgr.events(run.id) if e.kind.value == "message"]
        assert "Your order A-17 ships tomorrow." in texts


@pytest.mark.parametrize("kind", STORES)
def test_limit_pop_and_clear_behave_as_the_protocol_says(kind: str, tmp_path: Path) -> None:
    with ContinuitySession("c", store=_url(kind, tmp_path), project_dir=tmp_path) as s:
        items = [{"role": "user", "content": f"m{i}"} for i in range(5)]
        asyncio.run(s.add_items(items))
        assert asyncio.run(s.get_items(limit=2)) == items[-2:]
        assert asyncio.run(s.pop_item()) == items[-1]
        assert asyncio.run(s.pop_item()) == items[-2]
        assert asyncio.run(s.get_items()) == items[:3]
        asyncio.run(s.clear_session())
        assert asyncio.run(s.get_items()) == []
        assert asyncio.run(s.pop_item()) is None
        asyncio.run(s.add_items([{"role": "user", "content": "again"}]))
    # A later process sees the same history: pops and the clear are kept too.
    with ContinuitySession("c", store=_url(kind, tmp_path), project_dir=tmp_path) as s:
        assert asyncio.run(s.get_items()) == [{"role": "user", "content": "again"}]


def test_a_later_run_continues_the_conversation(tmp_path: Path) -> None:
    url = _url("sqlite", tmp_path)
    with ContinuitySession("c", store=url, project_dir=tmp_path) as first:
        asyncio.run(first.add_items([{"role": "user", "content": "one"}]))
    with ContinuitySession("c", store=url, project_dir=tmp_path) as second:
        asyncio.run(second.add_items([{"role": "user", "content": "two"}]))
        assert [i["content"] for i in asyncio.run(second.get_items())] == ["one", "two"]
        assert second.recovery is None  # the first run ended cleanly
    with ContinuitySession("other", store=url, project_dir=tmp_path) as other:
        assert asyncio.run(other.get_items()) == []


def test_a_damaged_item_raises_where_sqlite_session_drops_it(tmp_path: Path) -> None:
    url = _url("files", tmp_path)
    with ContinuitySession("c", store=url, project_dir=tmp_path) as s:
        asyncio.run(s.add_items([{"role": "user", "content": "keep me safe"}]))
        session_id = s._conversation.session_id
    journal = next((tmp_path / "store").rglob(f"{session_id}*.jsonl"))
    journal.write_bytes(journal.read_bytes().replace(b"keep me safe", b"keep me sAfe"))
    with ContinuitySession("c", store=url, project_dir=tmp_path) as s:
        with pytest.raises(CorruptRecord):
            asyncio.run(s.get_items())

    # The SDK's own session, damaged the same way, answers with a shorter history.
    theirs = SQLiteSession("c", str(tmp_path / "openai.db"))
    asyncio.run(theirs.add_items([{"role": "user", "content": "keep me safe"}]))
    with sqlite3.connect(tmp_path / "openai.db") as db:
        db.execute("UPDATE agent_messages SET message_data = '{not json'")
    assert asyncio.run(theirs.get_items()) == []


def test_secrets_are_redacted_before_they_are_written(tmp_path: Path) -> None:
    url = _url("sqlite", tmp_path)
    key = "AKIA" + "IOSFODNN7EXAMPLE"
    with ContinuitySession("c", store=url, project_dir=tmp_path) as s:
        asyncio.run(s.add_items([{"role": "user", "content": f"my key is {key}"}]))
        (item,) = asyncio.run(s.get_items())
    assert key not in item["content"] and "[REDACTED:aws-access-key]" in item["content"]
    assert key.encode() not in (tmp_path / "s.db").read_bytes()


_WORKER = textwrap.dedent(
    """
    import asyncio, sys, time
    from agent_continuity.integrations.openai_agents import ContinuitySession

    s = ContinuitySession("conv", store=sys.argv[1], project_dir=sys.argv[2])
    async def main():
        for i in range(1000):
            await s.add_items([{"role": "user", "content": f"turn {i}"}])
            print(i, flush=True)
            await asyncio.sleep(0.01)
    asyncio.run(main())
    """
)


@pytest.mark.parametrize("kind", STORES)
def test_a_run_killed_with_kill_9_loses_nothing_and_the_next_run_continues(
    kind: str, tmp_path: Path
) -> None:
    url = _url(kind, tmp_path)
    worker = subprocess.Popen(
        [sys.executable, "-c", _WORKER, url, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    acknowledged = -1
    for line in worker.stdout:
        acknowledged = int(line)
        if acknowledged >= 20:
            break
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()

    with ContinuitySession("conv", store=url, project_dir=tmp_path) as s:
        before = [i["content"] for i in asyncio.run(s.get_items())]
        # Every acknowledged item is there (one more may have landed before the kill).
        assert before[: acknowledged + 1] == [f"turn {i}" for i in range(acknowledged + 1)]
        asyncio.run(s.add_items([{"role": "user", "content": "after the crash"}]))
        assert s.recovery is not None and s.recovery.outcome == "new-session"
        assert [i["content"] for i in asyncio.run(s.get_items())] == [*before, "after the crash"]
    with SessionManager(store=url, project_dir=tmp_path) as mgr:
        statuses = [r.status.value for r in mgr.sessions()]
        assert statuses == ["archived", "completed"]
        # The recovery log says the first run died and the second one continued it.
        log = mgr.store.read_recovery_log()
        assert [entry["event"] for entry in log] == ["interruption", "recovery"]


def test_bad_items_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    url = _url("sqlite", tmp_path)
    with ContinuitySession("c", store=url, project_dir=tmp_path) as s:
        asyncio.run(s.add_items([{"role": "user", "content": "kept"}]))
        looped: dict[str, Any] = {"role": "user"}
        looped["content"] = [looped]
        with pytest.raises(ContinuityError):
            asyncio.run(s.add_items([{"role": "user", "content": "lost"}, looped]))
        assert asyncio.run(s.get_items()) == [{"role": "user", "content": "kept"}]


def test_an_item_nested_too_deeply_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    deep: dict[str, Any] = {"text": "a long enough text to be moved out of the item"}
    for _ in range(5000):
        deep = {"inner": deep}
    item = {"role": "user", "content": "a long enough text to be moved out of the item", "x": deep}
    with ContinuitySession("c", store=_url("sqlite", tmp_path), project_dir=tmp_path) as s:
        with pytest.raises(ContinuityError, match="nests too deeply"):
            asyncio.run(s.add_items([item]))
        assert asyncio.run(s.get_items()) == []


def _readme_snippet(heading: str) -> str:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split(f"### {heading}\n", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()
    code = _readme_snippet("OpenAI Agents SDK")
    # The one change: the SDK's scripted model instead of a hosted one (no key, no network).
    assert 'model="gpt-4.1"' in code
    code = code.replace('model="gpt-4.1"', "model=scripted")
    scripted = ScriptedModel([[assistant_message("It ships tomorrow.")]])
    printed: list[str] = []
    exec(code, {"scripted": scripted, "print": lambda *a: printed.append(" ".join(map(str, a)))})
    assert printed == ["It ships tomorrow."]
    assert (tmp_path / "sessions.db").exists()


def test_the_benchmark_runs_and_prints_every_system() -> None:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "benchmarks/openai_session.py", "--turns", "20", "--window", "5"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for system in ("ContinuitySession files", "ContinuitySession sqlite", "OpenAI SQLiteSession"):
        assert system in done.stdout
    assert "x raw" in done.stdout
