"""Moving the hooks' spool into the journal, and the SessionStart hook.

Everything here goes through the public API: a :class:`SessionManager` of the
project, the agent's pid holding each session's lease (``owner_pid``), so a
``kill -9`` of the agent is seen as an interruption by the next reader, after
this module has written what the agent's hooks spooled before it died.

A record is marked ingested (the spool's ``.done`` offset) right after its
events are durable; a crash in between writes it again on the next pass
(at least once, never lost). After each ingest, spool files wholly in the
journal and idle are deleted (:mod:`agent_continuity.hooks.retire`).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_continuity.errors import (
    ContinuityError,
    IncompleteWrite,
    LeaseHeld,
    NoActiveSession,
    StoreError,
    StoreNotFound,
)
from agent_continuity.hooks import spool
from agent_continuity.hooks.retire import retire

if TYPE_CHECKING:
    from agent_continuity import LiveSession, SessionManager

#: How long SessionStart (or a reader) waits for an ingester that is already running.
LOCK_WAIT = 5.0
#: Tools whose input names a file they wrote.
_FILE_TOOLS = {"Write", "Edit", "MultiEdit", "NotebookEdit", "write_file", "replace"}
#: The agent names each agent's session records carry (``AgentInfo.type``).
AGENT_TYPES = {"claude": "claude-code", "gemini": "gemini-cli", "codex": "codex"}


def manager(root: Path) -> SessionManager:
    """A manager of the project at ``root``, with its configured store."""
    from agent_continuity import SessionManager

    return SessionManager(project_dir=root)


def take_lock(root: Path, wait: float) -> int | None:
    """Lock the project's spool: the locked descriptor, or None after ``wait`` seconds.

    ``flock``: the lock belongs to the open file, so a process started with
    the descriptor (:func:`finish_start`) holds it on after this one exits.
    """
    folder = spool.project_spool(root)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(folder, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.01)


@contextmanager
def project_lock(root: Path, wait: float) -> Iterator[bool]:
    """Hold the project's ingest lock; yields False if another holder kept it ``wait`` seconds."""
    fd = take_lock(root, wait)
    try:
        yield fd is not None
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def ingest_in_background(root: Path) -> None:
    """The detached ingester a recording hook starts: drain the project's spool.

    If another ingester runs, it returns at once: that one checks the spool
    again after releasing the lock, so nothing appended meanwhile waits long.
    """
    while spool.has_pending(root):
        before = _spool_state(root)
        with project_lock(root, wait=0.0) as held:
            if not held:
                return
            with manager(root) as mgr:
                written: list[tuple[str, str]] = []
                count = ingest(mgr, root, written)
                _prepare(mgr, root, written)
        if not count and _spool_state(root) == before:
            return  # what waits cannot be written now (a lease held, a full disk): later


def _spool_state(root: Path) -> list[tuple[str, int, int]]:
    """Each spool file's size and mark: a pass that changes neither made no progress."""
    out = []
    for path in spool.spool_files(root):
        try:
            out.append((path, os.path.getsize(path), spool.done_offset(path)))
        except FileNotFoundError:
            pass
    return out


def ingest_project(root: Path, mgr: SessionManager | None = None, wait: float = LOCK_WAIT) -> int:
    """Move the project's spooled records into the journal (what every reader does first).

    Returns:
        How many records were written.
    """
    if not spool.busy(root):
        return 0
    with project_lock(root, wait) as held:
        if not held:
            spool.log_error("the spool stayed locked; ingest it later", project=str(root))
            return 0
        if mgr is not None:
            return ingest(mgr, root)
        with manager(root) as own:
            return ingest(own, root)


def ingest(
    mgr: SessionManager,
    root: Path,
    sessions: list[tuple[str, str]] | None = None,
    skip: str | None = None,
) -> int:
    """Write every spooled record of the project (call it under :func:`project_lock`).

    Args:
        mgr: The project's manager.
        root: The project.
        sessions: If given, gets (spool file, our session id) of each spool file written.
        skip: A spool file left for later (an agent session not mapped yet).
    """
    written = 0
    for path in spool.spool_files(root):
        if path == skip:
            continue
        writer = _Writer(mgr)
        try:
            for number, end, entry in spool.pending(path):
                if entry is None:
                    spool.log_error("damaged spool line skipped", file=str(path), line=number)
                else:
                    try:
                        written += writer.apply(entry)
                    except (LeaseHeld, StoreError, StoreNotFound) as exc:
                        # Another live process writes that session, or the store
                        # cannot be written now (a full disk): the rest of this
                        # spool waits for the next reader, kept, in order.
                        spool.log_error(f"spool of {path} waits: {exc}")
                        break
                spool.mark_done(path, end)
        finally:
            if sessions is not None and writer.session_id is not None:
                sessions.append((path, writer.session_id))
            writer.close()
    try:
        retire(root)
    except OSError as exc:  # housekeeping only: the spool stays bigger
        spool.log_error(f"retiring ingested spool files failed: {exc!r}")
    return written


