"""Observe the project: git state, a file index, build status."""

from agent_continuity.capture.build import BuildStatus, run_build
from agent_continuity.capture.observer import ProjectObserver

__all__ = ["BuildStatus", "ProjectObserver", "run_build"]
