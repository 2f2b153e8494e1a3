"""Drop-ins for agent frameworks, each an optional extra imported on its own.

* :mod:`agent_continuity.integrations.langgraph`: ``ContinuitySaver``, a LangGraph
  checkpointer (``[langgraph]``).
* :mod:`agent_continuity.integrations.openai_agents`: ``ContinuitySession``, the
  OpenAI Agents SDK's ``Session`` (``[openai-agents]``).
* :mod:`agent_continuity.integrations.claude_agent_sdk`: ``ContinuitySessionStore``,
  the Claude Agent SDK's ``SessionStore`` (``[claude-agent-sdk]``).

Like the other front ends, they use only the public API (:mod:`agent_continuity`
and :mod:`agent_continuity.errors`).
"""
