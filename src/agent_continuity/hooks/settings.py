"""Installing the hooks into each coding agent's own settings.

Claude Code reads ``.claude/settings.json`` (project) or
``~/.claude/settings.json`` (user); Gemini CLI ``.gemini/settings.json`` or
``~/.gemini/settings.json``; Codex ``.codex/hooks.json`` or
``~/.codex/hooks.json`` (``$CODEX_HOME/hooks.json`` when that is set), with
hooks switched on by ``[features] hooks = true`` in the ``config.toml`` beside
it (``codex_hooks`` before Codex 0.171). All three use the same shape::

    {"hooks": {"EVENT": [{"matcher": "...", "hooks": [{"type": "command", "command": "..."}]}]}}

Our hook is recognised by its command (it names one of :data:`MARKERS`): install adds
it where it is missing and updates only our own entries; uninstall removes
only those; every other key and hook is kept as it was. Installing twice
changes nothing.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_continuity.errors import ConfigError, InvalidInput

#: What our hook's command names: the hook script's path, or the module in older installs.
MARKERS = ("agent_continuity/hooks/spool.py", "agent_continuity.hooks.run")
AGENTS = ("claude", "codex", "gemini")

#: The events each agent's hook is installed for (matcher "" = every one).
_CLAUDE_EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "Stop",
    "PreCompact",
    "SessionEnd",
)
EVENTS: dict[str, tuple[str, ...]] = {
    "claude": _CLAUDE_EVENTS,
    # As Codex 0.171 sends them (the same names and fields as Claude Code's).
    "codex": _CLAUDE_EVENTS,
    # Not PreCompress: Gemini CLI 0.61 sends it before every model request,
    # whether it then compresses or not, so it marks no compaction.
    "gemini": (
        "SessionStart",
        "BeforeAgent",
        "BeforeTool",
        "AfterTool",
        "AfterAgent",
        "SessionEnd",
    ),
}
_TOOL_EVENTS = {"PreToolUse", "PostToolUse", "BeforeTool", "AfterTool"}
_FOLDERS = {"claude": ".claude", "codex": ".codex", "gemini": ".gemini"}
_FILES = {"claude": "settings.json", "codex": "hooks.json", "gemini": "settings.json"}
#: What each agent's hooks can and cannot record, for ``hooks status``.
NOTES = {
    "claude": (
        "records prompts, tool calls (also one still running when the agent died) and "
        "results, files written, replies, compaction and session end"
    ),
    "codex": (
        "records prompts, tool calls (also one still running when the agent died) and "
        "results, replies, compaction and session end; needs [features] hooks = true "
        "(install sets it); Codex reads a project's .codex/ only once the project is trusted "
        "(`codex exec --trust`), and runs new or changed hooks only once you trust them "
        "(review them in codex's /hooks, or run `codex exec --dangerously-bypass-hook-trust`); "
        "files apply_patch edits are not recorded as files: `continuity import codex` reads "
        "its rollout files"
    ),
    "gemini": (
        "records prompts, tool calls (also one still running when the agent died) and "
        "results, replies and session end, not compression (Gemini CLI's PreCompress fires "
        "before every model request); versions before hooks record nothing: use "
        "`continuity import gemini`"
    ),
}


@dataclass(frozen=True)
class Target:
    """Where one agent's hooks go."""

    agent: str
    scope: str
    path: Path

    @property
    def feature_file(self) -> Path | None:
        """Codex's ``config.toml``, whose feature flag turns hooks on (None for the others)."""
        return self.path.parent / "config.toml" if self.agent == "codex" else None


def target(agent: str, scope: str, project: Path, home: Path | None = None) -> Target:
    """The settings file of ``agent`` for ``scope`` (``project`` or ``user``).

    Raises:
        InvalidInput: If the agent or scope is unknown.
    """
    if agent not in AGENTS:
        raise InvalidInput(f"unknown agent {agent!r}; use one of {', '.join(AGENTS)}")
    if scope not in ("project", "user"):
        raise InvalidInput(f"unknown scope {scope!r}; use project or user")
    base = project if scope == "project" else (home or Path.home())
    if agent == "codex" and scope == "user" and home is None and os.environ.get("CODEX_HOME"):
        # Codex reads its user settings from $CODEX_HOME, not ~/.codex, when it is set.
        return Target(agent, scope, Path(os.environ["CODEX_HOME"]) / _FILES[agent])
    return Target(agent, scope, base / _FOLDERS[agent] / _FILES[agent])


def hook_command(agent: str) -> str:
    """The command the agent runs: this Python, isolated and without ``site``, on the hook script.

    ``-I -S`` keep the recording path to a few standard modules (see
    :mod:`agent_continuity.hooks.spool`); SessionStart loads the rest itself.
    """
    from agent_continuity.hooks import spool

    script = os.path.abspath(spool.__file__)
    return f"{shlex.quote(sys.executable)} -I -S {shlex.quote(script)} {agent}"


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}; check its permissions") from None
    try:
        found = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise ConfigError(
            f"{path} is not valid JSON ({exc}); fix it first, nothing was changed"
        ) from None
    if not isinstance(found, dict):
        raise ConfigError(f"{path} does not hold a JSON object; fix it first")
    return found


