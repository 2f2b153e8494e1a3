"""The hooks' spool: what a coding agent's hooks recorded, durable before the hook returns.

A recording hook must cost the agent almost nothing, so it does not open the
store (pydantic, the journal's locks and fsyncs of several files): it appends
the hook's input as one checksummed line to the agent session's spool file
(``O_APPEND``, then ``fsync``) and returns. Whoever reads the project's
sessions next (the agent's next SessionStart, the background ingester a hook
starts, ``continuity recover``/``show``/``list``...) first moves the spool
into the journal (:mod:`agent_continuity.hooks.ingest`).

This module imports the standard library only, and little of it: it is on
every hook's path.

Layout, under :func:`state_dir`::

    spool/<project key>/<agent>-<agent session id>.jsonl     the records
    spool/<project key>/<agent>-<agent session id>.jsonl.done  bytes already ingested
    spool/<project key>/project                               the project's root folder
    map/<agent>-<agent session id>                            our session id
    hooks.log                                                 errors, one JSON object a line
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: Environment variable naming the hooks' state folder (spool, id map, log).
STATE_ENV = "CONTINUITY_STATE_DIR"


def state_dir() -> Path:
    """The hooks' state folder: ``$CONTINUITY_STATE_DIR``, else under ``$XDG_STATE_HOME``."""
    chosen = os.environ.get(STATE_ENV)
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "agent-continuity"


def project_root(cwd: str) -> Path:
    """The project of ``cwd``: its nearest ancestor with ``.git``, else ``cwd`` itself.

    The same rule as :func:`agent_continuity.find_project_root`, without its imports.
    """
    start = Path(cwd).resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


def project_spool(root: Path) -> Path:
    """The spool folder of the project at ``root``."""
    key = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    return state_dir() / "spool" / key


def safe_name(text: str) -> str:
    """``text`` as a file name: letters, digits, ``-`` and ``_`` kept, the rest hex-escaped."""
    return "".join(c if c.isalnum() or c in "-_" else f"%{ord(c):02x}" for c in text)[:200]


def spool_file(root: Path, agent: str, agent_session: str) -> Path:
    """The spool file of one agent session."""
    return project_spool(root) / f"{agent}-{safe_name(agent_session)}.jsonl"


def encode(record: dict[str, Any]) -> bytes:
    """One spool line: the CRC-32 of the JSON in hex, a space, the JSON, a newline."""
    body = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()
    return b"%08x " % zlib.crc32(body) + body + b"\n"


def decode(line: bytes) -> dict[str, Any] | None:
    """The record of a spool line, or None if the line is torn or damaged."""
    if len(line) < 10 or not line.endswith(b"\n") or line[8:9] != b" ":
        return None
    body = line[9:-1]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        found = json.loads(body)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def append(path: Path, record: dict[str, Any], *, root: Path | None = None) -> None:
    """Append ``record`` to the spool file ``path``; durable when this returns.

    One ``write`` of the whole line with ``O_APPEND``, so hooks of the same
    session running at once never interleave within a line; a line torn by a
    crash fails its checksum and was never acknowledged (the hook had not returned).
    """
    data = encode(record)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if root is not None:
            (path.parent / "project").write_text(str(root))
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def done_offset(path: Path) -> int:
    """How many bytes of the spool file ``path`` were already ingested."""
    try:
        return int(Path(f"{path}.done").read_text() or 0)
    except (OSError, ValueError):
        return 0


def mark_done(path: Path, offset: int) -> None:
    """Record that the spool file's first ``offset`` bytes are in the journal."""
    temp = Path(f"{path}.done.tmp")
    temp.write_text(str(offset))
    os.replace(temp, f"{path}.done")


def pending(path: Path) -> Iterator[tuple[int, int, dict[str, Any] | None]]:
    """The spool file's lines not ingested yet: (line number, end offset, record or None).

    A line without its newline at the end of the file is still being written
    (or was torn by a crash before its hook returned): it is not yielded.
    """
    start = done_offset(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return
    number = data.count(b"\n", 0, start)
    offset = start
    while True:
        end = data.find(b"\n", offset)
        if end < 0:
            return
        number += 1
        yield number, end + 1, decode(data[offset : end + 1])
        offset = end + 1


def has_pending(root: Path) -> bool:
    """Whether the project at ``root`` has spooled records not in the journal yet."""
    folder = project_spool(root)
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    for name in names:
        if name.endswith(".jsonl"):
            path = folder / name
            if path.stat().st_size > done_offset(path):
                return True
    return False


def log_error(what: str, **details: Any) -> None:
    """Add one line to the hooks' error log (``continuity hooks status`` shows it)."""
    line = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "error": what, **details}
    try:
        folder = state_dir()
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(folder / "hooks.log", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, default=str) + "\n")
    except OSError:
        pass  # nowhere to say it; the agent's turn must go on all the same


def read_log() -> list[dict[str, Any]]:
    """The hooks' error log, oldest first (unreadable lines as ``{"error": TEXT}``)."""
    try:
        text = (state_dir() / "hooks.log").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    found = []
    for line in text.splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            found.append({"error": line})
    return found


def mapped_session(agent: str, agent_session: str) -> str | None:
    """Our session id for an agent's session id, if one was mapped."""
    try:
        return (state_dir() / "map" / f"{agent}-{safe_name(agent_session)}").read_text().strip()
    except OSError:
        return None


def map_session(agent: str, agent_session: str, session_id: str) -> None:
    """Map an agent's session id to ours (the session's agent info names the other way)."""
    folder = state_dir() / "map"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = folder / f".{agent}-{safe_name(agent_session)}.tmp"
    temp.write_text(session_id)
    os.replace(temp, folder / f"{agent}-{safe_name(agent_session)}")
