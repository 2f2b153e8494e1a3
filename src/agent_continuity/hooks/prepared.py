"""Prepared recovery prompts: the SessionStart hook's fast path, without the model.

A SessionStart that finds a dead agent's session must print its recovery
prompt before the new agent's first request, and the full path (ingest the
spool, mark the session interrupted, analyse it) costs the import of pydantic
and the models alone, more than the hook's budget. So the background
ingester, after each pass (the end of each turn), prepares what the prompt
of each session it wrote would be were the session recovered now
(:func:`prepare`): the prompt's content, before it is fitted into its
template, and the few facts of the session that the hooks' records change.

The hook (:func:`quick_prompt`) then adds what the dead agent spooled after
that pass, record by record, exactly as ingesting and recovering it would
(a message, a tool call that never returned, a tool call and its result),
and fills the template. It answers only when it is sure to print what the
full path prints: the same session chosen, the session and its spool where
the preparation left them, the project's files as they were, and only
records it knows; anything else returns None and the full path runs.
Either way the full recovery (the session marked interrupted, the new session
seeded from it, the agent's id mapped) is left to the detached process the
hook starts (:func:`agent_continuity.hooks.ingest.finish_start`).

Nothing here imports the model at module level; :func:`prepare` imports the
library, and runs only in the background ingester.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from agent_continuity.hooks import spool
from agent_continuity.prompt_text import (
    DEFAULT_TEMPLATE,
    PromptContent,
    _clip,
    _ListValue,
    _Part,
    clip,
    fill_template,
)

if TYPE_CHECKING:
    from agent_continuity import SessionManager
    from agent_continuity.runtime import Runtime

#: Bump when the prepared file's content changes meaning.
VERSION = 1
#: The longest message text a session view keeps (``replay.message_entry``).
_MESSAGE_CHARS = 2000
#: Events whose records :func:`quick_prompt` knows how to add.
_KNOWN = {"UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop"}
#: Tools whose records touch a file (the full path marks it active): not added here.
_FILE_TOOLS = {"Write", "Edit", "MultiEdit", "NotebookEdit", "write_file", "replace"}


def prepared_file(root: str | os.PathLike[str], session_id: str) -> str:
    """Where the prepared prompt of ``session_id`` is kept, beside the project's spool."""
    return os.path.join(
        spool.project_spool(root), "prepared", f"{spool.safe_name(session_id)}.json"
    )


def project_state(root: str | os.PathLike[str]) -> str | None:
    """A fingerprint of the project's files as recovery observes them, or None (not git).

    ``git status`` (branch, HEAD, every changed or untracked path) and each
    listed path's size and modification time: equal fingerprints mean that
    the project observed now is the project observed when it was taken.
    """
    try:
        done = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all"],
            cwd=root,
            capture_output=True,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    stamps = [done.stdout.decode("utf-8", "surrogateescape")]
    for entry in stamps[0].split("\0"):
        if not entry or entry.startswith("#"):
            continue
        path = entry.rsplit(" ", 1)[-1] if entry[0] in "12u" else entry[2:]
        try:
            found = os.lstat(os.path.join(root, path))
            stamps.append(f"{path}\0{found.st_size}\0{found.st_mtime_ns}")
        except OSError:
            stamps.append(f"{path}\0gone")
    return "\n".join(stamps)


# -- the background ingester's side (the library) --------------------------


def prepare(mgr: SessionManager, root: Path, spool_path: str, session_id: str) -> None:
    """Prepare the recovery prompt of ``session_id``, just written from ``spool_path``.

    Call it under the spool's lock, right after :func:`~.ingest.ingest`. The
    preparation is kept only when re-filling its content gives exactly the
    prompt the analysis gave; otherwise any older one is removed.
    """
    target = prepared_file(root, session_id)
    try:
        os.unlink(target)  # a stale preparation must never be used
    except FileNotFoundError:
        pass
    found = _prepared(mgr, root, spool_path, session_id)
    if found is None:
        return
    os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
    temp = f"{target}.tmp"
    # Messages are in it (redacted, as in the store): readable by its owner only.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as handle:
        json.dump(found, handle, ensure_ascii=False)
    os.replace(temp, target)


