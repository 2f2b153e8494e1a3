"""The hooks' spool: what a coding agent's hooks recorded, durable before the hook returns.

A recording hook must cost the agent almost nothing, so it does not open the
store (pydantic, the journal's locks and fsyncs of several files): it appends
the hook's input as one checksummed line to the agent session's spool file
(``O_APPEND``, then ``fsync``) and returns. Whoever reads the project's
sessions next (the agent's next SessionStart, the background ingester a hook
starts, ``continuity recover``/``show``/``list``...) first moves the spool
into the journal (:mod:`agent_continuity.hooks.ingest`).

This module is the hook itself: the agent runs it as a script,
``python -I -S .../agent_continuity/hooks/spool.py AGENT`` (see :func:`main`),
so that the recording path loads neither ``site`` (every ``.pth`` file of
the environment) nor this package's ``__init__``; it imports a few standard
modules and nothing else. ``python -m agent_continuity.hooks.run AGENT`` is
the same hook, run the ordinary way.

Layout, under :func:`state_dir`::

    spool/<project key>/<agent>-<agent session id>.jsonl     the records
    spool/<project key>/<agent>-<agent session id>.jsonl.done  bytes ingested, first line's CRC
    spool/<project key>/project                               the project's root folder
    spool/<project key>/prepared/<session id>.json            its recovery prompt, prepared
    map/<agent>-<agent session id>                            our session id
    hooks.log                                                 errors, one JSON object a line
"""

from __future__ import annotations

import os
import sys
import time
import zlib

# Not `typing.TYPE_CHECKING`: importing typing costs the hook more than all the rest.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

#: Environment variable naming the hooks' state folder (spool, id map, log).
STATE_ENV = "CONTINUITY_STATE_DIR"


def state_dir() -> str:
    """The hooks' state folder: ``$CONTINUITY_STATE_DIR``, else under ``$XDG_STATE_HOME``."""
    chosen = os.environ.get(STATE_ENV)
    if chosen:
        return chosen
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(base, "agent-continuity")


def project_root(cwd: str) -> str:
    """The project of ``cwd``: its nearest ancestor with ``.git``, else ``cwd`` itself.

    The same rule as :func:`agent_continuity.find_project_root`, without its imports.
    """
    start = folder = os.path.realpath(cwd)
    while True:
        if os.path.exists(os.path.join(folder, ".git")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return start
        folder = parent


def project_spool(root: str | os.PathLike[str]) -> str:
    """The spool folder of the project at ``root``: its name and a checksum of its path."""
    text = os.fspath(root)
    key = f"{safe_name(os.path.basename(text))[:40]}-{zlib.crc32(text.encode()):08x}"
    return os.path.join(state_dir(), "spool", key)


def safe_name(text: str) -> str:
    """``text`` as a file name: letters, digits, ``-`` and ``_`` kept, the rest hex-escaped."""
    return "".join(c if c.isalnum() or c in "-_" else f"%{ord(c):02x}" for c in text)[:200]


def spool_file(root: str, agent: str, agent_session: str) -> str:
    """The spool file of one agent session."""
    return os.path.join(project_spool(root), f"{agent}-{safe_name(agent_session)}.jsonl")


def encode(record: dict[str, Any]) -> bytes:
    """One spool line: the CRC-32 of the JSON in hex, a space, the JSON, a newline."""
    import json

    body = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()
    return b"%08x " % zlib.crc32(body) + body + b"\n"


def encode_raw(header: dict[str, str | int | float], body: bytes) -> bytes:
    """A spool line holding ``header``'s fields and ``"input": body`` (JSON text as sent).

    The header's values are plain (names, numbers, a path) and written
    without :mod:`json`'s encoder; the line is checked whole by the ingester.
    """
    parts = []
    for key, value in header.items():
        if isinstance(value, str):
            quoted = value.replace("\\", "\\\\").replace('"', '\\"')
            quoted = "".join(c if c >= " " else f"\\u{ord(c):04x}" for c in quoted)
            parts.append(f'"{key}":"{quoted}"')
        else:
            parts.append(f'"{key}":{value!r}')
    line = ("{" + ",".join(parts) + ',"input":').encode() + body + b"}"
    return b"%08x " % zlib.crc32(line) + line + b"\n"


def decode(line: bytes) -> dict[str, Any] | None:
    """The record of a spool line, or None if the line is torn or damaged."""
    if len(line) < 10 or not line.endswith(b"\n") or line[8:9] != b" ":
        return None
    import json

    body = line[9:-1]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        found = json.loads(body)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def append(path: str, record: dict[str, Any], *, root: str | None = None) -> None:
    """Append ``record`` to the spool file ``path``; durable when this returns.

    One ``write`` of the whole line with ``O_APPEND``, so hooks of the same
    session running at once never interleave within a line; a line torn by a
    crash fails its checksum and was never acknowledged (the hook had not returned).
    """
    _append_line(path, encode(record), root)


def _append_line(path: str, data: bytes, root: str | None) -> None:
    import errno
    import fcntl  # a small C module; the hooks benchmark includes it

    for attempt in range(_REOPENS):
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        except FileNotFoundError:
            folder = os.path.dirname(path)
            os.makedirs(folder, mode=0o700, exist_ok=True)
            if root is not None:
                with open(os.path.join(folder, "project"), "w") as handle:
                    handle.write(root)
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:  # no locks here (NFS without a lock daemon)
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP):
                    raise
            if write_if_current(fd, path, data, last=attempt == _REOPENS - 1):
                return
        except OSError as exc:
            if exc.errno != errno.ESTALE:  # deleted from another host: open it again
                raise
        finally:
            os.close(fd)  # releases the lock


