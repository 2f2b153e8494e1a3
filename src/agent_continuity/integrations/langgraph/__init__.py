"""A LangGraph checkpointer that keeps each thread as a crash-safe session.

``pip install 'agent-continuity[langgraph]'``::

    from agent_continuity.integrations.langgraph import ContinuitySaver

    with ContinuitySaver.from_conn_string("sqlite:///graph.db") as saver:
        graph = builder.compile(checkpointer=saver)
        graph.invoke(inputs, {"configurable": {"thread_id": "1"}})
"""

from __future__ import annotations

from agent_continuity.integrations.langgraph.saver import ContinuitySaver
from agent_continuity.integrations.langgraph.threads import SESSION_TYPE

__all__ = ["SESSION_TYPE", "ContinuitySaver"]