def _write(path: Path, settings: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.continuity.tmp")
    temp.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    os.replace(temp, path)


def _ours(hook: Any) -> bool:
    command = str(hook.get("command", "")) if isinstance(hook, dict) else ""
    return any(marker in command.replace(os.sep, "/") for marker in MARKERS)


def _hooks_table(settings: dict[str, Any], path: Path) -> dict[str, Any]:
    table = settings.setdefault("hooks", {})
    if not isinstance(table, dict):
        raise ConfigError(f"'hooks' in {path} is not an object; fix it first")
    return table


def install(where: Target) -> dict[str, Any]:
    """Add our hook for each event; returns what was done (``changed`` false if nothing)."""
    settings = _read(where.path)
    table = _hooks_table(settings, where.path)
    command = hook_command(where.agent)
    changed = False
    for event in EVENTS[where.agent]:
        groups = table.setdefault(event, [])
        if not isinstance(groups, list):
            raise ConfigError(f"hooks.{event} in {where.path} is not a list; fix it first")
        mine = [h for g in groups if isinstance(g, dict) for h in g.get("hooks", []) if _ours(h)]
        if mine and all(h.get("command") == command for h in mine):
            continue
        if mine:  # ours, from another Python: point it at this one
            for old in mine:
                old["command"] = command
        else:
            new: dict[str, Any] = {"type": "command", "command": command}
            if where.agent == "gemini":
                new["name"] = "agent-continuity"
            group: dict[str, Any] = {"hooks": [new]}
            if event in _TOOL_EVENTS:
                group = {"matcher": "*" if where.agent != "codex" else "", **group}
            groups.append(group)
        changed = True
    # Ours on an event no longer hooked (Gemini CLI's PreCompress, by older installs): removed.
    if _drop_ours(table, [e for e in table if e not in EVENTS[where.agent]]):
        changed = True
    if where.agent == "gemini" and settings.get("hooksConfig", {}).get("enabled") is False:
        settings["hooksConfig"]["enabled"] = True
        changed = True
    if changed:
        _write(where.path, settings)
    flag = _enable_codex_hooks(where.feature_file) if where.feature_file else False
    return {
        "agent": where.agent,
        "scope": where.scope,
        "path": str(where.path),
        "changed": changed or flag,
        "events": list(EVENTS[where.agent]),
        "command": command,
    }


def uninstall(where: Target) -> dict[str, Any]:
    """Remove our hook entries (only ours); returns what was done."""
    if not where.path.exists():
        return {
            "agent": where.agent,
            "scope": where.scope,
            "path": str(where.path),
            "changed": False,
        }
    settings = _read(where.path)
    table = settings.get("hooks")
    changed = False
    if isinstance(table, dict):
        changed = _drop_ours(table, list(table))
        if not table:
            del settings["hooks"]
    if changed:
        _write(where.path, settings)
    return {"agent": where.agent, "scope": where.scope, "path": str(where.path), "changed": changed}


def _drop_ours(table: dict[str, Any], events: list[str]) -> bool:
    """Remove our hook from ``events`` of the hooks table, keeping every other; True if any."""
    changed = False
    for event in events:
        groups = table[event]
        if not isinstance(groups, list):
            continue
        kept_groups = []
        for group in groups:
            hooks = group.get("hooks") if isinstance(group, dict) else None
            if isinstance(hooks, list) and any(_ours(h) for h in hooks):
                changed = True
                rest = [h for h in hooks if not _ours(h)]
                if rest:
                    kept_groups.append({**group, "hooks": rest})
            else:
                kept_groups.append(group)
        if kept_groups != groups:
            if kept_groups:
                table[event] = kept_groups
            else:
                del table[event]
    return changed


def installed_events(where: Target) -> list[str]:
    """The events our hook is installed for in ``where`` (empty if none, or unreadable)."""
    try:
        table = _read(where.path).get("hooks")
    except ConfigError:
        return []
    if not isinstance(table, dict):
        return []
    return [
        event
        for event, groups in table.items()
        if isinstance(groups, list)
        and any(_ours(h) for g in groups if isinstance(g, dict) for h in g.get("hooks", []) or [])
    ]


#: Codex's feature flags that turn hooks on: ``hooks`` (0.171), ``codex_hooks`` its older alias.
_CODEX_FLAGS = ("hooks", "codex_hooks")


def _enable_codex_hooks(config: Path) -> bool:
    """Set ``[features] hooks = true`` in Codex's config.toml, keeping the rest as it is."""
    import tomllib

    try:
        text = config.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    try:
        features = tomllib.loads(text).get("features", {})
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config} is not valid TOML ({exc}); fix it first") from None
    if any(features.get(flag) is True for flag in _CODEX_FLAGS):
        return False
    for flag in _CODEX_FLAGS:
        if flag in features:
            raise ConfigError(
                f"{config} sets features.{flag} = {features[flag]!r}; set it to true "
                "for the hooks to run"
            )
    lines = text.splitlines()
    if "[features]" in (line.strip() for line in lines):
        at = next(i for i, line in enumerate(lines) if line.strip() == "[features]")
        lines.insert(at + 1, "hooks = true")
    else:
        lines += ([""] if lines else []) + ["[features]", "hooks = true"]
    config.parent.mkdir(parents=True, exist_ok=True)
    temp = config.with_name(f".{config.name}.continuity.tmp")
    temp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(temp, config)
    return True


def codex_hooks_enabled(where: Target) -> bool:
    """Whether Codex's config.toml beside ``where`` turns hooks on."""
    import tomllib

    if where.feature_file is None:
        return True
    try:
        found = tomllib.loads(where.feature_file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False
    features = found.get("features", {})
    return any(features.get(flag) is True for flag in _CODEX_FLAGS)