def _prepared(
    mgr: SessionManager, root: Path, spool_path: str, session_id: str
) -> dict[str, Any] | None:
    from agent_continuity import resolve_store_url
    from agent_continuity.captured import ai_agent_state, describe_agent
    from agent_continuity.listing import files_store_root
    from agent_continuity.recovery.prompt import prompt_content
    from agent_continuity.recovery.result import describe_build
    from agent_continuity.replay import SessionView
    from agent_continuity.restore import recovery_settings

    store = files_store_root(resolve_store_url(mgr.config, root), root)
    if store is None or (store / "encryption.json").exists():
        # The hook reads only a files store's registry; and an encrypted
        # store's content is never written anywhere in the clear.
        return None
    record = mgr.get(session_id)
    if record.status.value != "active":
        return None  # only an active session's agent can die with records in the spool
    state = project_state(root)
    result = mgr.analyse(session_id)
    view = result.view
    if state is None or view is None or state != project_state(root):
        return None
    # Tool calls in flight in the journal already (the agent is in one, or was
    # killed in it): the engine closes them, after taking the last action.
    before = view
    if result.repairs:  # the journal read again (only then) for the state before them
        before = SessionView.replay(mgr.events(session_id))
        if before.seq != view.seq - len(result.repairs):
            return None
    calls = sorted(before.pending_calls.values(), key=lambda c: (c.seq, c.call_id))
    # What the hooks' SessionStart runs with (recovery_settings reads only these two).
    runtime = SimpleNamespace(config=mgr.config, project_root=mgr.project_root)
    settings = recovery_settings(cast("Runtime", runtime))
    template = settings.prompt_template or ""
    if "{RECOVERY-MODE}" in template:
        return None  # the mode depends on when it is recovered
    issues = list(result.warnings)
    if result.state_diff.changed_file_count:
        issues = issues[:-1]  # the engine's changed-files warning is not in the prompt
    in_flight = [_never_returned(c.name, c.call_id, c.seq) for c in calls]
    if in_flight and issues != in_flight:
        return None  # where further calls would go among other problems: the full path
    content = prompt_content(
        view,
        settings,
        diff=result.state_diff,
        issues=issues,
        last_action=before.last_action,
        continuation_id=result.continuation_id,
        mode=result.mode,
        build=describe_build(result.code_context),
    )
    if fill_template(template or DEFAULT_TEMPLATE, content, settings.prompt_budget_chars) != (
        result.prompt
    ):
        return None  # this preparation could not say what the analysis says
    if in_flight:  # kept apart, as calls the spool's records may still close
        issues_part = content.lists["ACTIVE-ISSUES"].parts[1]
        del issues_part.items[len(issues_part.items) - len(in_flight) :]
        issues = []
    level = ai_agent_state(view).knowledge_level
    agent = describe_agent(view)
    if not agent.endswith(f"knowledge level {level}"):
        return None
    registry = record.to_wire()
    return {
        "version": VERSION,
        "sessionId": session_id,
        "spool": os.path.basename(spool_path),
        "offset": spool.done_offset(spool_path),
        "record": registry,
        "projectState": state,
        "template": template,
        "budget": settings.prompt_budget_chars,
        "itemChars": settings.prompt_item_chars,
        "recentInPrompt": settings.recent_messages_in_prompt,
        "seq": before.seq,
        "calls": [[c.call_id, c.name, c.seq] for c in calls],
        "messages": [
            [str(m.get("role", "?")), str(m.get("text", "")), bool(m.get("partial"))]
            for m in view.recent_messages
        ],
        "window": view.recent_messages.maxlen,
        "messageCount": view.message_count,
        "summary": bool(record.context.conversation_summary),
        "working": level == "working",
        "agent": agent.removesuffix(f"knowledge level {level}"),
        "issues": issues,
        "scalars": content.scalars,
        "lists": {
            name: {
                "numbered": value.numbered,
                "empty": value.empty,
                "parts": [[p.items, p.what, p.protected, p.drop_from_end] for p in value.parts],
            }
            for name, value in content.lists.items()
        },
    }


