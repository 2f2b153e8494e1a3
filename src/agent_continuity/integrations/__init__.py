"""Drop-ins for agent frameworks, each over the public API and each an optional extra.

* :mod:`agent_continuity.integrations.openai_agents`: ``ContinuitySession``, the
  OpenAI Agents SDK's ``Session`` (``[openai-agents]``).
* :mod:`agent_continuity.integrations.claude_agent_sdk`: ``ContinuitySessionStore``,
  the Claude Agent SDK's ``SessionStore`` (``[claude-agent-sdk]``).
"""
