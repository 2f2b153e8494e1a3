"""Observe the project: git state, a file index, build status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["BuildStatus", "ProjectObserver", "ProjectWatcher", "run_build"]

if TYPE_CHECKING:
    from agent_continuity.capture.build import BuildStatus, run_build
    from agent_continuity.capture.observer import ProjectObserver
    from agent_continuity.capture.watch import ProjectWatcher

_WHERE = {
    "BuildStatus": "agent_continuity.capture.build",
    "run_build": "agent_continuity.capture.build",
    "ProjectObserver": "agent_continuity.capture.observer",
    "ProjectWatcher": "agent_continuity.capture.watch",
}


def __getattr__(name: str) -> Any:
    # Lazy: observing the project (every recovery) must not pay for watchdog,
    # which only `ProjectWatcher` needs.
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'agent_continuity.capture' has no attribute {name!r}")
