"""ContinuitySaver as a LangGraph user meets it: a crash, the disk, the values, the README.

LangGraph's own conformance suite is in test_langgraph_conformance.py; these
are what it does not check: a real graph process killed with kill -9 and
resumed by another, storage that grows with the conversation and not its
square, exact values across processes, and the README's snippet.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph

from agent_continuity import SessionManager
from agent_continuity.integrations.langgraph import ContinuitySaver
from cli_support import cli, cli_json

REPO = Path(__file__).resolve().parent.parent

GRAPH = '''
"""A LangGraph agent: `run` dies in turn 3's tool node when DIE_IN_TOOL is set; `resume`."""
import os, sys, time
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from agent_continuity.integrations.langgraph import ContinuitySaver

def turn_of(state):
    return sum(isinstance(m, HumanMessage) for m in state["messages"])

def agent(state):
    return {"messages": [AIMessage(content=f"answer {turn_of(state)}: running the tests")]}

def tool(state):
    turn = turn_of(state)
    if turn == 3 and os.environ.get("DIE_IN_TOOL"):
        print("IN-TOOL", flush=True)
        time.sleep(120)  # killed here, mid-run
    return {"messages": [ToolMessage(content=f"tests of turn {turn} passed",
                                     tool_call_id=f"call-{turn}")]}

builder = StateGraph(MessagesState)
builder.add_node("agent", agent)
builder.add_node("tool", tool)
builder.add_edge(START, "agent")
builder.add_edge("agent", "tool")
builder.add_edge("tool", END)
config = {"configurable": {"thread_id": "build-fix"}}
# durability="sync": each step's checkpoint is saved before the next step starts
# (LangGraph's default, "async", saves it in the background meanwhile).
with ContinuitySaver.from_conn_string(sys.argv[1]) as saver:
    graph = builder.compile(checkpointer=saver)
    if sys.argv[2] == "run":
        for turn in (1, 2, 3):
            said = HumanMessage(content=f"turn {turn}: fix the build")
            graph.invoke({"messages": [said]}, config, durability="sync")
    else:
        state = graph.get_state(config)
        print("NEXT", ",".join(state.next), len(state.values["messages"]), flush=True)
        # Finishes the interrupted turn from its last checkpoint, then goes on.
        graph.invoke(None, config, durability="sync")
        said = HumanMessage(content="turn 4: ship it")
        out = graph.invoke({"messages": [said]}, config, durability="sync")
        for m in out["messages"]:
            print("MSG", type(m).__name__, m.content)
