"""The OpenAI Agents SDK's ``Session``, kept in an agent-continuity store.

Example:
    >>> from agents import Agent, Runner
    >>> from agent_continuity.integrations.openai_agents import ContinuitySession
    >>> with ContinuitySession("support-42", store="sqlite:///sessions.db") as session:
    ...     result = Runner.run_sync(agent, "Where is my order?", session=session)

What it adds to the SDK's ``SQLiteSession``: ``add_items`` returns once the
items are durable (a ``kill -9`` right after loses none of them); a damaged
item raises :class:`~agent_continuity.errors.CorruptRecord` instead of being
skipped; a run that died is found (``continuity list`` shows it interrupted)
and the next run continues from it, with :attr:`ContinuitySession.recovery`
saying what happened; messages and tool calls are readable in ``continuity
show`` and the recovery prompt; secrets are redacted before anything is written.

Needs the ``[openai-agents]`` extra only for the SDK itself: this module
imports nothing from it, the ``Session`` protocol being structural.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agent_continuity.integrations.conversations import CLEAR, RETRACT, Conversation

if TYPE_CHECKING:
    from agent_continuity import EventKind, RecoveryResult, SessionManager

_OF = "openai-agents"
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


class ContinuitySession:
    """A conversation of the OpenAI Agents SDK (its ``Session`` protocol).

    Args:
        session_id: The conversation's id, as the SDK's sessions take it.
        store: A store URL (``files:PATH``, ``sqlite:///PATH``...); default: the
            project's configured store. Ignored when ``manager`` is given.
        project_dir: Any folder in the project the store belongs to.
        manager: A :class:`~agent_continuity.SessionManager` to share.
        session_settings: The SDK's ``SessionSettings`` (for example a default ``limit``).

    The first ``add_items`` starts this process's run of the conversation (a
    session of ours whose task is ``openai-agents:SESSION_ID``); :meth:`close`
    (or leaving the ``with`` block) ends it. A process that stops without
    closing leaves the run interrupted, and the next run continues from it.
    """

    def __init__(
        self,
        session_id: str,
        store: str | None = None,
        *,
        project_dir: str = ".",
        manager: SessionManager | None = None,
        session_settings: Any = None,
    ) -> None:
        from agent_continuity import SessionManager

        self.session_id = session_id
        self.session_settings = session_settings
        self._owns_manager = manager is None
        self._manager = manager or SessionManager(store=store, project_dir=project_dir)
        self._conversation = Conversation(
            self._manager, f"{_OF}:{session_id}", of=_OF, describe=_describe
        )
        self._lock = asyncio.Lock()

    @property
    def recovery(self) -> RecoveryResult | None:
        """The recovery of the run that died before this one, once this run has started."""
        return self._conversation.recovery

    async def get_items(self, limit: int | None = None) -> list[Any]:
        """The conversation's items, oldest first; the latest ``limit`` of them if given.

        Raises:
            CorruptRecord: If a stored item is damaged (never a shorter history).
        """
        if limit is None and self.session_settings is not None:
            limit = getattr(self.session_settings, "limit", None)
        items = await asyncio.to_thread(self._conversation.items)
        if limit is not None:
            items = items[-limit:] if limit > 0 else []
        return [item.value for item in items]

    async def add_items(self, items: list[Any]) -> None:
        """Append items, all or none; durable when this returns."""
        if items:
            async with self._lock:
                await asyncio.to_thread(self._conversation.add, items)

    async def pop_item(self) -> Any | None:
        """Take back the newest item and return it (None when there is none)."""
        async with self._lock:
            return await asyncio.to_thread(self._pop)

    def _pop(self) -> Any | None:
        items = self._conversation.items()
        if not items:
            return None
        last = items[-1]
        self._conversation.mark({RETRACT: {"session": last.session_id, "seq": last.seq}})
        return last.value

    async def clear_session(self) -> None:
        """Forget every item; the journal keeps them, reading no longer returns them."""
        async with self._lock:
            await asyncio.to_thread(self._conversation.mark, {CLEAR: True})

    def close(self) -> None:
        """End this process's run of the conversation (and the store, if this opened it)."""
        self._conversation.close()
        if self._owns_manager:
            self._manager.close()

    def __enter__(self) -> ContinuitySession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _text(content: Any) -> str:
    """The text of a message's content: a string, or the text of its parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") or p.get("refusal") or "" for p in content if isinstance(p, dict)]
        return "\n".join(p for p in parts if isinstance(p, str) and p)
    return ""


def _describe(item: Mapping[str, Any]) -> tuple[EventKind, dict[str, Any]]:
    """The event an item is recorded as, with the fields recovery reads."""
    from agent_continuity import EventKind

    kind = item.get("type")
    role = item.get("role")
    if role in _ROLES and kind in (None, "message"):
        return EventKind.MESSAGE, {"role": _ROLES[str(role)], "text": _text(item.get("content"))}
    if kind == "function_call":
        return EventKind.TOOL_CALL, {
            "callId": str(item.get("call_id", "")),
            "name": str(item.get("name", "")),
            "arguments": item.get("arguments"),
        }
    if kind == "function_call_output":
        return EventKind.TOOL_RESULT, {
            "callId": str(item.get("call_id", "")),
            "output": item.get("output"),
            "isError": False,
        }
    # Reasoning, hosted tool calls, handoffs...: kept verbatim, not read by recovery.
    return EventKind.STATE, {}
