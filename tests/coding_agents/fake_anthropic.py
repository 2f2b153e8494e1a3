"""A tiny fake of the Anthropic Messages API, enough for the real Claude Code to run a turn.

It listens on 127.0.0.1 (a free port) in a thread of the test process,
records every request it receives, and answers ``POST /v1/messages`` with a
streamed (SSE) or plain reply:

* a prompt containing ``RUN: COMMAND`` gets a ``tool_use`` of Claude Code's
  ``Bash`` tool running COMMAND, once; when the tool result comes back, the
  reply is the text ``Done: <first line of the result>``;
* a prompt containing ``WRITE: PATH CONTENT`` asks for the ``Write`` tool;
* anything else gets the text ``Hello from the fake model.``

Claude Code's side requests (titles, token counts, quota checks) get the
same plain answers.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PLAIN_REPLY = "Hello from the fake model."


class FakeAnthropic:
    """The fake API; ``with FakeAnthropic() as api:`` serves at ``api.url``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The base URL to give Claude Code as ``ANTHROPIC_BASE_URL``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def message_requests(self) -> list[dict[str, Any]]:
        """The bodies of the ``/v1/messages`` requests received so far, in order."""
        with self._lock:
            return [r["body"] for r in self.requests if r["path"].startswith("/v1/messages")]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._json(200, {"data": [], "has_more": False})

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                path = self.path.split("?", 1)[0]
                with api._lock:
                    api.requests.append({"path": path, "body": body})
                if path.endswith("/count_tokens"):
                    self._json(200, {"input_tokens": 10})
                elif path.startswith("/v1/messages"):
                    content = reply(body)
                    if body.get("stream"):
                        self._stream(body, content)
                    else:
                        self._json(200, message(body, content))
                else:
                    self._json(200, {})

            def _json(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, body: dict[str, Any], content: list[dict[str, Any]]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                for name, data in events(body, content):
                    self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                    self.wfile.flush()
                self.close_connection = True

        return Handler


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    found = []
    for block in content or []:
        if isinstance(block, dict):
            if block.get("type") == "text":
                found.append(str(block.get("text", "")))
            elif block.get("type") == "tool_result":
                found += _texts(block.get("content"))
    return found


def request_text(body: dict[str, Any]) -> str:
    """Everything a request says: its system prompt and all its messages' text."""
    parts = _texts(body.get("system"))
    for item in body.get("messages", []):
        parts += _texts(item.get("content"))
    return "\n".join(parts)


def reply(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The content blocks the fake model answers ``body`` with."""
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    content = last.get("content")
    results = [
        b for b in (content if isinstance(content, list) else []) if b.get("type") == "tool_result"
    ]
    if results:
        first = (_texts(results[0].get("content")) or [""])[0].strip().splitlines()
        return [{"type": "text", "text": f"Done: {first[0] if first else ''}"}]
    said = "\n".join(_texts(content))
    if body.get("tools"):
        for line in said.splitlines():
            if line.startswith("RUN: "):
                command = line[len("RUN: ") :]
                return [_tool("Bash", {"command": command, "description": "run it"})]
            if line.startswith("WRITE: "):
                path, _, text = line[len("WRITE: ") :].partition(" ")
                return [_tool("Write", {"file_path": path, "content": text + "\n"})]
    return [{"type": "text", "text": PLAIN_REPLY}]


_COUNTER = iter(range(1, 1_000_000))


def _tool(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": f"toolu_fake{next(_COUNTER):06d}",
        "name": name,
        "input": arguments,
    }


def _stop_reason(content: list[dict[str, Any]]) -> str:
    return "tool_use" if any(b["type"] == "tool_use" for b in content) else "end_turn"


def message(body: dict[str, Any], content: list[dict[str, Any]]) -> dict[str, Any]:
    """A whole (non-streamed) message."""
    return {
        "id": f"msg_fake{next(_COUNTER):06d}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "claude-fake"),
        "content": content,
        "stop_reason": _stop_reason(content),
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }


def events(body: dict[str, Any], content: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """The server-sent events of a streamed reply carrying ``content``."""
    start = message(body, [])
    start["stop_reason"] = None
    start["usage"] = {"input_tokens": 10, "output_tokens": 1}
    out: list[tuple[str, Any]] = [("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(content):
        if block["type"] == "text":
            first = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            first = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        out.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": first},
            )
        )
        out.append(
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        )
        out.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    out.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": _stop_reason(content), "stop_sequence": None},
                "usage": {"output_tokens": 5},
            },
        )
    )
    out.append(("message_stop", {"type": "message_stop"}))
    return out
