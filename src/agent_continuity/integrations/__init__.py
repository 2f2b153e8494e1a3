"""Drop-ins for agent frameworks, each an optional extra imported on its own.

``agent_continuity.integrations.langgraph`` needs ``pip install
'agent-continuity[langgraph]'``. Like the other front ends, they use only the
public API (:mod:`agent_continuity` and :mod:`agent_continuity.errors`).
"""
