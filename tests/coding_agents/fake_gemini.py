"""A fake Gemini API on 127.0.0.1, enough for the real Gemini CLI to run one turn.

Run as ``python fake_gemini.py LOG``: it prints its port on the first line of
stdout and serves until killed. Every request is appended to ``LOG`` as one
JSON line. ``streamGenerateContent`` is scripted per turn: contents whose last
user turn has no function response yet get a ``run_shell_command`` call
(``echo`` of the word the user asked for); contents that carry the
response get a final text quoting it. ``generateContent`` (the CLI's own
side questions: routing, next speaker) gets a small JSON answer, and
``countTokens`` a count.
"""

from __future__ import annotations

import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOG = sys.argv[1] if len(sys.argv) > 1 else None
_USAGE = {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}


def _word(body: dict[str, Any]) -> str:
    found = re.findall(r"echo ([A-Za-z0-9_-]+)", json.dumps(body.get("contents", [])))
    return found[-1] if found else "hello"


def _answered(body: dict[str, Any]) -> bool:
    """Whether the newest user turn is a function response (the tool ran)."""
    contents = [c for c in body.get("contents", []) if isinstance(c, dict)]
    for content in reversed(contents):
        if content.get("role") == "user":
            return any("functionResponse" in p for p in content.get("parts", []))
    return False


def _turn(body: dict[str, Any]) -> dict[str, Any]:
    word = _word(body)
    if _answered(body):
        part: dict[str, Any] = {"text": f"The shell said {word}."}
    else:
        # "RUN: COMMAND" in the prompt runs that command (a slow one, for the kill -9 tests).
        asked = re.findall(r"RUN: ([^\"\\]+)", json.dumps(body.get("contents", [])))
        command = asked[-1].strip() if asked else f"echo {word}"
        part = {
            "functionCall": {
                "name": "run_shell_command",
                "args": {"command": command, "description": "say the word"},
            }
        }
    return {
        "candidates": [
            {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": _USAGE,
        "modelVersion": "gemini-fake",
    }


def _side_answer() -> dict[str, Any]:
    text = json.dumps(
        {
            "reasoning": "the turn is complete",
            "next_speaker": "user",
            "model_choice": "flash",
            "complexity_reasoning": "one shell command",
            "complexity_score": 1,
        }
    )
    return {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}
        ],
        "usageMetadata": _USAGE,
    }


class Handler(BaseHTTPRequestHandler):
    """Serves the generateContent family of the Gemini API."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send(200, "application/json", json.dumps({"models": []}).encode())

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        if LOG:
            with open(LOG, "a", encoding="utf-8") as log:
                log.write(json.dumps({"path": self.path, "body": body}) + "\n")
        path = self.path.split("?")[0]
        if path.endswith(":streamGenerateContent"):
            data = f"data: {json.dumps(_turn(body))}\r\n\r\n".encode()
            self._send(200, "text/event-stream", data)
        elif path.endswith(":generateContent"):
            self._send(200, "application/json", json.dumps(_side_answer()).encode())
        elif path.endswith(":countTokens"):
            self._send(200, "application/json", b'{"totalTokens": 10}')
        else:
            self._send(404, "application/json", b'{"error": {"code": 404, "message": "not here"}}')


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