#: How often a hook opens its spool file again if it keeps finding it retired.
_REOPENS = 10


def write_if_current(fd: int, path: str, data: bytes, *, last: bool = False) -> bool:
    """Append ``data`` durably to the spool file open as ``fd`` (held with an exclusive lock).

    False, writing nothing, if ``path`` no longer names that file: it was
    retired (deleted) between its opening and the lock, and the caller opens
    the name again. The retirer deletes a file only under an exclusive lock
    of it, so a line is never written where no ingest will read it.

    A last line without its newline (torn by a crash while it was written,
    never acknowledged) gets one first, so this line is not lost with it.

    Args:
        fd: The spool file, open for reading and appending (NFS locks need both).
        path: Its name.
        data: One spool line.
        last: The caller's last attempt: write if the file still has a name
            (a file system that never says it is the same file); if it has
            none, the line goes to the error log instead, where it can be found.
    """
    held = os.fstat(fd)
    try:
        named = os.stat(path)
        current = (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)
    except FileNotFoundError:
        current = False
    if not current:
        if not last:
            return False
        if held.st_nlink == 0:
            log_error("spool file deleted under the hook; the record is here", line=data.decode())
            return True
    if held.st_size and os.pread(fd, 1, held.st_size - 1) != b"\n":
        data = b"\n" + data
    os.write(fd, data)
    os.fsync(fd)
    return True


def append_raw(
    path: str, header: dict[str, str | int | float], body: bytes, *, root: str | None = None
) -> None:
    """:func:`append` of a line made by :func:`encode_raw`."""
    _append_line(path, encode_raw(header, body), root)


def done_offset(path: str | os.PathLike[str]) -> int:
    """How many bytes of the spool file ``path`` were already ingested.

    The ``.done`` mark names the file by its first line's checksum (its first
    eight bytes) beside the offset: a file made anew at the same path, after
    the old one was retired, starts at 0 whatever mark a crash left behind. A
    mark without it (as older versions wrote) is trusted.
    """
    try:
        with open(f"{os.fspath(path)}.done") as handle:
            fields = handle.read().split()
        offset = int(fields[0]) if fields else 0
        if len(fields) > 1 and fields[1] != _head(path):
            return 0
    except (OSError, ValueError):
        return 0
    return offset


def _head(path: str | os.PathLike[str]) -> str:
    """What names a spool file in its mark: its first eight bytes (its first line's
    checksum), in hex (``-`` if it is empty)."""
    with open(path, "rb") as handle:
        return handle.read(8).hex() or "-"


def mark_text(path: str | os.PathLike[str], offset: int) -> str:
    """What the mark of the spool file ``path`` says when its first ``offset`` bytes are done."""
    return f"{offset} {_head(path)}"


