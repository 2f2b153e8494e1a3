"""The MCP server of ``continuity mcp``: the commands as tools, on stdio.

A front end like the command line: it calls the public API only
(:class:`~agent_continuity.SessionManager` and :mod:`agent_continuity.replies`),
and each tool returns the JSON object of the command's ``--json``. It needs the
``mcp`` extra (``pip install 'agent-continuity[mcp]'``); the SDK is imported
only when the server runs, so ``continuity --help`` does not pay for it.
"""

from __future__ import annotations
