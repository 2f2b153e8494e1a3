"""Configuration: defaults, then ``[tool.continuity]`` in pyproject.toml or
``continuity.toml``, then ``CONTINUITY_*`` environment variables, then the
arguments a caller passes.

Durations accept seconds (``30``) or a unit (``30s``, ``5m``, ``5min``, ``2h``).
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from agent_continuity.errors import ConfigError

DEFAULT_STORE_DIR = "projectDocs/tracking"
TRIGGERS = (
    "task-completion",
    "major-decision",
    "file-modification",
    "error-occurrence",
    "user-request",
)

_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object, name: str) -> float:
    """Seconds in ``value`` (a number, or a string such as ``"30s"`` or ``"5min"``).

    Raises:
        ConfigError: If the value is not a non-negative duration.
    """
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a duration such as 30s or 5m, not {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", value.lower())
        if match is None or match[2] not in _UNITS:
            raise ConfigError(f"{name} must be a duration such as 30s or 5m, not {value!r}")
        seconds = float(match[1]) * _UNITS[match[2]]
    else:
        raise ConfigError(f"{name} must be a duration such as 30s or 5m, not {value!r}")
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise ConfigError(f"{name} must be a positive duration, not {value!r}")
    return seconds


def find_project_root(start: Path) -> Path:
    """The nearest ancestor of ``start`` holding ``.git``, else ``start`` itself."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


