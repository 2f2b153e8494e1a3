"""Codex CLI transcripts: ``~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl``.

Each line is ``{"timestamp", "type", "payload"}``. The first is
``session_meta`` (its payload's ``id`` is the session id). The conversation is
in the ``response_item`` lines: ``message`` (role ``user`` or ``assistant``;
``developer`` and the user-role context blocks Codex injects, such as
``<environment_context>``, are not the conversation), ``function_call`` /
``custom_tool_call`` / ``local_shell_call`` and their ``*_output``. The
``event_msg`` lines repeat the same turn for the terminal (``user_message``,
``agent_message``, token counts): they are skipped, with every other type.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from agent_continuity.transcripts.reader import (
    ODD_RECORD,
    Line,
    Parsed,
    message,
    odd,
    parse_time,
    text_of,
    tool_call,
    tool_result,
)

NAME = "codex"
AGENT_TYPE = "codex"
# A user-role message that is one tagged block (<environment_context>...</environment_context>)
# or the AGENTS.md instructions is context Codex supplies, not what the user said.
_INJECTED = re.compile(r"^\s*(<([a-z_]+)[^>]*>.*</\2>\s*|# AGENTS\.md instructions.*)$", re.DOTALL)
_CALLS = {"function_call", "custom_tool_call", "local_shell_call"}
_OUTPUTS = {"function_call_output", "custom_tool_call_output", "local_shell_call_output"}


def session_of(path: Path) -> str:
    """The Codex session id: the ``session_meta`` line's, else the id at the end of the name."""
    with path.open("rb") as f:
        head = f.readline()
    try:
        first = json.loads(head)
        found = first.get("payload", {}).get("id") if first.get("type") == "session_meta" else None
    except (ValueError, AttributeError):
        found = None
    if isinstance(found, str) and found:
        return found
    match = re.search(r"([0-9a-f]{8}-[0-9a-f-]{27})$", path.stem)
    return match[1] if match else path.stem


def companions(path: Path) -> list[Path]:
    """Codex writes one file per session."""
    return []


def parse(lines: list[Line], file_key: str) -> Parsed:
    """The messages, tool calls and results of the lines."""
    out = Parsed()
    for line in lines:
        try:
            _line(line, file_key, out)
        except ODD_RECORD as exc:
            out.damaged.append(odd(line.number, exc))
    return out


def _line(line: Line, file_key: str, out: Parsed) -> None:
    record = line.record
    payload = record.get("payload")
    if record.get("type") != "response_item" or not isinstance(payload, dict):
        out.skipped += 1
        return
    at = parse_time(record.get("timestamp"))
    kind = payload.get("type")
    key = f"{file_key}:{line.number}"
    if kind == "message":
        role = payload.get("role")
        text = text_of(payload.get("content"))
        if role not in ("user", "assistant") or not text.strip() or _INJECTED.match(text):
            out.skipped += 1
            return
        out.entries.append(message(key, at, str(role), text))
    elif kind in _CALLS:
        call_id = str(payload.get("call_id") or payload.get("id") or key)
        out.entries.append(
            tool_call(key, at, call_id, str(payload.get("name") or "shell"), _arguments(payload))
        )
    elif kind in _OUTPUTS:
        output, failed = _output(payload.get("output"))
        out.entries.append(tool_result(key, at, str(payload.get("call_id") or key), output, failed))
    else:
        out.skipped += 1


def _arguments(payload: dict[str, Any]) -> Any:
    raw = payload.get("arguments", payload.get("input", payload.get("action")))
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _output(value: Any) -> tuple[Any, bool]:
    """The tool's output text and whether it failed (an object output says ``success``)."""
    if isinstance(value, dict):
        text = value.get("content", value)
        return (text_of(text) or text), value.get("success") is False
    if isinstance(value, list):
        return text_of(value), False
    return value, False
