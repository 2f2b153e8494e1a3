"""The systems of scenario 1, each behind the same small interface.

One *turn* is one user message and one assistant message, each acknowledged
durably where the system can, followed by whatever that system calls a
save or checkpoint. What each one does per turn:

* **agent-continuity** (``files:``, ``sqlite:``, ``memory:``): two
  ``add_message`` calls (each durable when it returns, ``durability="sync"``)
  and ``checkpoint(trigger="auto")``, a recovery point that retention prunes
  to ``backupCount`` (5); the ", no points" variants skip the point and are
  shown for reference only. ``observer=False``: project observation is timed
  on its own in scenario 5. ``auto_save=False``: the per-turn point replaces
  the interval saves. ``memory:`` keeps nothing on disk; it is the floor of
  our own CPU cost, not a durable contender.
* **LangGraph SqliteSaver**: ``invoke`` of a one-node ``StateGraph`` over
  ``MessagesState`` whose node returns the assistant message (no model is
  called). The saver writes a checkpoint per super-step, holding the whole
  message list. SQLite defaults: WAL, ``synchronous=FULL``.
* **OpenAI Agents SQLiteSession**: two ``add_items`` calls (user, then
  assistant), as a runner saves a turn. Conversation only: no state, no
  recovery point. WAL, ``synchronous=FULL``.
* **naive JSON file**: the whole transcript rewritten into one JSON file and
  ``fsync``-ed once per turn (in place, so not crash-atomic either).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Protocol

from agent_continuity import SessionManager

INSTALL_HINT = "pip install -e '.[bench]' (make bench does it)"


class Contender(Protocol):
    """A system that can record turns and report its size on disk."""

    name: str
    ours: bool

    def turn(self, user: str, assistant: str) -> None:
        """Record one turn the way this system's users would."""

    def close(self) -> None:
        """Flush and close everything (before sizes are measured)."""

    def disk_bytes(self) -> int | None:
        """Bytes on disk, or None for a system that keeps nothing on disk."""


def folder_bytes(path: Path) -> int:
    """Sum of the sizes of every file under ``path``."""
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                continue
    return total


class Ours:
    """agent-continuity over one store URL."""

    ours = True

    def __init__(self, url: str, workdir: Path, *, points: bool = True) -> None:
        self.name = f"agent-continuity {url.split(':')[0]}" + ("" if points else ", no points")
        self.with_points = points
        self.workdir = workdir
        workdir.mkdir(parents=True)
        self.manager = SessionManager(
            store=url, project_dir=workdir, user_id="bench", observer=False
        )
        self.durable = not url.startswith("memory")
        self.session = self.manager.start(type="benchmark", auto_save=False)

    def turn(self, user: str, assistant: str) -> None:
        self.session.add_message("user", user)
        self.session.add_message("assistant", assistant)
        if self.with_points:
            self.session.checkpoint(trigger="auto")

    def close(self) -> None:
        if not self.session.closed:
            self.session.end()
        self.manager.close()

    def disk_bytes(self) -> int | None:
        return folder_bytes(self.workdir) if self.durable else None


class EchoGraph:
    """Scenario 1's LangGraph graph, shared by every checkpointer the benchmarks time.

    A one-node ``StateGraph(MessagesState)`` whose node returns the assistant
    message of the turn (no model is called), invoked once per turn on one
    thread. One definition, so that the savers compared differ only in the
    checkpointer: a subclass builds the graph with :meth:`_echo_graph` and sets
    ``self.app`` to it compiled with its own checkpointer.
    """

    app: Any

    def _echo_graph(self) -> Any:
        """The graph, not compiled yet; sets the state :meth:`turn` uses."""
        from langchain_core.messages import AIMessage, HumanMessage
        from langgraph.graph import END, START, MessagesState, StateGraph

        self._human = HumanMessage
        self._reply = ""

        def agent(state: MessagesState) -> dict[str, Any]:
            return {"messages": [AIMessage(content=self._reply)]}

        graph = StateGraph(MessagesState)
        graph.add_node("agent", agent)
        graph.add_edge(START, "agent")
        graph.add_edge("agent", END)
        self.config: Any = {"configurable": {"thread_id": "benchmark"}}
        return graph

    def turn(self, user: str, assistant: str) -> None:
        """One invoke: the user message in, the node answers with ``assistant``."""
        self._reply = assistant
        self.app.invoke({"messages": [self._human(content=user)]}, self.config)


