"""A fake OpenAI Responses API on 127.0.0.1, enough for the real Codex CLI to run one turn.

Run as ``python fake_openai.py LOG``: it prints its port on the first line of
stdout and serves until killed. Every request body is appended to ``LOG`` as
one JSON line. Each turn is scripted: a request whose input has no tool
output yet gets a shell tool call (``echo`` of the token in the user's
prompt); one that carries the tool's output gets a final assistant message
quoting it. The shell tool's name and argument shape are read off the tools
the request offers, so it follows Codex's tool set across versions.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from fake_http import LoggingHandler, serve


def _sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def _prompt_token(body: dict[str, Any]) -> str:
    """The last word the user asked to echo (``echo WORD``), or ``hello``."""
    text = json.dumps(body.get("input", []))
    found = re.findall(r"echo ([A-Za-z0-9_-]+)", text)
    return found[-1] if found else "hello"


def _shell_call(body: dict[str, Any], word: str) -> dict[str, Any]:
    """A function call to whichever shell tool the request offers."""
    names = {str(t.get("name", "")): t for t in body.get("tools", []) if isinstance(t, dict)}
    call_id = f"call_{uuid.uuid4().hex[:10]}"
    # "RUN: COMMAND" in the prompt runs that command (a slow one, for the kill -9 tests).
    asked = re.findall(r"RUN: ([^\"\\]+)", json.dumps(body.get("input", [])))
    command = asked[-1].strip() if asked else f"echo {word}"
    if "exec_command" in names:
        name, args = "exec_command", {"cmd": command}
    elif "shell_command" in names:
        name, args = "shell_command", {"command": command}
    else:
        name, args = "shell", {"command": ["bash", "-lc", command]}
    return {
        "type": "function_call",
        "id": f"fc_{uuid.uuid4().hex[:10]}",
        "call_id": call_id,
        "name": name,
        "arguments": json.dumps(args),
        "status": "completed",
    }


def _reply(body: dict[str, Any]) -> list[dict[str, Any]]:
    items = body.get("input", [])
    outputs = [
        i for i in items if isinstance(i, dict) and str(i.get("type", "")).endswith("_output")
    ]
    word = _prompt_token(body)
    last_user = max(
        (n for n, i in enumerate(items) if isinstance(i, dict) and i.get("role") == "user"),
        default=-1,
    )
    answered = any(items.index(o) > last_user for o in outputs)
    if not answered:
        item = _shell_call(body, word)
    else:
        item = {
            "type": "message",
            "id": f"msg_{uuid.uuid4().hex[:10]}",
            "role": "assistant",
            "status": "completed",
            "content": [
                {"type": "output_text", "text": f"The shell said {word}.", "annotations": []}
            ],
        }
    response_id = f"resp_{uuid.uuid4().hex[:10]}"
    usage = {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 15,
    }
    return [
        {"type": "response.created", "response": {"id": response_id}},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": {"id": response_id, "usage": usage}},
    ]


class Handler(LoggingHandler):
    """Serves /responses (streamed) and an empty model list."""

    def do_GET(self) -> None:
        self._send(
            200,
            "application/json",
            json.dumps({"object": "list", "data": [], "models": []}).encode(),
        )

    def do_POST(self) -> None:
        body = self._logged_body()
        if not self.path.rstrip("/").endswith("/responses"):
            self._send(404, "application/json", b'{"error": {"message": "not here"}}')
            return
        self._send(200, "text/event-stream", _sse(_reply(body)))


if __name__ == "__main__":
    serve(Handler)
