"""Observe the project: git state, a file index, build status."""
