"""A recovery prompt prepared ahead, and finished without the model.

Recovering a session (:meth:`SessionManager.analyse`) imports pydantic and the
models and reads the store: more than a coding agent's SessionStart hook may
spend before the new agent's first request. So the prompt is prepared while
nothing waits (:func:`prepare_recovery_prompt`, at the end of each turn):
its content before it is fitted into its template, and the few facts of the
session that later messages and tool calls change. :class:`PromptDraft`
then adds what was recorded since, exactly as writing and recovering it
would (a message, a tool call, its result, a call that never returned),
and fills the template, importing nothing of the model.

A preparation says what recovery would print only while the session, its
settings and the project's files (:func:`project_fingerprint`) stay as they
were: the caller checks those, and takes the full path when unsure.
"""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING, Any

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
    from agent_continuity.config import Config
    from agent_continuity.runtime import Runtime

#: The longest message text a session view keeps (``replay.message_entry``).
_MESSAGE_CHARS = 2000


def project_fingerprint(root: str | os.PathLike[str]) -> str | None:
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


def prepare_recovery_prompt(rt: Runtime, session_id: str) -> dict[str, Any] | None:
    """What :class:`PromptDraft` needs to print ``session_id``'s recovery prompt later (JSON).

    :meth:`SessionManager.prepare_recovery_prompt` is the public way in.

    Only an active session of a plain (unencrypted) files store is prepared,
    and only when re-filling the content gives exactly the prompt the
    analysis gave; None otherwise.
    """
    from agent_continuity import resolve_store_url
    from agent_continuity.captured import ai_agent_state, describe_agent
    from agent_continuity.lifecycle import events, get
    from agent_continuity.listing import files_store_root
    from agent_continuity.recovery.prompt import prompt_content
    from agent_continuity.recovery.result import describe_build
    from agent_continuity.replay import SessionView
    from agent_continuity.restore import analyse, recovery_settings

    root = rt.project_root
    store = files_store_root(resolve_store_url(rt.config, root), root)
    if store is None or (store / "encryption.json").exists():
        # The hook reads only a files store's registry; and an encrypted
        # store's content is never written anywhere in the clear.
        return None
    record = get(rt, session_id)
    if record.status.value != "active":
        return None  # only an active session's agent can die with records in the spool
    state = project_fingerprint(root)
    result = analyse(rt, record)
    view = result.view
    if state is None or view is None or state != project_fingerprint(root):
        return None
    # Tool calls in flight in the journal already (the agent is in one, or was
    # killed in it): the engine closes them, after taking the last action.
    before = view
    if result.repairs:  # the journal read again (only then) for the state before them
        before = SessionView.replay(events(rt, session_id))
        if before.seq != view.seq - len(result.repairs):
            return None
    calls = sorted(before.pending_calls.values(), key=lambda c: (c.seq, c.call_id))
    settings = recovery_settings(rt)
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
        predicted=result.predicted_context,
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
        "sessionId": session_id,
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


def _never_returned(name: str, call_id: str, seq: int) -> str:
    """The engine's warning for a tool call without its result (``recovery.integrity``)."""
    return (
        f"tool call {name or '?'} (callId {call_id}, seq {seq}) never returned; "
        "recorded as interrupted"
    )


class PromptDraft:
    """A prepared prompt (:func:`prepare_recovery_prompt`) with what was recorded since.

    Add the session's events after the preparation, in order, as they would
    be recorded (:meth:`message`, :meth:`call`, :meth:`result`); then
    :meth:`render`.
    """

    def __init__(self, found: dict[str, Any], config: Config) -> None:
        """Start from the preparation ``found``, redacting as ``config`` says."""
        redact = None
        if config.redact:
            from agent_continuity.redaction import Redactor

            redact = Redactor(config.redact_patterns, config.redact_allow)
        self._found = found
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
        """A message recorded (``add_message``); empty text is refused there, so skipped."""
        if not isinstance(text, str) or not text.strip():
            return
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
        """A tool call recorded (``record_tool_call``)."""
        self.seq += 1
        self.pending[call_id] = (name, self.seq)
        self.last_action = f"called tool {name}"

    def result(self, call_id: str) -> None:
        """A tool result recorded (``record_tool_result``)."""
        self.seq += 1
        call = self.pending.pop(call_id, None)
        if call is not None:
            self.last_action = f"tool {call[0]} returned"

    def render(self) -> str | None:
        """The prompt, as recovering the session now would print it; None if unsure."""
        limit: int = self._found["itemChars"]
        scalars: dict[str, str] = dict(self._found["scalars"])
        lists = {
            name: _ListValue(
                [
                    _Part(list(items), what, protected, drop)
                    for items, what, protected, drop in value["parts"]
                ],
                numbered=value["numbered"],
                empty=value["empty"],
            )
            for name, value in self._found["lists"].items()
        }
        if self.last_action is not None:
            scalars["LAST-ACTION"] = _clip(self.last_action, limit)
        if self.count and not self._found["working"]:
            scalars["AGENT"] = _clip(f"{self._found['agent']}knowledge level briefed", limit)
        if not self._found["summary"]:
            shown = (
                self.messages[-self._found["recentInPrompt"] :]
                if self._found["recentInPrompt"]
                else []
            )
            lines = [
                _clip(f"{role}: {text}", limit) + (" [cut off]" if partial else "")
                for role, text, partial in shown
            ]
            lists["CONVERSATION-SUMMARY"].parts = [_Part(lines, "messages")]
        dangling = sorted(self.pending.items(), key=lambda item: (item[1][1], item[0]))
        if dangling:
            if self._found["issues"]:
                return None  # where the engine puts these among other problems: the full path
            issues = lists["ACTIVE-ISSUES"].parts[1]
            issues.items.extend(
                _clip(_never_returned(name, call_id, seq), limit)
                for call_id, (name, seq) in dangling
            )
        content = PromptContent(scalars=scalars, lists=lists)
        return fill_template(
            self._found["template"] or DEFAULT_TEMPLATE, content, self._found["budget"]
        )
