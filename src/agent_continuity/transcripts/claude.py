"""Claude Code transcripts: ``~/.claude/projects/<project>/<session-id>.jsonl``.

Each line has a ``type``. ``user`` and ``assistant`` lines carry a
``message`` whose ``content`` is a string or a list of blocks: ``text``,
``tool_use`` (``id``, ``name``, ``input``) in the assistant's, ``tool_result``
(``tool_use_id``, ``content``, ``is_error``) in the user's; ``thinking``
blocks are not the conversation. Every line has its ``uuid``, ``timestamp``
and ``sessionId``. Lines marked ``isMeta`` (command caveats Claude Code adds)
and the other types (``summary``, ``system``, ``file-history-snapshot``...)
are skipped. A subagent's conversation (a Task) is in
``<session-id>/subagents/agent-*.jsonl`` beside the main file (its lines
are ``isSidechain`` and name the main session; before Claude Code 2.1.2
they were ``agent-*.jsonl`` beside it): it is imported with it, each event
marked with the subagent's id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent_continuity.transcripts.reader import (
    ODD_RECORD,
    Entry,
    Line,
    Parsed,
    message,
    odd,
    parse_time,
    text_of,
    tool_call,
    tool_result,
)

NAME = "claude"
AGENT_TYPE = "claude-code"


def session_of(path: Path) -> str:
    """The Claude Code session id: the first ``sessionId`` in the file, else the file's name."""
    with path.open("rb") as f:
        for _, raw in zip(range(20), f, strict=False):
            try:
                found = json.loads(raw).get("sessionId")
            except (ValueError, AttributeError):
                continue
            if isinstance(found, str) and found:
                return found
    return path.stem


def companions(path: Path) -> list[Path]:
    """The subagent transcripts of a main transcript, by name.

    Claude Code 2.1.2 and later write them to ``<session-id>/subagents/``;
    earlier versions wrote ``agent-*.jsonl`` beside the main file, naming the
    main session in their lines.
    """
    if path.stem.startswith("agent-"):
        return []
    folder = path.parent / path.stem / "subagents"
    found = sorted(folder.glob("agent-*.jsonl")) if folder.is_dir() else []
    main = session_of(path)
    found += [p for p in sorted(path.parent.glob("agent-*.jsonl")) if session_of(p) == main]
    return found


def parse(lines: list[Line], file_key: str) -> Parsed:
    """The messages, tool calls and results of the lines."""
    out = Parsed()
    for line in lines:
        try:
            found = _line(line, file_key)
        except ODD_RECORD as exc:
            out.damaged.append(odd(line.number, exc))
            continue
        if found:
            out.entries += found
        else:
            out.skipped += 1  # another type, a meta line, only thinking
    return out


def _line(line: Line, file_key: str) -> list[Entry]:
    record = line.record
    body = record.get("message")
    role = record.get("type")
    if role not in ("user", "assistant") or record.get("isMeta") or not isinstance(body, dict):
        return []
    at = parse_time(record.get("timestamp"))
    key = f"{file_key}:{record.get('uuid') or line.number}"
    extra: dict[str, Any] = {}
    if record.get("isSidechain") and record.get("agentId"):
        extra["subagent"] = str(record["agentId"])
    found: list[Entry] = []
    content = body.get("content")
    blocks = content if isinstance(content, list) else [content]
    for n, block in enumerate(blocks):
        part = f"{key}:{n}"
        if isinstance(block, str):
            if block.strip():
                found.append(message(part, at, str(role), block, **extra))
            continue
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and str(block.get("text", "")).strip():
            found.append(message(part, at, str(role), str(block["text"]), **extra))
        elif kind == "tool_use":
            call_id = str(block.get("id") or part)
            name = str(block.get("name", ""))
            found.append(tool_call(part, at, call_id, name, block.get("input"), **extra))
        elif kind == "tool_result":
            call_id = str(block.get("tool_use_id") or part)
            output = block.get("content")
            output = text_of(output) if isinstance(output, list) else output
            failed = bool(block.get("is_error"))
            found.append(tool_result(part, at, call_id, output, failed, **extra))
    return found