class LangGraphSqlite(EchoGraph):
    """LangGraph ``StateGraph(MessagesState)`` checkpointed by ``SqliteSaver``."""

    ours = False
    name = "LangGraph SqliteSaver"

    def __init__(self, workdir: Path) -> None:
        from langgraph.checkpoint.sqlite import SqliteSaver

        workdir.mkdir(parents=True)
        self.workdir = workdir
        graph = self._echo_graph()
        self.conn = sqlite3.connect(workdir / "langgraph.db", check_same_thread=False)
        self.app = graph.compile(checkpointer=SqliteSaver(self.conn))

    def close(self) -> None:
        self.conn.close()

    def disk_bytes(self) -> int | None:
        return folder_bytes(self.workdir)


class OpenAISession:
    """OpenAI Agents SDK ``SQLiteSession``: the conversation only."""

    ours = False
    name = "OpenAI Agents SQLiteSession"

    def __init__(self, workdir: Path) -> None:
        from agents import SQLiteSession

        workdir.mkdir(parents=True)
        self.workdir = workdir
        self.loop = asyncio.new_event_loop()
        self.session = SQLiteSession("benchmark", str(workdir / "openai-agents.db"))

    def turn(self, user: str, assistant: str) -> None:
        run = self.loop.run_until_complete
        run(self.session.add_items([{"role": "user", "content": user}]))
        run(self.session.add_items([{"role": "assistant", "content": assistant}]))

    def close(self) -> None:
        self.session.close()
        self.loop.close()

    def disk_bytes(self) -> int | None:
        return folder_bytes(self.workdir)


class NaiveJson:
    """The transcript rewritten into one JSON file, with ``fsync``, once per turn."""

    ours = False
    name = "naive JSON rewrite + fsync"

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True)
        self.workdir = workdir
        self.path = workdir / "transcript.json"
        self.messages: list[dict[str, str]] = []

    def turn(self, user: str, assistant: str) -> None:
        self.messages.append({"role": "user", "content": user})
        self.messages.append({"role": "assistant", "content": assistant})
        with open(self.path, "w", encoding="utf-8") as handle:
            json.dump(self.messages, handle, ensure_ascii=False)
            handle.flush()
            os.fsync(handle.fileno())

    def close(self) -> None:
        pass

    def disk_bytes(self) -> int | None:
        return folder_bytes(self.workdir)


def make_all(workdir: Path) -> tuple[list[Contender], list[str]]:
    """Every contender that can run here, and a note for each peer that cannot."""
    made: list[Contender] = [
        Ours("files:store", workdir / "ours-files"),
        Ours("sqlite:///store.db", workdir / "ours-sqlite"),
        Ours("memory:", workdir / "ours-memory"),
        # For reference only: the two durable appends alone, as the peers that
        # store the conversation only; what the recovery point adds is the rest.
        Ours("files:store", workdir / "ours-files-no-points", points=False),
        Ours("sqlite:///store.db", workdir / "ours-sqlite-no-points", points=False),
    ]
    missing: list[str] = []
    for name, factory in (
        ("LangGraph SqliteSaver", LangGraphSqlite),
        ("OpenAI Agents SQLiteSession", OpenAISession),
    ):
        slug = name.split()[0].lower()
        try:
            made.append(factory(workdir / slug))
        except ImportError as exc:
            missing.append(f"{name}: not installed ({exc.name}); {INSTALL_HINT}")
    made.append(NaiveJson(workdir / "naive-json"))
    return made, missing