def read_mark(path: str | os.PathLike[str]) -> str | None:
    """The spool file's mark as written (None if it has none)."""
    try:
        with open(f"{os.fspath(path)}.done") as handle:
            return handle.read()
    except OSError:
        return None


def mark_done(path: str | os.PathLike[str], offset: int, *, durable: bool = False) -> None:
    """Record that the spool file's first ``offset`` bytes are in the journal.

    Args:
        path: The spool file.
        offset: Where its records not ingested yet begin.
        durable: Flush the mark to disk before it replaces the old one.
    """
    target = f"{os.fspath(path)}.done"
    temp = f"{target}.tmp"
    with open(temp, "w") as handle:
        handle.write(mark_text(path, offset))
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(temp, target)


def pending(path: str | os.PathLike[str]) -> Iterator[tuple[int, int, dict[str, Any] | None]]:
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


def spool_files(root: str | os.PathLike[str]) -> list[str]:
    """The project's spool files, in name order."""
    folder = project_spool(root)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(os.path.join(folder, n) for n in names if n.endswith(".jsonl"))


def pending_bytes(path: str | os.PathLike[str]) -> int:
    """How many bytes of the spool file wait for the journal (0 if it is gone: retired)."""
    try:
        return os.path.getsize(path) - done_offset(path)
    except FileNotFoundError:
        return 0


def has_pending(root: str | os.PathLike[str]) -> bool:
    """Whether the project at ``root`` has spooled records not in the journal yet."""
    return any(pending_bytes(path) > 0 for path in spool_files(root))


