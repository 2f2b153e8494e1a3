"""Observe the project: git state, a file index, build status."""

from agent_continuity.capture.build import BuildStatus, run_build
from agent_continuity.capture.observer import ProjectObserver
from agent_continuity.capture.watch import ProjectWatcher

__all__ = ["BuildStatus", "ProjectObserver", "ProjectWatcher", "run_build"]