# -- the SessionStart hook's side (no model) --------------------------------


def quick_prompt(agent: str, agent_session: str, root: Path) -> tuple[str, str] | None:
    """The session the full path would recover for a new agent session, and its prompt.

    Call it holding the spool's lock. None whenever the answer is not certain
    to be the full path's (see the module's docstring): the caller takes it.
    """
    if not agent_session or spool.mapped_session(agent, agent_session) is not None:
        return None  # a known agent session continues its own: the full path
    from agent_continuity import listed_sessions, load_config, resolve_store_url

    config = load_config(root)
    gone: set[str] = set()
    listed = listed_sessions(resolve_store_url(config, root), root, datetime.now(UTC), gone=gone)
    if listed is None:
        return None
    by_id = {s["id"]: s for s in listed}
    # What ingesting the spool would do first: only records of active sessions
    # are simple to foresee (others start, resume or continue a session).
    waiting_spools: dict[str, str] = {}
    for path in spool.spool_files(root):
        if os.path.getsize(path) <= spool.done_offset(path):
            continue
        stem = os.path.basename(path).removesuffix(".jsonl")
        ours = _mapped(stem)
        if ours is None or by_id.get(ours, {}).get("status") != "active":
            return None
        if ours in waiting_spools:
            return None
        waiting_spools[ours] = path
    # Then the sessions whose owner is gone are marked interrupted, and the
    # newest interrupted one of this user and project is recovered.
    waiting = [
        s
        for s in listed
        if s.get("projectDir") == str(root)
        and s.get("userId") == config.user
        and (s.get("status") == "interrupted" or s["id"] in gone)
    ]
    if not waiting or waiting[-1]["id"] not in gone:
        return None
    old = waiting[-1]
    found = _read_prepared(root, old["id"])
    if found is None or found.get("record") != old:
        return None
    path = os.path.join(spool.project_spool(root), str(found.get("spool")))
    if _mapped(os.path.basename(path).removesuffix(".jsonl")) != old["id"]:
        return None
    if spool.done_offset(path) != found.get("offset"):
        return None
    if waiting_spools.get(old["id"], path) != path:
        return None
    if project_state(root) != found.get("projectState"):
        return None
    prompt = _with_spooled(found, path, config)
    return None if prompt is None else (old["id"], prompt)


def _never_returned(name: str, call_id: str, seq: int) -> str:
    """The engine's warning for a tool call without its result (``recovery.integrity``)."""
    return (
        f"tool call {name or '?'} (callId {call_id}, seq {seq}) never returned; "
        "recorded as interrupted"
    )


def _mapped(stem: str) -> str | None:
    """Our session id mapped to a spool file's agent session (its name is the map's)."""
    try:
        with open(os.path.join(spool.state_dir(), "map", stem), encoding="utf-8") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def _read_prepared(root: Path, session_id: str) -> dict[str, Any] | None:
    try:
        with open(prepared_file(root, session_id), encoding="utf-8") as handle:
            found = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or found.get("version") != VERSION:
        return None
    return found


class _Overlay:
    """The prepared session's prompt facts, with spooled records added as ingesting would."""

    def __init__(self, found: dict[str, Any], redact: Any) -> None:
        self.seq: int = found["seq"]
        self.messages: list[list[Any]] = [list(m) for m in found["messages"]]
        self.window: int = found["window"]
        self.count: int = found["messageCount"]
        self.last_action: str | None = None
        self.pending: dict[str, tuple[str, int]] = {
            str(call_id): (str(name), int(seq)) for call_id, name, seq in found["calls"]
        }
        self._redact = redact

    def message(self, role: str, text: object) -> None:
        if not isinstance(text, str) or not text.strip():
            return  # not recorded (an empty message is refused)
        payload = {"role": role, "text": text}
        if self._redact is not None:
            payload = self._redact.value(payload)
        said = str(payload["text"])
        self.seq += 1
        self.messages = [*self.messages, [role, clip(said, _MESSAGE_CHARS), False]]
        self.messages = self.messages[-self.window :]
        self.count += 1
        self.last_action = f"{role}: {clip(said)}"

    def call(self, name: str, call_id: str) -> None:
        self.seq += 1
        self.pending[call_id] = (name, self.seq)
        self.last_action = f"called tool {name}"

    def result(self, call_id: str) -> None:
        self.seq += 1
        call = self.pending.pop(call_id, None)
        if call is not None:
            self.last_action = f"tool {call[0]} returned"