def busy(root: str | os.PathLike[str]) -> bool:
    """Whether records wait for the journal, or a hook's process is writing them now.

    A reader that finds the spool locked waits for it: a recovery being
    seeded for a new agent session (or an ingest) is then complete when it looks.
    """
    if has_pending(root):
        return True
    import fcntl

    try:
        fd = os.open(os.path.join(project_spool(root), "lock"), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def log_error(what: str, **details: Any) -> None:
    """Add one line to the hooks' error log (``continuity hooks status`` shows it)."""
    import json  # only when something went wrong

    line = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "error": what, **details}
    try:
        folder = state_dir()
        os.makedirs(folder, mode=0o700, exist_ok=True)
        with open(os.path.join(folder, "hooks.log"), "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, default=str) + "\n")
    except OSError:
        pass  # nowhere to say it; the agent's turn must go on all the same


def read_log() -> list[dict[str, Any]]:
    """The hooks' error log, oldest first (unreadable lines as ``{"error": TEXT}``)."""
    try:
        with open(os.path.join(state_dir(), "hooks.log"), encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    import json

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
        with open(os.path.join(state_dir(), "map", f"{agent}-{safe_name(agent_session)}")) as f:
            return f.read().strip() or None
    except OSError:
        return None


def map_session(agent: str, agent_session: str, session_id: str) -> None:
    """Map an agent's session id to ours (the session's agent info names the other way)."""
    folder = os.path.join(state_dir(), "map")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    temp = os.path.join(folder, f".{agent}-{safe_name(agent_session)}.tmp")
    with open(temp, "w") as handle:
        handle.write(session_id)
    os.replace(temp, os.path.join(folder, f"{agent}-{safe_name(agent_session)}"))


# -- the hook ---------------------------------------------------------------

#: The longest a recording hook waits for its spool write before letting the agent go on.
WRITE_WAIT = 2.0
#: Shells through which agents run hook commands; the agent is above them.
_SHELLS = {"sh", "bash", "dash", "zsh", "fish", "ksh"}
#: Events after which the journal is brought up to date at once (a turn ended).
_TURN_ENDS = {"Stop", "AfterAgent", "PreCompact", "PreCompress", "SessionEnd"}
#: Otherwise a recording hook starts an ingester when the last one is this old (seconds).
INGEST_EVERY = 30.0
#: The events each agent names SessionStart by.
_STARTS = {"SessionStart"}
_TRANSCRIPT_TAIL = 256 * 1024


def agent_pid() -> int:
    """The agent's own pid: this process's parent, or above the shell it ran us through."""
    pid = os.getppid()
    for _ in range(3):
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                head, _, rest = handle.read().rpartition(b")")
            name = head.split(b"(", 1)[1].decode(errors="replace")
            parent = int(rest.split()[1])
        except (OSError, IndexError, ValueError):
            return pid  # no /proc (macOS): the parent it is
        if name not in _SHELLS or parent <= 1:
            return pid
        pid = parent
    return pid


def last_assistant_text(transcript: str, up_to: int | None = None) -> str:
    """The text of the last assistant message in a Claude Code transcript.

    Args:
        transcript: The transcript (JSON lines, appended to only).
        up_to: Read only its first ``up_to`` bytes: its size when the Stop hook ran,
            so that a later read finds the same last message.
    """
    try:
        with open(transcript, "rb") as handle:
            end = handle.seek(0, os.SEEK_END) if up_to is None else up_to
            handle.seek(max(0, end - _TRANSCRIPT_TAIL))
            lines = handle.read(min(end, _TRANSCRIPT_TAIL)).splitlines()
    except OSError:
        return ""
    import json

    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        message = entry.get("message") if isinstance(entry, dict) else None
        if entry.get("type") != "assistant" or not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        texts = [
            block.get("text", "")
            for block in content or []
            if isinstance(block, dict) and block.get("type") == "text"
        ]
        if any(texts):
            return "\n".join(t for t in texts if t)
    return ""


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/", "\\": "\\", '"': '"'}


def field(raw: bytes, key: str) -> str | None:
    """The string value of ``key`` in the JSON object ``raw``, read without parsing it.

    The recording hook does not import :mod:`json` (with :mod:`re` and
    :mod:`enum` it would cost more than all the rest). The agents put the
    common fields (``session_id``, ``cwd``, ``hook_event_name``...) first, so
    the first ``"key":`` is the top-level one. None if it is not a string
    there (the caller then parses the whole input).
    """
    at = raw.find(b'"' + key.encode() + b'"')
    if at < 0:
        return None
    at += len(key) + 2
    while raw[at : at + 1] in (b" ", b"\t", b"\n", b"\r"):
        at += 1
    if raw[at : at + 1] != b":":
        return None
    at += 1
    while raw[at : at + 1] in (b" ", b"\t", b"\n", b"\r"):
        at += 1
    if raw[at : at + 1] != b'"':
        return None
    end = at + 1
    while True:
        end = raw.find(b'"', end)
        if end < 0:
            return None
        slashes = 0
        while raw[end - 1 - slashes] == 0x5C:  # backslashes before the quote
            slashes += 1
        if slashes % 2 == 0:
            break
        end += 1
    text = raw[at + 1 : end].decode("utf-8", errors="replace")
    if "\\" not in text:
        return text
    out, index = [], 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            code = text[index + 1]
            if code == "u":
                out.append(chr(int(text[index + 2 : index + 6], 16)))
                index += 6
                continue
            out.append(_ESCAPES.get(code, code))
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def spawn_ingester(root: str) -> None:
    """Start a detached ingester (``agent_continuity.hooks.run --ingest``); nobody waits for it."""
    spawn_detached(["--ingest", root])


def spawn_detached(args: list[str], keep_fd: int | None = None) -> None:
    """Run ``agent_continuity.hooks.run ARGS`` detached; ``keep_fd`` is passed on open."""
    try:
        first = os.fork()
    except OSError:
        return  # the next reader ingests instead
    if first:
        os.waitpid(first, 0)
        return
    try:  # the child: a new session, then a grandchild that nobody waits for
        os.setsid()
        if os.fork():
            os._exit(0)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])),
        }
        if keep_fd is not None:
            os.set_inheritable(keep_fd, True)
        os.execve(sys.executable, [sys.executable, "-m", "agent_continuity.hooks.run", *args], env)
    finally:
        os._exit(0)