def _prepare(mgr: SessionManager, root: Path, written: list[tuple[str, str]]) -> None:
    """Prepare the recovery prompt of each session written (for a fast SessionStart)."""
    from agent_continuity.hooks.prepared import prepare

    for path, session_id in written:
        try:
            prepare(mgr, root, path, session_id)
        except (ContinuityError, OSError) as exc:  # only the fast path is lost: say so
            spool.log_error(f"preparing the recovery prompt of {session_id} failed: {exc!r}")


class _Writer:
    """Applies one agent session's spooled records to our session, under the agent's lease."""

    def __init__(self, mgr: SessionManager) -> None:
        self._mgr = mgr
        self._session: LiveSession | None = None
        self._pid = 0

    def close(self) -> None:
        """Forget the handle (nothing runs in this process for it)."""
        self._session = None

    @property
    def session_id(self) -> str | None:
        """The session the last record was written to, if any."""
        return self._session.id if self._session is not None else None

    def apply(self, entry: dict[str, Any]) -> int:
        """Write one spooled record; 1 if it was written, 0 if not (and logged)."""
        agent = str(entry.get("agent") or "claude")
        raw = entry.get("input")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        event = str(entry.get("event") or "")
        pid = int(entry.get("pid") or 0) or os.getpid()
        agent_session = str(data.get("session_id") or data.get("sessionId") or "")
        try:
            session = self._handle(agent, agent_session, pid, event)
            if session is None:
                return 0
            _record(session, event, data, entry)
            return 1
        except IncompleteWrite as exc:  # the event itself is kept: never write it twice
            spool.log_error(f"{event} recorded, but: {exc}")
            self._session = None
            return 1
        except (LeaseHeld, StoreError, StoreNotFound):
            self._session = None
            raise
        except ContinuityError as exc:
            # Kept in the log whole: the record is not lost, and `verify` shows it.
            spool.log_error(f"could not record {event}: {exc}", record=entry)
            self._session = None
            return 0

    def _handle(self, agent: str, agent_session: str, pid: int, event: str) -> LiveSession | None:
        if self._session is not None and self._pid == pid and not self._session.closed:
            return self._session
        self._pid = pid
        ours = spool.mapped_session(agent, agent_session)
        if ours is None:
            if event == "SessionEnd":
                return None
            self._session = start_for(self._mgr, agent, agent_session, pid)
        else:
            try:
                self._session = self._mgr.attach(ours, owner_pid=pid)
            except NoActiveSession:
                if event == "SessionEnd":
                    return None
                # Marked interrupted (or ended) before its spool was read: continue it.
                self._session = continue_session(self._mgr, agent, agent_session, ours, pid)[0]
        return self._session


def _record(session: LiveSession, event: str, data: dict[str, Any], entry: dict[str, Any]) -> None:
    """Write one hook event (Claude Code's names, and Gemini CLI's) to the session."""
    if event in ("UserPromptSubmit", "BeforeAgent"):
        prompt = data.get("prompt")
        if event == "BeforeAgent" and isinstance(prompt, str):
            prompt = _without_hook_context(prompt)
        if isinstance(prompt, str) and prompt:
            session.add_message("user", prompt)
    elif event in ("PreToolUse", "BeforeTool"):  # the call in flight, should the agent die in it
        name = str(data.get("tool_name") or "tool")
        session.record_tool_call(name, data.get("tool_input"), call_id=data.get("tool_use_id"))
    elif event in ("PostToolUse", "AfterTool"):
        name = str(data.get("tool_name") or "tool")
        call = str(data.get("tool_use_id") or "") or _open_call(session, name, data)
        if not call or call not in session.view.pending_calls:
            call = session.record_tool_call(name, data.get("tool_input"), call_id=call or None)
        result = data.get("tool_response", data.get("tool_result"))
        session.record_tool_result(call, result)
        if name in _FILE_TOOLS:
            tool_input = data.get("tool_input")
            path = tool_input.get("file_path") if isinstance(tool_input, dict) else None
            if isinstance(path, str) and path:
                session.touch_file(_relative(path, session))
    elif event in ("Stop", "AfterAgent"):
        text = data.get("last_assistant_message") or data.get("prompt_response")
        transcript, size = entry.get("transcript"), entry.get("transcriptSize")
        if not text and isinstance(transcript, str) and isinstance(size, int):
            # The transcript as it was when the hook ran: its last reply then.
            text = spool.last_assistant_text(transcript, up_to=size)
        if isinstance(text, str) and text:
            session.add_message("assistant", text)
    elif event == "PreCompact":
        # Not Gemini CLI's PreCompress (hooks installed before it was dropped): it
        # comes before every model request, compressing or not.
        session.checkpoint("compaction")
    elif event == "SessionEnd":
        session.end()


