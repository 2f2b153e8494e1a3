"""The captured state the specification asks for, derived from what a session knows.

The conversation context (topic, sub-topic, technical focus, recent
discussions), the agent's state (knowledge level, specialization, learning
progress) and the pending operations (tool calls without a result, and
operations the agent declared pending) are read off a session's view: the
same session always gives the same blocks, so a recovery point, a context
snapshot, ``show`` and the recovery prompt agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent_continuity.model import AiAgentState, ContextSnapshot, ConversationContext

if TYPE_CHECKING:
    from agent_continuity.replay import SessionView

RECENT_DISCUSSIONS = 5
_DISCUSSION_CHARS = 200
_FOCUS_FILES = 3

#: Knowledge levels, from nothing recorded to hands-on work.
KNOWLEDGE_LEVELS = ("new", "briefed", "working")


def technical_focus(view: SessionView) -> str:
    """What the agent is working on technically: its current step and newest active files."""
    record = view.record
    step = record.state.current_step or ""
    files = list(reversed(record.context.active_files[-_FOCUS_FILES:]))
    if step and files:
        return f"{step} ({', '.join(files)})"
    return step or ", ".join(files) or view.conversation_context.technical_focus


def conversation_context(view: SessionView) -> ConversationContext:
    """The conversationContext block: task as topic, step as sub-topic, focus, user's last words."""
    stored = view.conversation_context
    record = view.record
    task = view.current_task
    topic = (task.title or task.id) if task is not None else record.context.current_task
    said = [m for m in view.recent_messages if m.get("role") == "user"][-RECENT_DISCUSSIONS:]
    return ConversationContext(
        topic=topic or stored.topic,
        sub_topic=record.state.current_step or stored.sub_topic,
        technical_focus=technical_focus(view),
        recent_discussions=[str(m.get("text", ""))[:_DISCUSSION_CHARS] for m in said]
        or list(stored.recent_discussions),
    )


def ai_agent_state(view: SessionView) -> AiAgentState:
    """The aiAgentState block.

    ``specialization`` is the agent's (``start --specialization``);
    ``learningProgress`` counts what the session has taken in; ``knowledgeLevel``
    is ``new`` (nothing recorded), ``briefed`` (a conversation or a summary,
    no work yet) or ``working`` (tasks, decisions, steps or files).
    """
    record = view.record
    context, state = record.context, record.state
    progress = {
        "messages": view.message_count,
        "decisions": len(context.key_decisions),
        "completedSteps": len(state.completed_steps),
        "activeFiles": len(context.active_files),
        "tasks": len(view.tasks),
    }
    if any(progress[k] for k in ("decisions", "completedSteps", "activeFiles", "tasks")):
        level = "working"
    elif progress["messages"] or context.conversation_summary:
        level = "briefed"
    else:
        level = "new"
    stored = view.ai_agent_state
    return AiAgentState(
        knowledge_level=level,
        specialization=record.agent.specialization or stored.specialization,
        learning_progress={**stored.learning_progress, **{k: str(v) for k, v in progress.items()}},
    )


def pending_operations(view: SessionView) -> list[dict[str, Any]]:
    """Operations begun and not finished, oldest first, as JSON-ready dicts.

    Each has ``kind`` (``tool-call`` or ``declared``) and ``description``; a
    tool call also has its ``callId``, ``name``, ``arguments`` and ``seq``.
    """
    calls = [
        {"kind": "tool-call", "description": f"tool {c.name} ({c.call_id})", **c.to_wire()}
        for c in view.pending_calls.values()
    ]
    declared = [{"kind": "declared", "description": text} for text in view.declared_operations]
    return calls + declared


def describe_pending(view: SessionView) -> list[str]:
    """One line per pending operation, for people and the recovery prompt."""
    return [str(op["description"]) for op in pending_operations(view)]


def describe_preferences(preferences: dict[str, Any]) -> list[str]:
    """``key: value`` per user preference, in key order."""
    return [f"{key}: {preferences[key]}" for key in sorted(preferences)]


def describe_agent(view: SessionView) -> str:
    """The agent in one line: type, specialization, knowledge level."""
    agent = view.record.agent
    state = ai_agent_state(view)
    parts = [agent.type]
    if state.specialization:
        parts.append(f"specialised in {state.specialization}")
    if agent.capabilities:
        parts.append("can do " + ", ".join(agent.capabilities))
    parts.append(f"knowledge level {state.knowledge_level}")
    return "; ".join(parts)


def context_snapshot(
    view: SessionView, now: datetime, updated: dict[str, datetime]
) -> ContextSnapshot:
    """The latest context snapshot of the session ``view`` holds, taken at ``now``.

    Args:
        view: The session.
        now: The snapshot's time.
        updated: When each part (context, conversation, projectState) was refreshed.
    """
    code = view.code_context
    if code is not None and code.files:
        # The per-file stamps are for change detection, which recovery points
        # serve (their states are stored once, by hash). The snapshot is the
        # latest state for people to read: the whole tree's stamps would make
        # it as big as the tree is wide (700 KB for 5,000 untracked files).
        code = code.model_copy(update={"files": {}})
    return ContextSnapshot(
        session_id=view.record.id,
        timestamp=now,
        seq=view.seq,
        project_state=view.project_state_now(),
        conversation_context=conversation_context(view),
        code_context=code,
        ai_agent_state=ai_agent_state(view),
        updated=updated,
    )
