"""Coding agents' transcripts (Claude Code, Codex, Gemini CLI), read into sessions.

One module per agent (:mod:`.claude`, :mod:`.codex`, :mod:`.gemini`) turns
its lines into entries; :mod:`.reader` reads JSON lines from a cursor and
reports damaged ones; :mod:`.importer` maps the agent's session to ours and
appends what is new. :meth:`SessionManager.import_transcripts
<agent_continuity.session.SessionManager.import_transcripts>` is the way in.
"""

from agent_continuity.transcripts.importer import AGENTS, ImportReport, import_transcripts

__all__ = ["AGENTS", "ImportReport", "import_transcripts"]
