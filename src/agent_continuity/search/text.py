"""What of a journal event is searchable, and the kind a search result names.

Messages, decisions, tasks, notes and tool calls (and their results), plus the
steps, blockers and errors a session recorded. Session, lease, lifecycle,
state and file events carry no prose and are not indexed. The text is the
event's payload as the store holds it, so whatever redaction replaced before
the event was stored stays replaced in the index.
"""

from __future__ import annotations

import json
from typing import Any

#: Event kind -> the payload keys whose text is indexed, in order.
_FIELDS: dict[str, tuple[str, ...]] = {
    "message": ("text",),
    "decision": ("text",),
    "note": ("text",),
    "task": ("id", "title", "phase", "steps"),
    "tool-call": ("name", "arguments"),
    "tool-result": ("output",),
    "step-completed": ("step",),
    "next-step": ("step",),
    "blocker": ("text",),
    "error": ("type", "message"),
}

SEARCHABLE_KINDS = tuple(_FIELDS)

#: Text longer than this is cut before indexing (a tool's output can be megabytes).
MAX_TEXT = 16_000


def _flatten(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return " ".join(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def searchable_text(kind: str, payload: dict[str, Any]) -> str | None:
    """The indexed text of an event, or None when its kind is not searched.

    Args:
        kind: The event's kind (``message``, ``decision``...).
        payload: The event's payload, as stored.

    Returns:
        The text (at most :data:`MAX_TEXT` characters), None for other kinds or no text.
    """
    fields = _FIELDS.get(kind)
    if fields is None:
        return None
    parts = [_flatten(payload.get(key)) for key in fields]
    text = " ".join(p for p in parts if p).strip()
    return text[:MAX_TEXT] or None