def _without_hook_context(prompt: str) -> str:
    """Gemini CLI's prompt without the SessionStart context it put in front of it.

    Gemini CLI 0.61 sends ``<hook_context>CONTEXT</hook_context>``, a blank
    line, then what the user typed: the recovery we injected is not the user's message.
    """
    if prompt.startswith("<hook_context>"):
        end = prompt.find("</hook_context>")
        if end >= 0:
            return prompt[end + len("</hook_context>") :].lstrip("\n")
    return prompt


def _open_call(session: LiveSession, name: str, data: dict[str, Any]) -> str:
    """The call a result without a call id answers (Gemini CLI's AfterTool has none).

    The oldest call of that tool still waiting, the one with the same input first;
    "" if none waits (no BeforeTool was recorded).
    """
    waiting = sorted(
        (c for c in session.view.pending_calls.values() if c.name == name), key=lambda c: c.seq
    )
    found = [c for c in waiting if c.arguments == data.get("tool_input")] or waiting
    return found[0].call_id if found else ""


def _relative(path: str, session: LiveSession) -> str:
    root = session.record.project_dir
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return path


def start_for(mgr: SessionManager, agent: str, agent_session: str, pid: int) -> LiveSession:
    """A new session for an agent's session id, held by the agent's pid, mapped both ways."""
    from agent_continuity import AgentInfo

    info = AgentInfo(
        type=AGENT_TYPES.get(agent, agent), specialization=f"{agent} session {agent_session}"
    )
    session = mgr.start(agent=info, owner_pid=pid)
    spool.map_session(agent, agent_session, session.id)
    return session


def continue_session(
    mgr: SessionManager, agent: str, agent_session: str, ours: str, pid: int
) -> tuple[LiveSession, str | None]:
    """Continue our session ``ours`` for the agent: resume it if it was interrupted.

    Returns:
        The handle, and the recovery prompt when it had been interrupted.
    """
    record = mgr.get(ours)
    if record.status.value == "active":
        return mgr.attach(ours, owner_pid=pid), None
    if record.status.value == "interrupted":
        result = mgr.recover(ours, answer=True)
        target = result.new_session_id or ours
        spool.map_session(agent, agent_session, target)
        return mgr.attach(target, owner_pid=pid), result.prompt
    # Ended (or archived): a new session that continues it, under the same agent id.
    result = mgr.start_recovered(ours)
    target = result.new_session_id or ours
    spool.map_session(agent, agent_session, target)
    return mgr.attach(target, owner_pid=pid), None


def nothing_to_recover(agent: str, agent_session: str, root: Path) -> bool:
    """Whether a quick look, without the model, finds nothing here to recover or resume.

    True when no hook spooled records wait, this project has no interrupted
    session of this user and no active one whose owner is gone, and the
    agent's session id is new or maps to a session still active. False
    whenever unsure (a store the quick look cannot read): the full path decides.
    """
    if spool.has_pending(root):
        return False
    from datetime import UTC, datetime

    from agent_continuity import listed_sessions, load_config, resolve_store_url

    config = load_config(root)
    listed = listed_sessions(resolve_store_url(config, root), root, datetime.now(UTC))
    if listed is None:
        return False  # unreadable quickly, or an owner died: the full path marks it
    here = [s for s in listed if s.get("projectDir") == str(root)]
    if any(s.get("status") == "interrupted" and s.get("userId") == config.user for s in here):
        return False
    ours = spool.mapped_session(agent, agent_session)
    return ours is None or any(s.get("id") == ours and s.get("status") == "active" for s in here)


