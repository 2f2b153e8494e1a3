"""What the scripted fake model APIs run as scripts share: logging, replies, serving.

``fake_openai.py`` and ``fake_gemini.py`` are started as ``python SCRIPT LOG``
(see ``agent_cli_support.fake_api``), so this module is imported from the
script's own folder. Only the HTTP plumbing lives here; what each API answers
stays in its script.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOG = sys.argv[1] if len(sys.argv) > 1 else None


class LoggingHandler(BaseHTTPRequestHandler):
    """A quiet handler that reads JSON bodies, appending each request to ``LOG``."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _logged_body(self) -> dict[str, Any]:
        """The request's JSON body ({} if it is none), logged with the path as one line."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        if LOG:
            with open(LOG, "a", encoding="utf-8") as log:
                log.write(json.dumps({"path": self.path, "body": body}) + "\n")
        return body  # type: ignore[no-any-return]


def serve(handler: type[BaseHTTPRequestHandler]) -> None:
    """Serve on a free port of 127.0.0.1, printed on stdout's first line, until killed."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