def record(agent: str, raw: bytes) -> None:
    """Spool one recording hook's input (``raw``, as sent), durably; start the ingester.

    The input is kept byte for byte (its newlines, which JSON allows only
    between tokens, made spaces): the ingester parses it.
    """
    event = field(raw, "hook_event_name") or field(raw, "hookEventName") or ""
    session = field(raw, "session_id") or field(raw, "sessionId") or ""
    if not session:
        log_error("hook input without a session id", agent=agent, event=event)
        return
    root = project_root(field(raw, "cwd") or os.getcwd())
    header: dict[str, str | int | float] = {
        "agent": agent,
        "event": event,
        "at": time.time(),
        "pid": agent_pid(),
    }
    if event in ("Stop", "AfterAgent") and b'"last_assistant_message"' not in raw:
        transcript = field(raw, "transcript_path")
        if transcript:
            try:
                header["transcript"] = transcript
                header["transcriptSize"] = os.path.getsize(transcript)
            except OSError:
                pass
    body = raw.strip().replace(b"\n", b" ").replace(b"\r", b" ") or b"{}"
    path = spool_file(root, agent, session)
    _bounded(lambda: append_raw(path, header, body, root=root), f"spool write of {event}")
    if _time_to_ingest(path, event):
        spawn_ingester(root)


def _time_to_ingest(path: str, event: str) -> bool:
    """Whether this hook starts an ingester: at the end of a turn, or when the spool is stale.

    Starting one on every prompt and tool call would cost the agent CPU
    while it works; every reader ingests first anyway (nothing is lost
    meanwhile: the spool is durable), so the journal catches up when the
    turn ends, or :data:`INGEST_EVERY` seconds after the last ingest.
    """
    if event in _TURN_ENDS:
        return True
    try:
        last = os.stat(f"{path}.done").st_mtime
    except OSError:
        return True  # never ingested: the session's first record
    return time.time() - last > INGEST_EVERY


def _bounded(work: Callable[[], None], what: str) -> None:
    """Run ``work``; give up waiting (it goes on in the background) after WRITE_WAIT."""
    import _thread  # not threading, which imports functools and collections

    failed: list[BaseException] = []
    finished = _thread.allocate_lock()
    finished.acquire()

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # reported below, never raised into the agent
            failed.append(exc)
        finally:
            finished.release()

    _thread.start_new_thread(run, ())
    if not finished.acquire(timeout=WRITE_WAIT):
        log_error(f"{what} still not durable after {WRITE_WAIT:g}s (slow disk)")
    elif failed:
        log_error(f"{what} failed: {failed[0]!r}")


def _full_python() -> None:
    """Make the package and its dependencies importable in a ``-I -S`` hook process."""
    if "agent_continuity" in sys.modules:
        return
    import site

    site.main()
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if here not in sys.path:
        sys.path.append(here)


def main(argv: list[str]) -> int:
    """Run one hook (``AGENT``, the input on stdin) or the ingester (``--ingest ROOT``).

    Returns:
        0, always: a hook never fails the agent's turn; errors go to the log.
    """
    if argv[:1] == ["--finish-start"] and len(argv) == 7:
        try:
            _full_python()
            from pathlib import Path

            from agent_continuity.hooks.ingest import finish_start

            root, old, agent, session, pid, fd = argv[1:]
            finish_start(Path(root), old, agent, session, int(pid), int(fd))
        except BaseException as exc:
            log_error(f"starting the recovered session failed: {exc!r}", project=argv[1])
        return 0
    if argv[:1] == ["--ingest"] and len(argv) == 2:
        try:
            _full_python()
            from pathlib import Path

            from agent_continuity.hooks.ingest import ingest_in_background

            ingest_in_background(Path(argv[1]))
        except BaseException as exc:
            log_error(f"ingest failed: {exc!r}", project=argv[1])
        return 0
    agent = argv[0] if argv else "claude"
    try:
        raw = sys.stdin.buffer.read()
        event = field(raw, "hook_event_name") or field(raw, "hookEventName") or ""
        if event in _STARTS:
            import json

            data = json.loads(raw or b"{}")
            if not isinstance(data, dict):
                raise ValueError("the hook input is not a JSON object")
            _full_python()
            from agent_continuity.hooks.ingest import session_start

            started = session_start(agent, data, agent_pid())
            if started.output:
                sys.stdout.write(json.dumps(started.output))
                sys.stdout.flush()
            if started.finish is not None:
                spawn_detached(["--finish-start", *started.finish], keep_fd=started.lock_fd)
        else:
            record(agent, raw)
    except BaseException as exc:  # never fail the agent's turn
        log_error(f"hook failed: {exc!r}", agent=agent)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