def default_user() -> str:
    """The login name, or ``"user"`` when there is none (containers, CI)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "user"


@dataclass(frozen=True)
class Config:
    """Every setting, with the specification's defaults.

    Attributes:
        store: Store URL; empty means ``files:projectDocs/tracking`` under the project root.
        durability: ``"sync"`` or ``"batched"``.
        user: Whose sessions commands act on.
        context_interval: Seconds between context snapshots.
        conversation_interval: Seconds between conversation snapshots.
        project_state_interval: Seconds between project-state snapshots.
        full_snapshot_interval: Seconds between full recovery points.
        triggers: Events that make an immediate recovery point.
        backup_count: Automatic recovery points kept per session.
        cli_lease_ttl: Idle time after which a command-line session counts as abandoned.
        process_lease_ttl: How long a process owner's lease lasts without a heartbeat.
        heartbeat_interval: How often a process owner renews its lease.
        browser_lease_ttl: How long a web page's session lease lasts without a
            heartbeat (``continuity serve``); then the session is interrupted,
            cause ``heartbeat-lost``.
        browser_leave_grace: How long a web page's session waits, after its page
            went away normally (closed, reloaded, navigated off), for a page to
            claim it back (a reload) before it ends as ``completed``.
        users_file: Where ``continuity users`` keeps the service's users (hashed
            tokens); empty: beside the store, or in the database of a
            ``postgresql://`` store (see :mod:`~agent_continuity.users`).
        build_command: Shell command whose exit status is the build status (optional);
            run in the background on project-state saves.
        build_timeout: Seconds before the build command counts as timed out.
        watch_debounce: Quiet seconds that close a burst of file changes.
        prompt_template: Path of a custom recovery prompt template (optional).
        recovery: Overrides of the recovery engine's settings (weights, thresholds...).
        redact: Replace detected secrets with placeholders before anything is
            written (see :mod:`~agent_continuity.redaction`).
        redact_patterns: Further secrets to redact: placeholder type to regular
            expression (its first group, if any, is the secret).
        redact_allow: Regular expressions of detected secrets to keep as they are.
    """

    store: str = ""
    durability: str = "sync"
    user: str = field(default_factory=default_user)
    context_interval: float = 30.0
    conversation_interval: float = 60.0
    project_state_interval: float = 300.0
    full_snapshot_interval: float = 900.0
    triggers: tuple[str, ...] = TRIGGERS
    backup_count: int = 5
    cli_lease_ttl: float = 1800.0
    process_lease_ttl: float = 30.0
    heartbeat_interval: float = 5.0
    browser_lease_ttl: float = 30.0
    browser_leave_grace: float = 5.0
    users_file: str = ""
    build_command: str = ""
    build_timeout: float = 60.0
    watch_debounce: float = 1.0
    prompt_template: str = ""
    recovery: Mapping[str, Any] = field(default_factory=dict)
    redact: bool = True
    redact_patterns: Mapping[str, str] = field(default_factory=dict)
    redact_allow: tuple[str, ...] = ()

    def with_values(self, values: Mapping[str, Any], source: str) -> Config:
        """A copy with ``values`` (snake_case or kebab-case keys) applied and checked."""
        known = {f.name: f for f in fields(self)}
        changes: dict[str, Any] = {}
        for raw_key, raw in values.items():
            key = raw_key.replace("-", "_")
            if key not in known:
                raise ConfigError(
                    f"{source}: unknown setting {raw_key!r}; known settings: "
                    + ", ".join(sorted(known))
                )
            changes[key] = _coerce(key, raw, source)
        return replace(self, **changes)


_DURATIONS = {
    "context_interval",
    "conversation_interval",
    "project_state_interval",
    "full_snapshot_interval",
    "cli_lease_ttl",
    "process_lease_ttl",
    "heartbeat_interval",
    "browser_lease_ttl",
    "browser_leave_grace",
    "build_timeout",
    "watch_debounce",
}


def _coerce(key: str, raw: Any, source: str) -> Any:
    name = f"{source}: {key}"
    if key in _DURATIONS:
        seconds = parse_duration(raw, name)
        if key != "build_timeout" and seconds == 0:
            raise ConfigError(f"{name} must be more than zero")
        return seconds
    if key == "backup_count":
        try:
            count = int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
        if count < 1:
            raise ConfigError(f"{name} must be at least 1, not {count}")
        return count
    if key == "triggers":
        items = [t.strip() for t in raw.split(",")] if isinstance(raw, str) else raw
        if not isinstance(items, list | tuple) or not all(isinstance(t, str) for t in items):
            raise ConfigError(f"{name} must be a list of trigger names")
        unknown = [t for t in items if t and t not in TRIGGERS]
        if unknown:
            raise ConfigError(f"{name}: unknown triggers {unknown}; known: {', '.join(TRIGGERS)}")
        return tuple(t for t in items if t)
    if key == "durability":
        if raw not in ("sync", "batched"):
            raise ConfigError(f"{name} must be 'sync' or 'batched', not {raw!r}")
        return raw
    if key.startswith("redact"):
        return _redaction_setting(key, raw, name)
    if key == "recovery":
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{name} must be a table of recovery settings")
        # Checked now, so that every command stops on a bad value, not only
        # `recover`. Imported here: it brings pydantic, which most commands and
        # most projects (without this table) never load.
        from agent_continuity.recovery.settings import RecoverySettings

        RecoverySettings.from_mapping(raw, source=name)
        return dict(raw)
    if not isinstance(raw, str):
        raise ConfigError(f"{name} must be text, not {raw!r}")
    return raw


def _redaction_setting(key: str, raw: Any, name: str) -> Any:
    # Checked when the configuration is read, so a bad pattern stops every command.
    from agent_continuity.redaction import compile_pattern

    if key == "redact":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "yes", "on", "1"):
            return True
        if text in ("false", "no", "off", "0"):
            return False
        raise ConfigError(f"{name} must be true or false, not {raw!r}")
    if key == "redact_patterns":
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{name} must be a table of type name = regular expression")
        for kind, pattern in raw.items():
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", str(kind)):
                raise ConfigError(
                    f"{name}: {kind!r} must be a lower-case type name such as internal-token"
                )
            compile_pattern(pattern, f"{name}.{kind}")
        return dict(raw)
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple):
        raise ConfigError(f"{name} must be a list of regular expressions")
    for pattern in items:
        compile_pattern(pattern, name)
    return tuple(items)


_ENV = {
    "CONTINUITY_STORE": "store",
    "CONTINUITY_DURABILITY": "durability",
    "CONTINUITY_USER": "user",
    "CONTINUITY_CONTEXT_INTERVAL": "context_interval",
    "CONTINUITY_CONVERSATION_INTERVAL": "conversation_interval",
    "CONTINUITY_PROJECT_STATE_INTERVAL": "project_state_interval",
    "CONTINUITY_FULL_SNAPSHOT_INTERVAL": "full_snapshot_interval",
    "CONTINUITY_TRIGGERS": "triggers",
    "CONTINUITY_BACKUP_COUNT": "backup_count",
    "CONTINUITY_CLI_LEASE_TTL": "cli_lease_ttl",
    "CONTINUITY_PROCESS_LEASE_TTL": "process_lease_ttl",
    "CONTINUITY_HEARTBEAT_INTERVAL": "heartbeat_interval",
    "CONTINUITY_BROWSER_LEASE_TTL": "browser_lease_ttl",
    "CONTINUITY_BROWSER_LEAVE_GRACE": "browser_leave_grace",
    "CONTINUITY_USERS_FILE": "users_file",
    "CONTINUITY_BUILD_COMMAND": "build_command",
    "CONTINUITY_BUILD_TIMEOUT": "build_timeout",
    "CONTINUITY_WATCH_DEBOUNCE": "watch_debounce",
    "CONTINUITY_PROMPT_TEMPLATE": "prompt_template",
    "CONTINUITY_REDACT": "redact",
}


def _read_toml(path: Path) -> dict[str, Any]:
    # Imported here: most projects have no configuration file, and every command
    # starts by loading the configuration.
    import tomllib

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix or remove the file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None


def load_config(
    project_root: Path, environ: Mapping[str, str] | None = None, **overrides: Any
) -> Config:
    """Build the configuration for a project.

    Args:
        project_root: Where ``pyproject.toml`` / ``continuity.toml`` are looked for.
        environ: Environment variables (default: ``os.environ``).
        **overrides: Values given by the caller (command-line options); ``None`` is ignored.

    Raises:
        ConfigError: If a file or variable holds a value that cannot be used.
    """
    config = Config()
    pyproject = project_root / "pyproject.toml"
    if pyproject.is_file():
        table = _read_toml(pyproject).get("tool", {}).get("continuity")
        if isinstance(table, dict):
            config = config.with_values(table, str(pyproject))
    dedicated = project_root / "continuity.toml"
    if dedicated.is_file():
        data = _read_toml(dedicated)
        config = config.with_values(data.get("continuity", data), str(dedicated))
    env = os.environ if environ is None else environ
    for var, key in _ENV.items():
        if env.get(var):
            # Named by the variable, so the error says which one to fix.
            config = config.with_values({key: env[var]}, f"environment variable {var}")
    given = {k: v for k, v in overrides.items() if v is not None}
    if given:
        config = config.with_values(given, "arguments")
    return config


def resolve_store_url(config: Config, project_root: Path) -> str:
    """The store URL to open: the configured one, else the files store under the root.

    Relative paths in ``files:`` and ``sqlite:///`` URLs are taken from the project root.
    """
    if config.store:
        return config.store
    return f"files:{project_root / DEFAULT_STORE_DIR}"
