"""agent-continuity: crash-safe session persistence and recovery for AI agents.

The public API::

    from agent_continuity import SessionManager
    mgr = SessionManager(store="sqlite:///s.db", project_dir=".", user_id="alice")
    with mgr.start(type="task-execution", task="TASK-6-004") as s:
        s.add_message("user", "...")
    result = mgr.recover()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "AgentInfo",
    "Config",
    "ContinuityError",
    "Event",
    "LiveSession",
    "RecoveryPoint",
    "SessionManager",
    "SessionRecord",
    "Store",
    "open_store",
]

if TYPE_CHECKING:
    from agent_continuity.config import Config
    from agent_continuity.errors import ContinuityError
    from agent_continuity.live import LiveSession
    from agent_continuity.model import AgentInfo, Event, RecoveryPoint, SessionRecord
    from agent_continuity.session import SessionManager
    from agent_continuity.storage import Store, open_store

_WHERE = {
    "AgentInfo": "agent_continuity.model",
    "Config": "agent_continuity.config",
    "ContinuityError": "agent_continuity.errors",
    "Event": "agent_continuity.model",
    "LiveSession": "agent_continuity.live",
    "RecoveryPoint": "agent_continuity.model",
    "SessionManager": "agent_continuity.session",
    "SessionRecord": "agent_continuity.model",
    "Store": "agent_continuity.storage",
    "open_store": "agent_continuity.storage",
}


def __getattr__(name: str) -> Any:
    # Lazy, so `continuity --help` does not pay for pydantic.
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'agent_continuity' has no attribute {name!r}")