@dataclass
class Started:
    """What the SessionStart hook prints, and the work it leaves to a detached process.

    Attributes:
        output: The hook's JSON output (None: print nothing).
        finish: Arguments of ``agent_continuity.hooks.run --finish-start`` to run
            detached once the output is printed, or None.
        lock_fd: The spool lock that process inherits and releases.
    """

    output: dict[str, Any] | None
    finish: list[str] | None = None
    lock_fd: int | None = None


def _output(prompt: str | None) -> dict[str, Any] | None:
    if not prompt:
        return None
    return {"hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": prompt}}


def session_start(agent: str, data: dict[str, Any], pid: int) -> Started:
    """The SessionStart hook: start or continue the session; the output that injects a recovery.

    The project's spool is written first, so a session whose agent was killed
    is complete before it is judged. Then: the agent's session id already
    mapped (``resume``, ``compact``, ``clear``) continues that session,
    resuming it if it was interrupted; otherwise a new session starts, seeded
    from this project's most recent interrupted session if there is one. The
    agent waits for the prompt only: seeding the new session from the old
    one is left to a detached process (:func:`finish_start`) that holds the
    spool's lock until it is done, so nothing is written before it.

    Returns:
        The output (``additionalContext`` carries the recovery prompt) and what is left to do.
    """
    root = Path(spool.project_root(str(data.get("cwd") or os.getcwd())))
    agent_session = str(data.get("session_id") or data.get("sessionId") or "")
    if agent_session and nothing_to_recover(agent, agent_session, root):
        # The common start: written by the ingester, the agent is not held up.
        entry = {"agent": agent, "event": "SessionStart", "at": time.time(), "pid": pid}
        path = spool.spool_file(str(root), agent, agent_session)
        spool.append(path, {**entry, "input": data}, root=str(root))
        spool.spawn_ingester(str(root))
        return Started(None)
    fd = take_lock(root, LOCK_WAIT)
    if fd is None:
        spool.log_error(
            "the spool stayed locked; SessionStart went on without it", project=str(root)
        )
    handed = False
    try:
        if fd is not None:
            from agent_continuity.hooks.prepared import quick_prompt

            quick = quick_prompt(agent, agent_session, root)
            if quick is not None:  # printed without the model; the rest is left to finish_start
                handed = True
                finish = [str(root), quick[0], agent, agent_session, str(pid), str(fd)]
                return Started(_output(quick[1]), finish=finish, lock_fd=fd)
        with manager(root) as mgr:
            if fd is not None:
                ingest(mgr, root)
            ours = spool.mapped_session(agent, agent_session) if agent_session else None
            if ours is not None:
                return Started(_output(continue_session(mgr, agent, agent_session, ours, pid)[1]))
            mgr.detect_interruptions()
            waiting = mgr.sessions("interrupted", mgr.user_id, this_project=True)
            if not waiting:
                if agent_session:
                    start_for(mgr, agent, agent_session, pid)
                return Started(None)
            old = waiting[-1].id
            prompt = mgr.analyse(old).prompt
        if fd is None or not agent_session:
            with manager(root) as mgr:
                mgr.start_recovered(old, owner_pid=pid)
            return Started(_output(prompt))
        handed = True
        finish = [str(root), old, agent, agent_session, str(pid), str(fd)]
        return Started(_output(prompt), finish=finish, lock_fd=fd)
    finally:
        if fd is not None and not handed:
            os.close(fd)


def finish_start(root: Path, old: str, agent: str, agent_session: str, pid: int, fd: int) -> None:
    """Seed the agent's new session from ``old`` and map it, under the inherited spool lock.

    Then write what the agent's hooks spooled meanwhile, and release the lock.
    """
    try:
        with manager(root) as mgr:
            # After a quick SessionStart, what the dead agent spooled is written
            # and its session marked interrupted here (else both are done already).
            # The new agent's own records wait until its session is mapped below.
            ingest(mgr, root, skip=spool.spool_file(str(root), agent, agent_session))
            mgr.detect_interruptions()
            result = mgr.start_recovered(old, owner_pid=pid)
            if result.new_session_id:
                spool.map_session(agent, agent_session, result.new_session_id)
            ingest(mgr, root)
    finally:
        os.close(fd)
    ingest_in_background(root)  # what came while the lock was released
