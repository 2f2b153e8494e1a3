"""Coding agents' hooks: Claude Code, Gemini CLI and Codex record into a session.

``continuity hooks install claude|codex|gemini`` (:mod:`.settings`) writes the
hook into the agent's own settings; the agent then runs
``python -m agent_continuity.hooks.run AGENT`` (:mod:`.run`) on each event.
This package's ``__init__`` imports nothing: it is on every hook's path.
"""
