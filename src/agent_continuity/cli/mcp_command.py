"""``continuity mcp``: the MCP server, started here and imported only when it runs."""

from __future__ import annotations

import click

from agent_continuity.cli.options import store_option


@click.command()
@store_option
def mcp(store: str | None) -> None:
    """Serve the commands as MCP tools on stdio (and the recovery prompt as an MCP prompt).

    It acts on the project of its working directory. Add it to your coding agent,
    e.g. `claude mcp add continuity -- continuity mcp`; it needs the mcp extra:
    pip install 'agent-continuity[mcp]'.
    """
    try:
        from agent_continuity.mcp.server import serve
    except ModuleNotFoundError as exc:
        if exc.name is None or not (exc.name == "mcp" or exc.name.startswith("mcp.")):
            raise
        raise click.ClickException(
            "the MCP server needs the mcp extra: pip install 'agent-continuity[mcp]'"
        ) from exc
    root_store = click.get_current_context().find_root().params.get("store")
    serve(store or root_store)


COMMANDS = [mcp]
