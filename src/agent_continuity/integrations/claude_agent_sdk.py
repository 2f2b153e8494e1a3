"""The Claude Agent SDK's ``SessionStore``, kept in an agent-continuity store.

Example:
    >>> from claude_agent_sdk import ClaudeAgentOptions, query
    >>> from agent_continuity.integrations.claude_agent_sdk import ContinuitySessionStore
    >>> with ContinuitySessionStore(store="sqlite:///sessions.db") as store:
    ...     options = ClaudeAgentOptions(session_store=store)
    ...     async for message in query(prompt="Fix the failing test", options=options): ...

The SDK mirrors every transcript line Claude Code writes into the store; each
transcript (a ``project_key`` and ``session_id``) is one conversation here, its
subagent transcripts kept beside it. What this adds to a plain mirror: a batch
is durable when ``append`` returns and a damaged one raises instead of loading
short; the conversation is a session of ours, so ``continuity show`` reads its
messages and tool calls and a process that died mid-conversation is found
interrupted; secrets are redacted before anything is written (so a resumed
transcript carries the placeholder, not the key).

``delete`` is not offered: the journal is append-only, and the SDK treats a
store without ``delete`` as one that keeps what it is given.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agent_continuity.integrations.conversations import Conversation

if TYPE_CHECKING:
    from agent_continuity import EventKind, SessionManager

_OF = "claude-agent-sdk"
_SUBPATH = "subpath"
_SUMMARY = "claudeSummary"


class ContinuitySessionStore:
    """A ``SessionStore`` for ``ClaudeAgentOptions(session_store=...)``.

    Args:
        store: A store URL (``files:PATH``, ``sqlite:///PATH``...); default: the
            project's configured store. Ignored when ``manager`` is given.
        project_dir: Any folder in the project the store belongs to.
        manager: A :class:`~agent_continuity.SessionManager` to share.

    Each transcript this process writes to is a run of ours (task
    ``claude-agent-sdk:PROJECT_KEY/SESSION_ID``); :meth:`close` (or leaving the
    ``with`` block) ends them.
    """

    def __init__(
        self,
        store: str | None = None,
        *,
        project_dir: str = ".",
        manager: SessionManager | None = None,
    ) -> None:
        from agent_continuity import SessionManager

        self._owns_manager = manager is None
        self._manager = manager or SessionManager(store=store, project_dir=project_dir)
        self._conversations: dict[tuple[str, str], Conversation] = {}
        # What appends need of a transcript, read once and then kept as this
        # process appends (one process writes a transcript: its run holds the lease):
        # the uuids stored, and the SDK's latest summary of the main transcript.
        self._seen: dict[tuple[str, str, str | None], set[str]] = {}
        self._latest_summary: dict[tuple[str, str], dict[str, Any] | None] = {}
        self._lock = asyncio.Lock()

    def _conversation(self, project_key: str, session_id: str) -> Conversation:
        key = (project_key, session_id)
        if key not in self._conversations:
            self._conversations[key] = Conversation(
                self._manager, _task(project_key, session_id), of=_OF, describe=_describe
            )
        return self._conversations[key]

    async def append(self, key: Mapping[str, Any], entries: list[dict[str, Any]]) -> None:
        """Mirror a batch of transcript lines; durable when this returns.

        A line whose ``uuid`` is already stored is not stored again (the SDK
        retries batches).
        """
        if entries:
            async with self._lock:
                await asyncio.to_thread(self._append, dict(key), entries)

    def _append(self, key: dict[str, Any], entries: list[dict[str, Any]]) -> None:
        from claude_agent_sdk import fold_session_summary

        transcript = (key["project_key"], key["session_id"])
        conversation = self._conversation(*transcript)
        subpath = key.get(_SUBPATH)
        if (*transcript, subpath) not in self._seen:
            items = conversation.items(_in(subpath))
            self._seen[(*transcript, subpath)] = {
                str(i.value["uuid"]) for i in items if i.value.get("uuid") is not None
            }
        seen = self._seen[(*transcript, subpath)]
        fresh, uuids = [], set()
        for entry in entries:
            uuid = entry.get("uuid")
            if uuid is None or (str(uuid) not in seen and str(uuid) not in uuids):
                fresh.append(entry)
                if uuid is not None:
                    uuids.add(str(uuid))
        if not fresh:
            return
        if subpath is not None:
            conversation.add(fresh, {_SUBPATH: subpath})
        else:
            # The SDK's summary, folded here and written in the same group as the lines
            # it covers, verbatim (its `data` is opaque); subagent lines never count.
            if transcript not in self._latest_summary:
                self._latest_summary[transcript] = _summary_of(conversation)
            previous = self._latest_summary[transcript]
            summary = fold_session_summary(previous, key, fresh)  # type: ignore[arg-type]
            conversation.add(fresh, marker={_SUMMARY: dict(summary["data"])})
            self._latest_summary[transcript] = {**summary, "mtime": 0}
        seen |= uuids  # only once the lines are durable

    async def load(self, key: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        """The transcript's lines in the order they were appended; None if never written.

        Raises:
            CorruptRecord: If a stored line is damaged (never a shorter transcript).
        """
        conversation = self._conversation(key["project_key"], key["session_id"])
        items = await asyncio.to_thread(conversation.items, _in(key.get(_SUBPATH)))
        return [item.value for item in items] or None

    async def list_sessions(self, project_key: str) -> list[dict[str, Any]]:
        """The project's transcripts with their last write time (epoch milliseconds)."""
        return await asyncio.to_thread(self._list, project_key)

    def _list(self, project_key: str) -> list[dict[str, Any]]:
        found: dict[str, int] = {}
        prefix = _task(project_key, "")
        for record in self._manager.sessions(user=self._manager.user_id):
            task = record.context.current_task or ""
            if task.startswith(prefix):
                session_id = task[len(prefix) :]
                if "/" in session_id:  # a transcript of a project whose key starts with ours
                    continue
                conversation = self._conversation(project_key, session_id)
                if conversation.items(_in(None)):
                    found[session_id] = max(found.get(session_id, 0), _ms(record))
        return [{"session_id": s, "mtime": m} for s, m in found.items()]

    async def list_session_summaries(self, project_key: str) -> list[dict[str, Any]]:
        """The SDK's summary of each of the project's transcripts, as it folded them."""
        return await asyncio.to_thread(self._summaries, project_key)

    def _summaries(self, project_key: str) -> list[dict[str, Any]]:
        out = []
        for listed in self._list(project_key):
            conversation = self._conversation(project_key, listed["session_id"])
            summary = _summary_of(conversation)
            if summary is not None:
                out.append({**summary, "mtime": listed["mtime"]})
        return out

    async def list_subkeys(self, key: Mapping[str, Any]) -> list[str]:
        """The subagent transcripts stored under a transcript."""
        conversation = self._conversation(key["project_key"], key["session_id"])
        items = await asyncio.to_thread(conversation.items, lambda p: _SUBPATH in p)
        return sorted({str(item.extra[_SUBPATH]) for item in items})

    def close(self) -> None:
        """End the runs this process wrote to (and the store, if this opened it)."""
        for conversation in self._conversations.values():
            conversation.close()
        if self._owns_manager:
            self._manager.close()

    def __enter__(self) -> ContinuitySessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _task(project_key: str, session_id: str) -> str:
    return f"{_OF}:{project_key}/{session_id}"


def _in(subpath: str | None) -> Any:
    """Keeps the items of one transcript: the main one (None) or a subagent's."""
    return lambda payload: payload.get(_SUBPATH) == subpath


def _ms(record: Any) -> int:
    """A run's last write, in epoch milliseconds (the storage clock both lists share)."""
    return int(record.last_activity.timestamp() * 1000) or int(time.time() * 1000)


def _summary_of(conversation: Conversation) -> dict[str, Any] | None:
    """The newest summary folded for a transcript, shaped as the SDK's entry."""
    latest = None
    for _, event in conversation.events():
        if _SUMMARY in event.payload:
            latest = event.payload[_SUMMARY]
    if latest is None:
        return None
    session_id = conversation.key.rsplit("/", 1)[-1]
    return {"session_id": session_id, "mtime": 0, "data": latest}


def _text(content: Any, block: str) -> str:
    if isinstance(content, str):
        return content if block == "text" else ""
    if isinstance(content, list):
        texts = [
            b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == block
        ]
        return "\n".join(t for t in texts if isinstance(t, str) and t)
    return ""


def _describe(entry: Mapping[str, Any]) -> tuple[EventKind, dict[str, Any]]:
    """The event a transcript line is recorded as, with the fields recovery reads."""
    from agent_continuity import EventKind

    message = entry.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    kind = entry.get("type")
    if kind in ("user", "assistant"):
        blocks = content if isinstance(content, list) else []
        typed = [b for b in blocks if isinstance(b, dict)]
        uses = [b for b in typed if b.get("type") == "tool_use"]
        results = [b for b in typed if b.get("type") == "tool_result"]
        text = _text(content, "text")
        if text:
            return EventKind.MESSAGE, {"role": kind, "text": text}
        if uses:
            use = uses[0]
            return EventKind.TOOL_CALL, {
                "callId": str(use.get("id", "")),
                "name": str(use.get("name", "")),
                "arguments": use.get("input"),
            }
        if results:
            result = results[0]
            return EventKind.TOOL_RESULT, {
                "callId": str(result.get("tool_use_id", "")),
                "output": result.get("content"),
                "isError": bool(result.get("is_error", False)),
            }
    # Summaries, titles, system lines...: kept verbatim, not read by recovery.
    return EventKind.STATE, {}
