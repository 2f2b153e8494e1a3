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
from typing import Any

from fake_http import LoggingHandler, serve

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


class Handler(LoggingHandler):
    """Serves the generateContent family of the Gemini API."""

    def do_GET(self) -> None:
        self._send(200, "application/json", json.dumps({"models": []}).encode())

    def do_POST(self) -> None:
        body = self._logged_body()
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


if __name__ == "__main__":
    serve(Handler)
