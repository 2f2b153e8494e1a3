"""Gemini CLI transcripts: ``~/.gemini/tmp/<project>/chats/session-*.jsonl``.

The first line is the metadata (``sessionId``, ``projectHash``,
``startTime``). Then each message is a line ``{"id", "timestamp", "type",
"content", ...}``: ``type`` ``user`` or ``gemini`` (``info``, ``error`` and
``warning`` are the CLI's own notices); ``content`` is a string or a list of
parts. A message is written again, whole, each time it changes (its tool
calls get their results, its token counts arrive): the same ``id`` re-appears
and the last one wins. A ``gemini`` message's ``toolCalls`` carry each
call's ``id``, ``name``, ``args``, ``status``, ``timestamp`` and ``result``
(function-response parts); the ``user`` message that hands the result back
to the model repeats it and is not the conversation, nor is the
``<session_context>`` Gemini CLI opens with. ``{"$set": {...}}`` lines update
the metadata (one holding ``messages`` replaces them all) and
``{"$rewindTo": id}`` drops the messages from ``id`` on; what was imported
stays imported.
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

NAME = "gemini"
AGENT_TYPE = "gemini-cli"
_FINISHED = {"success", "error", "cancelled"}
_ROLES = {"user": "user", "gemini": "assistant"}


def session_of(path: Path) -> str:
    """The Gemini CLI session id: the metadata line's ``sessionId``, else the file's name."""
    with path.open("rb") as f:
        head = f.readline()
    try:
        found = json.loads(head).get("sessionId")
    except (ValueError, AttributeError):
        found = None
    return found if isinstance(found, str) and found else path.stem


def companions(path: Path) -> list[Path]:
    """A subagent's chat lives in its own file, imported on its own."""
    return []


def parse(lines: list[Line], file_key: str) -> Parsed:
    """The messages, tool calls and results of the lines, each message as last written."""
    out = Parsed()
    # id -> (the message as last written, its line); a re-written id keeps its first place.
    latest: dict[str, tuple[dict[str, Any], int]] = {}
    for line in lines:
        record = line.record
        sets = record.get("$set")
        if isinstance(sets, dict) and isinstance(sets.get("messages"), list):
            records = [m for m in sets["messages"] if isinstance(m, dict)]
        elif isinstance(record.get("id"), str) and "type" in record:
            records = [record]
        else:
            out.skipped += 1  # metadata, its updates, rewinds
            continue
        for msg in records:
            if isinstance(msg.get("id"), str):
                latest[msg["id"]] = (msg, line.number)
    for msg_id, (msg, number) in latest.items():
        try:
            out.entries += _entries(f"{file_key}:{msg_id}", msg)
        except ODD_RECORD as exc:
            out.damaged.append(odd(number, exc))
    return out


def _entries(key: str, msg: dict[str, Any]) -> list[Entry]:
    role = _ROLES.get(str(msg.get("type")))
    if role is None:
        return []
    at = parse_time(msg.get("timestamp"))
    found: list[Entry] = []
    text = text_of(msg.get("content"))
    if text.strip() and not text.lstrip().startswith("<session_context>"):
        found.append(message(f"{key}:text", at, role, text))
    calls = msg.get("toolCalls")
    for call in calls if isinstance(calls, list) else ():
        if not isinstance(call, dict):
            continue
        call_id = str(call.get("id") or f"{key}:{len(found)}")
        call_at = parse_time(call.get("timestamp")) or at
        found.append(
            tool_call(
                f"{key}:call:{call_id}", at, call_id, str(call.get("name", "")), call.get("args")
            )
        )
        if call.get("status") in _FINISHED or call.get("result") is not None:
            output = _result_text(call.get("result"))
            failed = call.get("status") in ("error", "cancelled")
            found.append(tool_result(f"{key}:result:{call_id}", call_at, call_id, output, failed))
    return found


def _result_text(result: Any) -> Any:
    """The tool's output from its function-response parts (``response.output`` or the response)."""
    if not isinstance(result, list):
        return result
    outputs: list[str] = []
    for part in result:
        response = (
            part.get("functionResponse", {}).get("response") if isinstance(part, dict) else None
        )
        if isinstance(response, dict):
            value = response.get("output", response.get("error", response))
            outputs.append(value if isinstance(value, str) else json.dumps(value))
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            outputs.append(part["text"])
    return "\n".join(outputs)
