"""The assistant's replies: offline by default, any OpenAI-compatible endpoint when configured."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from agent_continuity.service.responder import (
    OfflineResponder,
    OpenAICompatibleResponder,
    ResponderUnavailable,
    responder_from_env,
)
from service_support import free_port

SESSION = {
    "tasks": [
        {"id": "T1", "title": "Read ARIES", "status": "in-progress"},
        {"id": "T2", "title": "Old", "status": "done"},
    ],
    "session": {
        "context": {"keyDecisions": ["Focus on write-ahead logging"]},
        "state": {"nextSteps": ["compare with shadow paging"]},
    },
}


def test_the_offline_responder_reads_back_where_the_work_stands() -> None:
    conversation = [{"role": "user", "text": "What did Mohan propose?"}]
    first = OfflineResponder().reply(conversation, SESSION)
    assert first == OfflineResponder().reply(conversation, SESSION)  # deterministic
    assert "What did Mohan propose?" in first
    assert "Read ARIES (in-progress)" in first and "Old" not in first
    assert "write-ahead logging" in first and "shadow paging" in first


def test_the_environment_chooses_the_responder() -> None:
    assert isinstance(responder_from_env({}), OfflineResponder)
    chosen = responder_from_env(
        {"CONTINUITY_RESPONDER_URL": "http://127.0.0.1:1/v1/", "OPENAI_API_KEY": "sk-x"}
    )
    assert isinstance(chosen, OpenAICompatibleResponder)
    assert chosen.url == "http://127.0.0.1:1/v1/chat/completions"
    assert chosen.model == "gpt-4o-mini" and chosen.api_key == "sk-x"


@pytest.fixture
def endpoint() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local chat-completions endpoint that records what it was sent."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append({"path": self.path, "auth": self.headers["Authorization"], **body})
            answer = {"choices": [{"message": {"role": "assistant", "content": "From the model."}}]}
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1", received
    finally:
        server.shutdown()
        server.server_close()


def test_an_openai_compatible_endpoint_answers_the_conversation(
    endpoint: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = endpoint
    responder = OpenAICompatibleResponder(url, "local-model", "key-1")
    conversation = [
        {"role": "user", "text": "hello"},
        {"role": "assistant", "text": "hi"},
        {"role": "tool", "text": "not for the model"},
        {"role": "user", "text": "go on"},
    ]
    assert responder.reply(conversation, SESSION) == "From the model."
    sent = received[0]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == "Bearer key-1"
    assert sent["model"] == "local-model"
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
    assert "Read ARIES" in sent["messages"][0]["content"]


def test_an_endpoint_that_does_not_answer_says_what_to_do() -> None:
    responder = OpenAICompatibleResponder(f"http://127.0.0.1:{free_port()}/v1", "m", timeout=5)
    with pytest.raises(ResponderUnavailable, match="CONTINUITY_RESPONDER_URL"):
        responder.reply([{"role": "user", "text": "hi"}], SESSION)