def _apply(overlay: _Overlay, entry: dict[str, Any]) -> bool:
    """Add one spooled record as :func:`~.ingest._record` writes it; False if unsure how."""
    event = entry.get("event")
    data = entry.get("input")
    if event not in _KNOWN or not isinstance(data, dict):
        return False
    if event == "UserPromptSubmit":
        prompt = data.get("prompt")
        if isinstance(prompt, str) and prompt:
            overlay.message("user", prompt)
        return True
    name = str(data.get("tool_name") or "tool")
    if event in ("PreToolUse", "PostToolUse") and not name.strip():
        return False
    if event == "PreToolUse":
        call_id = data.get("tool_use_id")
        if not isinstance(call_id, str) or not call_id:
            return False  # the full path makes up a random call id
        overlay.call(name, call_id)
        return True
    if event == "PostToolUse":
        if name in _FILE_TOOLS:
            return False  # a file it wrote becomes active: more than this knows
        call = str(data.get("tool_use_id") or "")
        if not call or call not in overlay.pending:
            call = call or "-"  # the id of a call closed at once is never shown
            overlay.call(name, call)
        overlay.result(call)
        return True
    text = data.get("last_assistant_message") or data.get("prompt_response")  # Stop
    transcript, size = entry.get("transcript"), entry.get("transcriptSize")
    if not text and isinstance(transcript, str) and isinstance(size, int):
        text = spool.last_assistant_text(transcript, up_to=size)
    if isinstance(text, str) and text:
        overlay.message("assistant", text)
    return True


def _with_spooled(found: dict[str, Any], path: str, config: Any) -> str | None:
    """The prepared prompt with the spool's records after the preparation added, or None."""
    redact = None
    if config.redact:
        from agent_continuity.redaction import Redactor

        redact = Redactor(config.redact_patterns, config.redact_allow)
    overlay = _Overlay(found, redact)
    for _number, _end, entry in spool.pending(path):
        if entry is None or not _apply(overlay, entry):
            return None
    limit: int = found["itemChars"]
    scalars: dict[str, str] = dict(found["scalars"])
    lists = {
        name: _ListValue(
            [
                _Part(list(items), what, protected, drop)
                for items, what, protected, drop in value["parts"]
            ],
            numbered=value["numbered"],
            empty=value["empty"],
        )
        for name, value in found["lists"].items()
    }
    if overlay.last_action is not None:
        scalars["LAST-ACTION"] = _clip(overlay.last_action, limit)
    if overlay.count and not found["working"]:
        scalars["AGENT"] = _clip(f"{found['agent']}knowledge level briefed", limit)
    if not found["summary"]:
        shown = overlay.messages[-found["recentInPrompt"] :] if found["recentInPrompt"] else []
        lines = [
            _clip(f"{role}: {text}", limit) + (" [cut off]" if partial else "")
            for role, text, partial in shown
        ]
        lists["CONVERSATION-SUMMARY"].parts = [_Part(lines, "messages")]
    dangling = sorted(overlay.pending.items(), key=lambda item: (item[1][1], item[0]))
    if dangling:
        if found["issues"]:
            return None  # where the engine puts these among other problems: the full path
        issues = lists["ACTIVE-ISSUES"].parts[1]
        issues.items.extend(
            _clip(_never_returned(name, call_id, seq), limit) for call_id, (name, seq) in dangling
        )
    content = PromptContent(scalars=scalars, lists=lists)
    return fill_template(found["template"] or DEFAULT_TEMPLATE, content, found["budget"])
