"""agent-continuity: crash-safe session persistence and recovery for AI agents.

The public API::

    from agent_continuity import SessionManager
    mgr = SessionManager(store="sqlite:///s.db", project_dir=".", user_id="alice")
    s = mgr.start(type="task-execution", task="TASK-6-004")
    s.add_message("user", "...")
    s.interrupt("terminal closed")   # or the process dies; leaving `with s:` ends it
    result = mgr.recover()

Everything named in ``__all__`` is public, and it is all a front end (the
command line, the MCP server, and every later one) may use; :mod:`replies`
builds each command's JSON reply, so that every front end answers alike; the errors are in
:mod:`agent_continuity.errors`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "RECOVERY_STAGES",
    "AgentInfo",
    "Analytics",
    "Config",
    "ContinuityError",
    "EmergencyResult",
    "Event",
    "EventKind",
    "ImportReport",
    "KeyReport",
    "LiveSession",
    "PromptDraft",
    "RecoveryPoint",
    "RecoveryResult",
    "ResumeTaskResult",
    "RunOutcome",
    "SearchResults",
    "SessionManager",
    "SessionRecord",
    "Store",
    "UserRegistry",
    "UserSessions",
    "find_project_root",
    "listed_sessions",
    "load_config",
    "manage_keys",
    "open_store",
    "project_fingerprint",
    "replies",
    "resolve_store_url",
    "run_demo",
]

if TYPE_CHECKING:
    from agent_continuity import replies
    from agent_continuity.analytics import Analytics
    from agent_continuity.config import Config, find_project_root, load_config, resolve_store_url
    from agent_continuity.demo import run_demo
    from agent_continuity.errors import ContinuityError
    from agent_continuity.listing import listed_sessions
    from agent_continuity.live import LiveSession
    from agent_continuity.model import AgentInfo, Event, EventKind, RecoveryPoint, SessionRecord
    from agent_continuity.prepared_prompt import PromptDraft, project_fingerprint
    from agent_continuity.recovery import EmergencyResult, RecoveryResult, ResumeTaskResult
    from agent_continuity.restore import STAGES as RECOVERY_STAGES
    from agent_continuity.runner import RunOutcome
    from agent_continuity.search import SearchResults
    from agent_continuity.session import SessionManager
    from agent_continuity.storage import Store, open_store
    from agent_continuity.storage.encryption import KeyReport, manage_keys
    from agent_continuity.transcripts import ImportReport
    from agent_continuity.user_sessions import UserSessions
    from agent_continuity.users import UserRegistry

# Public name -> (module, name there). Imported on first use, so that
# `continuity --help` does not pay for pydantic and `continuity list --json`
# pays only for what it reads.
_WHERE = {
    "AgentInfo": ("agent_continuity.model", "AgentInfo"),
    "Analytics": ("agent_continuity.analytics", "Analytics"),
    "RECOVERY_STAGES": ("agent_continuity.restore", "STAGES"),
    "Config": ("agent_continuity.config", "Config"),
    "ContinuityError": ("agent_continuity.errors", "ContinuityError"),
    "EmergencyResult": ("agent_continuity.recovery", "EmergencyResult"),
    "Event": ("agent_continuity.model", "Event"),
    "EventKind": ("agent_continuity.model", "EventKind"),  # what LiveSession.draft takes
    "ImportReport": ("agent_continuity.transcripts", "ImportReport"),
    "KeyReport": ("agent_continuity.storage.encryption", "KeyReport"),
    "LiveSession": ("agent_continuity.live", "LiveSession"),
    "RecoveryPoint": ("agent_continuity.model", "RecoveryPoint"),
    "RecoveryResult": ("agent_continuity.recovery", "RecoveryResult"),
    "ResumeTaskResult": ("agent_continuity.recovery", "ResumeTaskResult"),
    "RunOutcome": ("agent_continuity.runner", "RunOutcome"),
    "SearchResults": ("agent_continuity.search", "SearchResults"),
    "SessionManager": ("agent_continuity.session", "SessionManager"),
    "SessionRecord": ("agent_continuity.model", "SessionRecord"),
    "Store": ("agent_continuity.storage", "Store"),
    "UserRegistry": ("agent_continuity.users", "UserRegistry"),
    "UserSessions": ("agent_continuity.user_sessions", "UserSessions"),
    "find_project_root": ("agent_continuity.config", "find_project_root"),
    "listed_sessions": ("agent_continuity.listing", "listed_sessions"),
    "load_config": ("agent_continuity.config", "load_config"),
    "manage_keys": ("agent_continuity.storage.encryption", "manage_keys"),
    "open_store": ("agent_continuity.storage", "open_store"),
    "PromptDraft": ("agent_continuity.prepared_prompt", "PromptDraft"),
    "project_fingerprint": ("agent_continuity.prepared_prompt", "project_fingerprint"),
    "replies": ("agent_continuity.replies", ""),  # the module itself: each command's reply
    "resolve_store_url": ("agent_continuity.config", "resolve_store_url"),
    "run_demo": ("agent_continuity.demo", "run_demo"),
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        module, attribute = _WHERE[name]
        found = importlib.import_module(module)
        return getattr(found, attribute) if attribute else found
    raise AttributeError(f"module 'agent_continuity' has no attribute {name!r}")
