"""What a session's registry entry and emergency backup hold, compared before rewriting them.

A live handle rewrites either only when these facts changed (or they are
older than the context interval), so agents that save after every turn do not
pay for restamping the same facts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agent_continuity.model import EmergencyBackup, SessionRecord
from agent_continuity.replay import SessionView


def registry_facts(record: SessionRecord) -> dict[str, Any]:
    """The registry entry of ``record`` without its stamps (lastSeq, lastActivity, lastSave)."""
    return record.model_dump(
        exclude={"last_seq": True, "last_activity": True, "persistence": {"last_save"}}
    )


def emergency_backup(view: SessionView, now: datetime) -> EmergencyBackup:
    """The critical facts of ``view``, as its emergency backup keeps them."""
    return EmergencyBackup(**critical_facts(view), updated=now, seq=view.seq)


def critical_facts(view: SessionView) -> dict[str, Any]:
    """What the emergency backup keeps of ``view``, but its time and ``seq``.

    Compared at every recovery point, so read off the record rather than built
    into a backup and dumped.
    """
    record = view.record
    context, state = record.context, record.state
    return {
        "session_id": record.id,
        "status": record.status,
        "user_id": record.user_id,
        "project_dir": record.project_dir,
        "current_task": context.current_task,
        "current_phase": context.current_phase,
        "current_step": state.current_step,
        "progress": state.progress,
        "next_steps": list(state.next_steps),
        "blockers": list(state.blockers),
        "last_decision": context.key_decisions[-1] if context.key_decisions else None,
        "conversation_summary": context.conversation_summary,
    }
