"""What a request may send, checked before anything is written: sizes, types, fields.

Limits (each refusal is a 4xx ``{"error": {"code", "message"}}`` and changes nothing):

* a request body: at most :data:`MAX_BODY_BYTES` (256 KiB), else 413 ``too-large``;
* a message's text: at most :data:`MAX_TEXT` (100,000 characters);
* any other text (task, phase, step, decision, note...): at most :data:`MAX_FIELD`
  (10,000 characters);
* a list (steps, decisions, tasks...): at most :data:`MAX_ITEMS` (100 items);
* a query string value: at most :data:`MAX_QUERY` (500 characters).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

MAX_BODY_BYTES = 256 * 1024
MAX_TEXT = 100_000
MAX_FIELD = 10_000
MAX_ITEMS = 100
MAX_QUERY = 500


class BadRequest(Exception):
    """A request the service refuses, with its HTTP status and error code."""

    def __init__(self, message: str, code: str = "invalid-input", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


async def read_body(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The request's JSON object, read up to :data:`MAX_BODY_BYTES`.

    Args:
        request: The request.
        required: False when an empty body means ``{}`` (``end``, ``save``...).

    Raises:
        BadRequest: If the body is too large, not JSON, or not an object.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("Content-Length must be a number of bytes")
        if int(declared) > MAX_BODY_BYTES:
            raise _too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        if required:
            raise BadRequest("the body must be a JSON object", "invalid-json")
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadRequest("the body is not valid JSON (UTF-8)", "invalid-json") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object", "invalid-json")
    return data


def _too_large() -> BadRequest:
    return BadRequest(
        f"the body is larger than {MAX_BODY_BYTES // 1024} KiB; send less at a time",
        "too-large",
        413,
    )


def only(body: Mapping[str, Any], allowed: set[str]) -> None:
    """Refuse fields the route does not know (a typo must not be silently ignored).

    Raises:
        BadRequest: If ``body`` has a key outside ``allowed``.
    """
    unknown = sorted(set(body) - allowed)
    if unknown:
        shown = ", ".join(repr(k)[:60] for k in unknown[:5])
        raise BadRequest(f"unknown fields {shown}; known: {', '.join(sorted(allowed))}")


def text(
    body: Mapping[str, Any], name: str, *, required: bool = False, limit: int = MAX_FIELD
) -> str | None:
    """A text field: a non-empty string of at most ``limit`` characters, or None if absent.

    Raises:
        BadRequest: If it is missing (and required), not a string, empty or too long.
    """
    value = body.get(name)
    if value is None:
        if required:
            raise BadRequest(f"{name!r} is required")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name!r} must be a string, not {_kind(value)}")
    if not value.strip():
        raise BadRequest(f"{name!r} must not be empty")
    if len(value) > limit:
        raise BadRequest(f"{name!r} is longer than {limit} characters", "too-large", 413)
    return value


def texts(body: Mapping[str, Any], name: str) -> list[str]:
    """A list of texts (a single string counts as a list of one); [] if absent.

    Raises:
        BadRequest: If it is not a string or a list of strings within the limits.
    """
    value = body.get(name)
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise BadRequest(f"{name!r} must be a list of strings, not {_kind(value)}")
    if len(items) > MAX_ITEMS:
        raise BadRequest(f"{name!r} has more than {MAX_ITEMS} items", "too-large", 413)
    return [str(text({name: item}, name, required=True)) for item in items]


def integer(body: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    """A whole number in [low, high], or None if absent.

    Raises:
        BadRequest: If it is not a whole number (booleans are not) or out of range.
    """
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{name!r} must be a whole number, not {_kind(value)}")
    if not low <= value <= high:
        raise BadRequest(f"{name!r} must be between {low} and {high}")
    return value


def boolean_or_null(body: Mapping[str, Any], name: str) -> bool | None:
    """``true``, ``false`` or ``null`` (also when absent).

    Raises:
        BadRequest: If it is anything else.
    """
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise BadRequest(f"{name!r} must be true, false or null, not {_kind(value)}")
    return value


def string_map(body: Mapping[str, Any], name: str) -> dict[str, str]:
    """An object of short texts (preferences); {} if absent.

    Raises:
        BadRequest: If it is not an object of strings within the limits.
    """
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{name!r} must be an object of strings, not {_kind(value)}")
    if len(value) > MAX_ITEMS:
        raise BadRequest(f"{name!r} has more than {MAX_ITEMS} entries", "too-large", 413)
    checked: dict[str, str] = {}
    for key, item in value.items():
        if not key.strip() or len(key) > 200:
            raise BadRequest(f"the names in {name!r} must be 1 to 200 characters")
        checked[key] = str(text({key: item}, key, required=True))
    return checked


def tasks(body: Mapping[str, Any], name: str = "tasks") -> list[dict[str, str]]:
    """Tasks to create or change: ``[{"id", "title"?, "status"?}]``; [] if absent.

    Raises:
        BadRequest: If it is not such a list within the limits.
    """
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"{name!r} must be a list of tasks, not {_kind(value)}")
    if len(value) > MAX_ITEMS:
        raise BadRequest(f"{name!r} has more than {MAX_ITEMS} items", "too-large", 413)
    checked = []
    for item in value:
        if not isinstance(item, dict):
            raise BadRequest(f"each of {name!r} must be an object {{id, title?, status?}}")
        only(item, {"id", "title", "status"})
        task = {"id": str(text(item, "id", required=True, limit=200))}
        for key in ("title", "status"):
            found = text(item, key)
            if found is not None:
                task[key] = found
        checked.append(task)
    return checked


def query(request: Request, name: str) -> str | None:
    """A query-string value of at most :data:`MAX_QUERY` characters, or None.

    Raises:
        BadRequest: If it is longer.
    """
    value = request.query_params.get(name)
    if value is not None and len(value) > MAX_QUERY:
        raise BadRequest(f"{name!r} is longer than {MAX_QUERY} characters")
    return value


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )
