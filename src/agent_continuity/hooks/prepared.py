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

What is prepared and how records are added is the library's
(:mod:`agent_continuity.prepared_prompt`, through the public API); this
module only keeps it beside the spool and decides when it may be used.
Nothing here imports the model; :func:`prepare` runs only in the background
ingester.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_continuity.hooks import spool

if TYPE_CHECKING:
    from agent_continuity import Config, PromptDraft, SessionManager

#: Bump when the prepared file's content changes meaning.
VERSION = 1
#: Events whose records :func:`quick_prompt` knows how to add.
_KNOWN = {"UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop"}
#: Tools whose records touch a file (the full path marks it active): not added here.
_FILE_TOOLS = {"Write", "Edit", "MultiEdit", "NotebookEdit", "write_file", "replace"}


def prepared_file(root: str | os.PathLike[str], session_id: str) -> str:
    """Where the prepared prompt of ``session_id`` is kept, beside the project's spool."""
    return os.path.join(
        spool.project_spool(root), "prepared", f"{spool.safe_name(session_id)}.json"
    )


def prepare(mgr: SessionManager, root: Path, spool_path: str, session_id: str) -> None:
    """Prepare the recovery prompt of ``session_id``, just written from ``spool_path``.

    Call it under the spool's lock, right after :func:`~.ingest.ingest`: the
    preparation names the spool offset it includes. Any older one is removed
    first, so a stale preparation is never used.
    """
    target = prepared_file(root, session_id)
    try:
        os.unlink(target)
    except FileNotFoundError:
        pass
    found = mgr.prepare_recovery_prompt(session_id)
    if found is None:
        return
    found.update(
        version=VERSION,
        spool=os.path.basename(spool_path),
        offset=spool.done_offset(spool_path),
    )
    os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
    temp = f"{target}.tmp"
    # Messages are in it (redacted, as in the store): readable by its owner only.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as handle:
        json.dump(found, handle, ensure_ascii=False)
    os.replace(temp, target)


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
        if spool.pending_bytes(path) <= 0:
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
    from agent_continuity import project_fingerprint

    if project_fingerprint(root) != found.get("projectState"):
        return None
    prompt = _with_spooled(found, path, config)
    return None if prompt is None else (old["id"], prompt)


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


def _apply(overlay: PromptDraft, entry: dict[str, Any]) -> bool:
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


def _with_spooled(found: dict[str, Any], path: str, config: Config) -> str | None:
    """The prepared prompt with the spool's records after the preparation added, or None."""
    from agent_continuity import PromptDraft

    draft = PromptDraft(found, config)
    for _number, _end, entry in spool.pending(path):
        if entry is None or not _apply(draft, entry):
            return None
    return draft.render()
