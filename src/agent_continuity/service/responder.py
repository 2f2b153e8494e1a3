"""Who writes the assistant's replies in the web app: pluggable, offline by default.

* :class:`OfflineResponder` (the default) needs no network and no key: a
  deterministic reply that acknowledges the message and reads back the
  session's open tasks, latest decision and next step, so the workspace is
  useful (and testable) anywhere.
* :class:`OpenAICompatibleResponder`: any endpoint speaking the OpenAI chat
  completions protocol (OpenAI, a local llama.cpp or vLLM, Ollama's ``/v1``...),
  chosen by environment variables:

  ``CONTINUITY_RESPONDER_URL``  the base URL, e.g. ``https://api.openai.com/v1``
  ``CONTINUITY_RESPONDER_MODEL``  the model (default ``gpt-4o-mini``)
  ``CONTINUITY_RESPONDER_KEY``  the API key (default: ``OPENAI_API_KEY``; none for local servers)
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

#: How many of the latest messages an endpoint is sent.
CONTEXT_MESSAGES = 40
_TIMEOUT = 60.0


class ResponderUnavailable(Exception):
    """The configured endpoint did not answer; the user's message is kept all the same."""


class Responder(Protocol):
    """Writes the assistant's next message."""

    name: str

    def reply(self, conversation: Sequence[Mapping[str, Any]], session: Mapping[str, Any]) -> str:
        """The assistant's reply.

        Args:
            conversation: The messages so far, ``{"role", "text"}``, oldest first.
            session: The session as ``show --json`` reports it (tasks, decisions...).

        Raises:
            ResponderUnavailable: If the reply could not be made.
        """
        ...


def _clip(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class OfflineResponder:
    """A deterministic assistant that works with no network and no key."""

    name = "offline"

    def reply(self, conversation: Sequence[Mapping[str, Any]], session: Mapping[str, Any]) -> str:
        """Acknowledge the last user message and read back where the work stands."""
        said = next(
            (str(m.get("text") or "") for m in reversed(conversation) if m.get("role") == "user"),
            "",
        )
        lines = [f"Noted: “{_clip(said, 200)}”." if said else "Ready when you are."]
        open_tasks = [
            t for t in session.get("tasks", []) if t.get("status") not in ("done", "cancelled")
        ]
        if open_tasks:
            shown = ", ".join(
                f"{t.get('title') or t.get('id')} ({t.get('status')})" for t in open_tasks[:5]
            )
            lines.append(f"Open tasks: {shown}.")
        context = session.get("session", {}).get("context", {})
        decisions = context.get("keyDecisions") or []
        if decisions:
            latest = decisions[-1]
            text = latest.get("text", latest) if isinstance(latest, dict) else latest
            lines.append(f"Latest decision: {_clip(str(text), 160)}.")
        next_steps = session.get("session", {}).get("state", {}).get("nextSteps") or []
        if next_steps:
            lines.append(f"Next step: {_clip(str(next_steps[0]), 160)}.")
        lines.append(
            "(Offline assistant: set CONTINUITY_RESPONDER_URL to answer with a language model.)"
        )
        return " ".join(lines)


class OpenAICompatibleResponder:
    """Replies from an OpenAI-compatible chat completions endpoint.

    Args:
        base_url: The API's base URL (``…/v1``).
        model: The model name.
        api_key: The bearer key, if the endpoint needs one.
        timeout: Seconds to wait for the reply.
    """

    name = "openai-compatible"

    def __init__(
        self, base_url: str, model: str, api_key: str | None = None, timeout: float = _TIMEOUT
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout = timeout

    def reply(self, conversation: Sequence[Mapping[str, Any]], session: Mapping[str, Any]) -> str:
        """Ask the endpoint for the next message of the conversation."""
        tasks = ", ".join(
            f"{t.get('title') or t.get('id')} ({t.get('status')})" for t in session.get("tasks", [])
        )
        system = (
            "You are a research assistant in a workspace whose conversation and tasks are "
            f"saved as they happen. The open tasks: {tasks or 'none'}. Answer concisely."
        )
        messages = [{"role": "system", "content": system}] + [
            {"role": str(m.get("role")), "content": str(m.get("text"))}
            for m in conversation[-CONTEXT_MESSAGES:]
            if m.get("role") in ("user", "assistant", "system")
        ]
        request = urllib.request.Request(
            self.url,
            data=json.dumps({"model": self.model, "messages": messages}).encode(),
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}),
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                data = json.loads(answer.read())
            return str(data["choices"][0]["message"]["content"])
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise ResponderUnavailable(
                f"the responder at {self.url} did not answer ({exc}); your message is saved; "
                "check CONTINUITY_RESPONDER_URL, _MODEL and _KEY, or unset the URL for the "
                "offline assistant"
            ) from exc


def responder_from_env(environ: Mapping[str, str] | None = None) -> Responder:
    """The responder the environment chooses (see the module documentation)."""
    env = os.environ if environ is None else environ
    url = env.get("CONTINUITY_RESPONDER_URL", "").strip()
    if not url:
        return OfflineResponder()
    return OpenAICompatibleResponder(
        url,
        env.get("CONTINUITY_RESPONDER_MODEL", "").strip() or "gpt-4o-mini",
        env.get("CONTINUITY_RESPONDER_KEY") or env.get("OPENAI_API_KEY") or None,
    )
