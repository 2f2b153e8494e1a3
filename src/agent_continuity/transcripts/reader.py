"""What the three transcript formats share: JSON lines read from a byte offset, times, text.

A transcript is read from where the previous import stopped (a byte offset
and a line number). Only complete lines, those ending in a newline, move the
cursor on: a last line still being written is read again next time. A line
that is not a JSON object is reported with its number and reason, never
dropped in silence and never raised.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent_continuity.model import EventKind

# The head that identifies a file: the first line of each format names its session.
_FINGERPRINT_BYTES = 1024


@dataclass(frozen=True)
class Line:
    """One JSON object of a transcript, with its 1-based line number."""

    number: int
    record: dict[str, Any]


@dataclass(frozen=True)
class Damaged:
    """A line that could not be read."""

    line: int
    reason: str

    def to_wire(self) -> dict[str, Any]:
        """``{"line", "reason"}``."""
        return {"line": self.line, "reason": self.reason}


@dataclass(frozen=True)
class Entry:
    """What one transcript line says, as an event of ours.

    ``key`` is unique within the agent's session and the same on every read of
    the same line, so importing it twice adds it once.
    """

    key: str
    kind: EventKind
    at: datetime | None
    payload: dict[str, Any]


@dataclass
class Parsed:
    """The entries of a run of lines, the lines that gave none, and those that made no sense."""

    entries: list[Entry] = field(default_factory=list)
    skipped: int = 0
    damaged: list[Damaged] = field(default_factory=list)


#: What a record of the right shape but with fields of the wrong types raises when read.
ODD_RECORD = (AttributeError, KeyError, TypeError, ValueError)


def odd(line: int, exc: Exception) -> Damaged:
    """A line that is JSON but not a record the agent writes."""
    return Damaged(line, f"unexpected record: {type(exc).__name__}: {exc}")


@dataclass
class Chunk:
    """The lines read from ``start`` to ``end`` (byte offsets), and the damage met."""

    lines: list[Line]
    damaged: list[Damaged]
    end: int
    end_line: int


def fingerprint(path: Path, length: int) -> str:
    """A hash of the file's first ``length`` bytes (at most 1 KiB).

    Taken over the part already read, so a file that grew keeps it and a file
    rewritten from the start gets another.
    """
    with path.open("rb") as f:
        head = f.read(min(length, _FINGERPRINT_BYTES))
    return hashlib.sha256(head).hexdigest()[:16]


def read_from(path: Path, offset: int = 0, line: int = 0) -> Chunk:
    """The JSON lines of ``path`` after byte ``offset`` (line ``line`` ended there).

    A final line without its newline is read if it parses (a writer that
    died mid-line leaves one that does not: it is reported), but the cursor
    (``end``, ``end_line``) stays before it, so a later import reads it again.
    """
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read()
    lines: list[Line] = []
    damaged: list[Damaged] = []
    end, end_line = offset, line
    position = 0
    for number, raw in enumerate(_split(data), start=line + 1):
        complete = raw.endswith(b"\n")
        position += len(raw)
        if complete:
            end, end_line = offset + position, number
        text = raw.strip()
        if not text:
            continue
        try:
            record = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            reason = (
                "torn: the line ends before its JSON does"
                if not complete
                else f"invalid JSON: {exc}"
            )
            damaged.append(Damaged(number, reason))
            continue
        if not isinstance(record, dict):
            damaged.append(Damaged(number, f"not a JSON object but {type(record).__name__}"))
            continue
        lines.append(Line(number, record))
    return Chunk(lines, damaged, end, end_line)


def _split(data: bytes) -> Iterator[bytes]:
    start = 0
    while start < len(data):
        stop = data.find(b"\n", start)
        if stop < 0:
            yield data[start:]
            return
        yield data[start : stop + 1]
        start = stop + 1


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 time (``Z`` or an offset), or None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def text_of(content: object) -> str:
    """The text of a message content: a string, or the text parts of a list of blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [text_of(block) for block in content]
        return "\n".join(p for p in parts if p)
    if isinstance(content, dict):
        kind = content.get("type")
        if kind in (None, "text", "input_text", "output_text") and isinstance(
            content.get("text"), str
        ):
            return str(content["text"])
    return ""


def message(key: str, at: datetime | None, role: str, text: str, **extra: Any) -> Entry:
    """A message entry."""
    return Entry(key, EventKind.MESSAGE, at, {"role": role, "text": text, **extra})


def tool_call(
    key: str, at: datetime | None, call_id: str, name: str, arguments: Any, **extra: Any
) -> Entry:
    """A tool-call entry."""
    payload = {"callId": call_id, "name": name or "tool", "arguments": arguments, **extra}
    return Entry(key, EventKind.TOOL_CALL, at, payload)


def tool_result(
    key: str, at: datetime | None, call_id: str, output: Any, is_error: bool, **extra: Any
) -> Entry:
    """A tool-result entry."""
    payload = {"callId": call_id, "output": output, "isError": is_error, **extra}
    return Entry(key, EventKind.TOOL_RESULT, at, payload)
