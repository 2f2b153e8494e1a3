"""``continuity hooks install|uninstall|status``: the coding agents' hooks in their own settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from agent_continuity.cli.options import emit, json_option

_AGENT = click.argument("agent", type=click.Choice(["claude", "codex", "gemini"]))
_SCOPE = click.option(
    "--scope",
    type=click.Choice(["project", "user"]),
    default="project",
    show_default=True,
    help="The project's settings (.claude/, .codex/, .gemini/) or your own (~/...).",
)


def _project() -> Path:
    from agent_continuity import find_project_root

    return find_project_root(Path.cwd())


@click.group()
def hooks() -> None:
    """Record Claude Code, Codex and Gemini CLI sessions through the agents' own hooks."""


@hooks.command()
@_AGENT
@_SCOPE
@json_option
def install(agent: str, scope: str, as_json: bool) -> None:
    """Add the hook to AGENT's settings (other hooks are kept; twice changes nothing)."""
    from agent_continuity.hooks import settings

    done = settings.install(settings.target(agent, scope, _project()))
    what = "installed in" if done["changed"] else "already installed in"
    emit(as_json, done, f"{agent} hooks {what} {done['path']} ({', '.join(done['events'])})")


@hooks.command()
@_AGENT
@_SCOPE
@json_option
def uninstall(agent: str, scope: str, as_json: bool) -> None:
    """Remove our hook from AGENT's settings (only ours)."""
    from agent_continuity.hooks import settings

    done = settings.uninstall(settings.target(agent, scope, _project()))
    what = "removed from" if done["changed"] else "not installed in"
    emit(as_json, done, f"{agent} hooks {what} {done['path']}")


@hooks.command()
@json_option
def status(as_json: bool) -> None:
    """Where the hooks are installed, what each agent's hooks record, and recent hook errors."""
    from agent_continuity.hooks import settings, spool

    project = _project()
    agents: list[dict[str, Any]] = []
    for agent in settings.AGENTS:
        for scope in ("project", "user"):
            where = settings.target(agent, scope, project)
            events = settings.installed_events(where)
            entry: dict[str, Any] = {
                "agent": agent,
                "scope": scope,
                "path": str(where.path),
                "installed": bool(events),
                "events": events,
                "note": settings.NOTES[agent],
            }
            if agent == "codex" and events:
                entry["enabled"] = settings.codex_hooks_enabled(where)
            agents.append(entry)
    errors = spool.read_log()
    data = {
        "agents": agents,
        "pending": spool.has_pending(project),
        "errors": errors[-20:],
        "errorCount": len(errors),
        "log": str(Path(spool.state_dir()) / "hooks.log"),
    }

    def text() -> str:
        lines = []
        for entry in agents:
            state = "installed" if entry["installed"] else "not installed"
            lines.append(f"{entry['agent']:<7} {entry['scope']:<8} {state:<14} {entry['path']}")
        lines += [f"{a}: {n}" for a, n in settings.NOTES.items()]
        if errors:
            lines.append(f"{len(errors)} hook errors (newest last) in {data['log']}:")
            lines += [f"  {e.get('at', '?')} {e.get('error')}" for e in errors[-5:]]
        return "\n".join(lines)

    emit(as_json, data, text)


COMMANDS = [hooks]