'''


def _env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONTINUITY_")}
    return {**clean, "CONTINUITY_USER": "alice"}


@pytest.mark.parametrize("scheme", ["files", "sqlite"])
def test_a_graph_killed_mid_run_is_recovered_and_its_thread_resumed_by_a_new_process(
    scheme: str, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "graph.py").write_text(GRAPH)
    url = "files:store" if scheme == "files" else "sqlite:///store.db"
    running = subprocess.Popen(
        [sys.executable, "graph.py", url, "run"],
        cwd=project,
        env={**_env(), "DIE_IN_TOOL": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(120, running.kill)  # never hang the suite on a stuck graph
    watchdog.start()
    try:
        assert running.stdout is not None
        line = running.stdout.readline()  # blocks until the tool node of turn 3 runs
        assert line.strip() == "IN-TOOL", running.stderr.read() if running.stderr else line
        os.kill(running.pid, signal.SIGKILL)
    finally:
        watchdog.cancel()
        running.kill()
        running.wait(timeout=30)

    # The command line finds the run as an interrupted session...
    listed = cli_json(project, url, "list")
    [session] = listed["sessions"]
    assert session["status"] == "interrupted", session
    assert session["type"] == "langgraph" and session["context"]["currentTask"] == "build-fix"
    # ...and recover tells the next run what happened: the conversation up to the crash.
    recovered = cli(project, url, "recover", "--yes", user="alice")
    assert recovered.returncode == 0, recovered.stderr
    said = recovered.stdout
    assert "tests of turn 2 passed" in said and "answer 3: running the tests" in said, said
    assert "tests of turn 3 passed" not in said  # the tool never returned
    assert "LangGraph step" in said  # the last action: the graph's last checkpoint

    # A new process resumes the thread from its last checkpoint: the tool node is next.
    resumed = subprocess.run(
        [sys.executable, "graph.py", url, "resume"],
        cwd=project,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    lines = resumed.stdout.splitlines()
    assert lines[0] == "NEXT tool 8", lines
    contents = [line.split(" ", 2)[2] for line in lines if line.startswith("MSG ")]
    expected = []
    for turn in (1, 2, 3):
        expected += [
            f"turn {turn}: fix the build",
            f"answer {turn}: running the tests",
            f"tests of turn {turn} passed",
        ]
    expected += ["turn 4: ship it", "answer 4: running the tests", "tests of turn 4 passed"]
    assert contents == expected
    # The same session carried on and ended cleanly: nothing left to recover.
    after = cli_json(project, url, "list")["sessions"]
    assert [(s["id"], s["status"]) for s in after] == [(session["id"], "completed")]


def _chat_graph(saver: ContinuitySaver) -> Any:
    def agent(state: MessagesState) -> dict[str, Any]:
        last = state["messages"][-1].content
        return {"messages": [AIMessage(content=f"reply to <{last}>")]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    builder.add_edge("agent", END)
    return builder.compile(checkpointer=saver)


def test_every_message_is_on_disk_once_however_long_the_conversation(tmp_path: Path) -> None:
    config: Any = {"configurable": {"thread_id": "t"}}
    with ContinuitySaver.from_conn_string(f"files:{tmp_path}/store") as saver:
        graph = _chat_graph(saver)
        for turn in range(40):
            graph.invoke({"messages": [HumanMessage(content=f"question-{turn:03d}")]}, config)
    journal = "".join(p.read_text() for p in (tmp_path / "store").rglob("*.jsonl"))
    for turn in range(40):
        # SqliteSaver would hold question 0 in all 120 checkpoints; here it is written once.
        assert journal.count(f'"question-{turn:03d}"') == 1
        assert journal.count(f'"reply to <question-{turn:03d}>"') == 1
    # And the thread reads back whole in a new saver.
    with ContinuitySaver.from_conn_string(f"files:{tmp_path}/store") as saver:
        messages = _chat_graph(saver).get_state(config).values["messages"]
    assert [m.content for m in messages[:2]] == ["question-000", "reply to <question-000>"]
    assert len(messages) == 80 and len({m.id for m in messages}) == 80


def test_removed_and_replaced_messages_read_back_as_the_graph_left_them(tmp_path: Path) -> None:
    config: Any = {"configurable": {"thread_id": "edits"}}
    url = f"sqlite:///{tmp_path}/store.db"
    with ContinuitySaver.from_conn_string(url) as saver:
        graph = _chat_graph(saver)
        for turn in range(3):
            graph.invoke({"messages": [HumanMessage(content=f"q{turn}", id=f"h{turn}")]}, config)
        # Remove the first question and rewrite the second: no longer an append.
        graph.update_state(
            config,
            {"messages": [RemoveMessage(id="h0"), HumanMessage(content="q1, edited", id="h1")]},
        )
        graph.invoke({"messages": [HumanMessage(content="q3", id="h3")]}, config)
        expected = [m.content for m in graph.get_state(config).values["messages"]]
    assert expected[:2] == ["reply to <q0>", "q1, edited"] and expected[-1] == "reply to <q3>"
    with ContinuitySaver.from_conn_string(url) as saver:
        values = _chat_graph(saver).get_state(config).values
    assert [m.content for m in values["messages"]] == expected


def test_channel_values_keep_their_exact_types_in_a_new_process(tmp_path: Path) -> None:
    values: dict[str, Any] = {
        "flags": [True, 1, 1.0, None, "1"],  # equal in Python, not the same values
        "tuple": (1, 2),
        "bytes": b"\x00\xff",
        "when": dt.datetime(2026, 12, 6, 23, 0, tzinfo=dt.UTC),
        "dollar": {"$s": "not an encoding", "n": 1},
        "nested": {"a": [{"b": [1, 2, {"c": "d"}]}]},
        "nan": float("inf"),
        "messages": [
            HumanMessage(content=[{"type": "text", "text": "blocks"}], id="m1"),
            AIMessage(
                content="",
                id="m2",
                tool_calls=[{"name": "run", "args": {"path": "tests/"}, "id": "c1"}],
            ),
            ToolMessage(content="12 passed", tool_call_id="c1", id="m3"),
        ],
    }
    versions = {name: 1 for name in values}
    checkpoint: Any = {
        "v": 4,
        "id": "1f1f1cb5-a826-698b-bfff-36f51f6a6762",
        "ts": "2026-12-06T23:00:00+00:00",
        "channel_values": values,
        "channel_versions": versions,
        "versions_seen": {"agent": {"flags": 1}},
        "updated_channels": None,
    }
    url = f"files:{tmp_path}/store"
    config: Any = {"configurable": {"thread_id": "types", "checkpoint_ns": ""}}
    writes = [("flags", [False, 0]), ("messages", values["messages"])]
    # The oracle: what LangGraph's own InMemorySaver gives back (its serializer
    # makes a tuple a list, for one; ours must do exactly the same).
    reference = InMemorySaver()
    reference.put_writes(
        reference.put(config, checkpoint, {"source": "input", "step": -1}, versions), writes, "t1"
    )
    expected = reference.get_tuple(config)
    with ContinuitySaver.from_conn_string(url) as saver:
        stored = saver.put(config, checkpoint, {"source": "input", "step": -1}, versions)
        saver.put_writes(stored, writes, "t1")
    with ContinuitySaver.from_conn_string(url) as saver:
        found = saver.get_tuple(config)
    assert found is not None and expected is not None
    read = found.checkpoint["channel_values"]
    assert read == expected.checkpoint["channel_values"]
    assert found.checkpoint == expected.checkpoint
    assert [type(v) for v in read["flags"]] == [bool, int, float, type(None), str]
    assert read["messages"] == values["messages"] and read["tuple"] == [1, 2]
    assert read["messages"][1].tool_calls[0]["id"] == "c1"
    assert found.metadata == expected.metadata
    assert found.pending_writes == expected.pending_writes
    assert [type(v) for v in found.pending_writes[0][2]] == [bool, int]


def test_the_saver_uses_sessions_a_session_manager_can_read(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    config: Any = {"configurable": {"thread_id": "shown"}}
    with ContinuitySaver.from_conn_string(url, user_id="bob") as saver:
        _chat_graph(saver).invoke({"messages": [HumanMessage(content="hello")]}, config)
    with SessionManager(url, tmp_path, "bob", observer=False) as mgr:
        [record] = mgr.sessions()
        said = [
            (e.payload["role"], e.payload["text"])
            for e in mgr.events(record.id)
            if e.kind.value == "message"
        ]
    assert record.type == "langgraph" and record.context.current_task == "shown"
    assert said == [("user", "hello"), ("assistant", "reply to <hello>")]


def test_an_interrupt_in_a_subgraph_is_answered_from_a_new_saver(tmp_path: Path) -> None:
    from langgraph.types import Command, interrupt

    def ask(state: MessagesState) -> dict[str, Any]:
        answer = interrupt("approve the deploy?")
        return {"messages": [AIMessage(content=f"approved: {answer}")]}

    inner = StateGraph(MessagesState)
    inner.add_node("ask", ask)
    inner.add_edge(START, "ask")
    inner.add_edge("ask", END)

    def plan(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(content="planning the deploy")]}

    builder = StateGraph(MessagesState)
    builder.add_node("plan", plan)
    builder.add_node("review", inner.compile())
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "review")
    builder.add_edge("review", END)
    config: Any = {"configurable": {"thread_id": "review"}}
    url = f"sqlite:///{tmp_path}/store.db"
    with ContinuitySaver.from_conn_string(url) as saver:
        out = builder.compile(checkpointer=saver).invoke(
            {"messages": [HumanMessage(content="deploy")]}, config
        )
        assert [i.value for i in out["__interrupt__"]] == ["approve the deploy?"]
    with ContinuitySaver.from_conn_string(url) as saver:  # the answer comes later, elsewhere
        graph = builder.compile(checkpointer=saver)
        assert graph.get_state(config).next == ("review",)
        out = graph.invoke(Command(resume="yes"), config)
    assert [m.content for m in out["messages"]] == [
        "deploy",
        "planning the deploy",
        "approved: yes",
    ]


def test_a_secret_in_a_message_never_reaches_the_store(tmp_path: Path) -> None:
    config: Any = {"configurable": {"thread_id": "secret"}}
    url = f"files:{tmp_path}/store"
    said = "deploy with AKIAIOSFODNN7EXAMPLE please"
    with ContinuitySaver.from_conn_string(url) as saver:
        _chat_graph(saver).invoke({"messages": [HumanMessage(content=said)]}, config)
    files = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    # Recovery points are gzipped: read what they hold, not their compressed bytes.
    on_disk = b"".join(
        gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes() for p in files
    )
    assert b"AKIAIOSFODNN7EXAMPLE" not in on_disk
    with ContinuitySaver.from_conn_string(url) as saver:
        first = _chat_graph(saver).get_state(config).values["messages"][0]
    assert first.content == "deploy with [REDACTED:aws-access-key] please"


def _readme_snippet() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("### LangGraph")
    match = re.search(r"```python\n(.*?)```", readme[start:], re.DOTALL)
    assert match is not None, "no python block under ### LangGraph"
    return match.group(1)


def test_the_readme_langgraph_snippet_runs_as_written(tmp_path: Path) -> None:
    check = (
        "\nassert graph.get_state(config).values['messages'][0].content == 'Fix the failing build'"
        "\nprint('SNIPPET-OK')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", _readme_snippet() + check],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["Tests pass; the fix is in.", "SNIPPET-OK"]
    # It left its thread in the store it named, as a completed session.
    sessions = cli_json(tmp_path, "sqlite:///sessions.db", "list")["sessions"]
    assert [(s["type"], s["status"]) for s in sessions] == [("langgraph", "completed")]


def test_async_methods_do_the_same_work(tmp_path: Path) -> None:
    import asyncio

    async def main() -> list[str]:
        with ContinuitySaver.from_conn_string(f"files:{tmp_path}/store") as saver:
            graph = _chat_graph(saver)
            config: Any = {"configurable": {"thread_id": "a"}}
            await graph.ainvoke({"messages": [HumanMessage(content="one")]}, config)
            await graph.ainvoke({"messages": [HumanMessage(content="two")]}, config)
            listed = [t async for t in saver.alist(config)]
            assert len(listed) == 6 and listed[0].checkpoint["id"] > listed[-1].checkpoint["id"]
            state = await graph.aget_state(config)
            return [m.content for m in state.values["messages"]]

    assert asyncio.run(main()) == ["one", "reply to <one>", "two", "reply to <two>"]
