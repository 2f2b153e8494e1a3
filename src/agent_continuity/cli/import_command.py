"""``continuity import``: a coding agent's transcript files into the session they belong to.

Only renders: the work is :meth:`SessionManager.import_transcripts`.
"""

from __future__ import annotations

import click

from agent_continuity.cli.options import emit, json_option, manager, store_option

AGENTS = ("claude", "codex", "gemini")


@click.command(name="import")
@click.argument("agent", type=click.Choice(AGENTS))
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--session",
    "session_id",
    default=None,
    help="Import into this session (default: the one this agent session maps to, or a new one).",
)
@store_option
@json_option
def import_(
    agent: str, paths: tuple[str, ...], session_id: str | None, store: str | None, as_json: bool
) -> None:
    """Import the transcripts a coding agent wrote (Claude Code, Codex, Gemini CLI).

    Messages, tool calls and tool results are recorded with their times.
    Importing a file again adds nothing; a grown file adds only its new lines.
    Lines of unknown types are skipped and counted; a torn or invalid line is
    reported with its line number.
    """
    report = manager(store).import_transcripts(agent, list(paths), session_id)
    data = report.to_wire()
    lines = [
        f"{data['sessionId'] or 'no session'}: imported {data['imported']}, "
        f"skipped {data['skipped']}, damaged {len(data['damaged'])}"
    ]
    lines += [f"  {d['file']}:{d['line']}: {d['reason']}" for d in data["damaged"]]
    emit(as_json, data, "\n".join(lines))


COMMANDS = [import_]
