"""The hook process: ``python -m agent_continuity.hooks.run AGENT``, run by the agent.

The agent (Claude Code, Gemini CLI...) runs this synchronously on every
prompt and tool call, with the hook's JSON on stdin. The recording path
imports almost nothing (see :mod:`.spool`): it appends the input to the
session's spool, durable before it returns, starts a detached ingester that
moves it into the journal, and exits 0. SessionStart, which may have to
inject a recovery, does the real work at once (:mod:`.ingest`).

It never fails the agent's turn: every error goes to the hooks' log
(``continuity hooks status`` and ``continuity verify`` show it) and the exit
status is 0; a slow disk holds the agent for at most :data:`WRITE_WAIT` seconds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from agent_continuity.hooks import spool

#: The longest a recording hook waits for its spool write before letting the agent go on.
WRITE_WAIT = 2.0
#: Shells through which agents run hook commands; the agent is above them.
_SHELLS = {"sh", "bash", "dash", "zsh", "fish", "ksh"}
#: The events each agent names SessionStart by.
_STARTS = {"SessionStart"}
_TRANSCRIPT_TAIL = 256 * 1024


def agent_pid() -> int:
    """The agent's own pid: this process's parent, or above the shell it ran us through."""
    pid = os.getppid()
    for _ in range(3):
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                head, _, rest = handle.read().rpartition(b")")
            name = head.split(b"(", 1)[1].decode(errors="replace")
            parent = int(rest.split()[1])
        except (OSError, IndexError, ValueError):
            return pid  # no /proc (macOS): the parent it is
        if name not in _SHELLS or parent <= 1:
            return pid
        pid = parent
    return pid


def last_assistant_text(transcript: str) -> str:
    """The text of the last assistant message in a Claude Code transcript (its tail only)."""
    try:
        with open(transcript, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - _TRANSCRIPT_TAIL))
            lines = handle.read().splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        message = entry.get("message") if isinstance(entry, dict) else None
        if entry.get("type") != "assistant" or not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        texts = [
            block.get("text", "")
            for block in content or []
            if isinstance(block, dict) and block.get("type") == "text"
        ]
        if any(texts):
            return "\n".join(t for t in texts if t)
    return ""


def _spawn_ingester(root: Path) -> None:
    """Start a detached ``--ingest`` process, which the agent never waits for."""
    try:
        first = os.fork()
    except OSError:
        return  # the next reader ingests instead
    if first:
        os.waitpid(first, 0)
        return
    try:  # the child: a new session, then a grandchild that nobody waits for
        os.setsid()
        if os.fork():
            os._exit(0)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.execv(
            sys.executable,
            [sys.executable, "-m", "agent_continuity.hooks.run", "--ingest", str(root)],
        )
    finally:
        os._exit(0)


def record(agent: str, data: dict[str, Any]) -> None:
    """Spool one recording hook's input, durably, and start the ingester."""
    event = str(data.get("hook_event_name") or data.get("hookEventName") or "")
    session = str(data.get("session_id") or data.get("sessionId") or "")
    if not session:
        spool.log_error("hook input without a session id", agent=agent, event=event)
        return
    root = spool.project_root(str(data.get("cwd") or os.getcwd()))
    entry: dict[str, Any] = {
        "agent": agent,
        "event": event,
        "at": time.time(),
        "pid": agent_pid(),
        "input": data,
    }
    if event in ("Stop", "AfterAgent") and "last_assistant_message" not in data:
        transcript = data.get("transcript_path")
        if isinstance(transcript, str):
            entry["assistant"] = last_assistant_text(transcript)
    path = spool.spool_file(root, agent, session)
    _bounded(lambda: spool.append(path, entry, root=root), f"spool write of {event}")
    _spawn_ingester(root)


def _bounded(work: Any, what: str) -> None:
    """Run ``work``; give up waiting (it goes on in the background) after WRITE_WAIT."""
    import threading

    failed: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # reported below, never raised into the agent
            failed.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(WRITE_WAIT)
    if thread.is_alive():
        spool.log_error(f"{what} still not durable after {WRITE_WAIT:g}s (slow disk)")
    elif failed:
        spool.log_error(f"{what} failed: {failed[0]!r}")


def main(argv: list[str]) -> int:
    """Run one hook (``AGENT``, the input on stdin) or the ingester (``--ingest ROOT``)."""
    if argv[:1] == ["--ingest"] and len(argv) == 2:
        try:
            from agent_continuity.hooks.ingest import ingest_in_background

            ingest_in_background(Path(argv[1]))
        except BaseException as exc:
            spool.log_error(f"ingest failed: {exc!r}", project=argv[1])
        return 0
    agent = argv[0] if argv else "claude"
    try:
        data = json.loads(sys.stdin.buffer.read() or b"{}")
        if not isinstance(data, dict):
            raise ValueError("the hook input is not a JSON object")
        event = str(data.get("hook_event_name") or data.get("hookEventName") or "")
        if event in _STARTS:
            from agent_continuity.hooks.ingest import session_start

            output = session_start(agent, data, agent_pid())
            if output:
                sys.stdout.write(json.dumps(output))
                sys.stdout.flush()
        else:
            record(agent, data)
    except BaseException as exc:  # never fail the agent's turn
        spool.log_error(f"hook failed: {exc!r}", agent=agent)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
