"""Configuration comes from pyproject.toml, continuity.toml and the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_continuity.config import find_project_root, load_config, parse_duration
from agent_continuity.errors import ConfigError


def test_defaults_are_the_specification_intervals(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={})
    assert (config.context_interval, config.conversation_interval) == (30, 60)
    assert (config.project_state_interval, config.full_snapshot_interval) == (300, 900)
    assert config.backup_count == 5 and config.cli_lease_ttl == 1800
    assert "major-decision" in config.triggers


def test_pyproject_then_continuity_toml_then_environment(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.continuity]\ncontext-interval = "2s"\nbackup-count = 3\nstore = "memory:"\n'
    )
    (tmp_path / "continuity.toml").write_text('conversation-interval = "1m"\nbackup-count = 4\n')
    config = load_config(tmp_path, environ={"CONTINUITY_BACKUP_COUNT": "7"})
    assert config.context_interval == 2
    assert config.conversation_interval == 60
    assert config.backup_count == 7
    assert config.store == "memory:"
    assert load_config(tmp_path, environ={}, store="sqlite:///x.db").store == "sqlite:///x.db"


@pytest.mark.parametrize(
    ("files", "env", "fragment"),
    [
        ({"continuity.toml": "backup-count = 0"}, {}, "at least 1"),
        ({"continuity.toml": "no-such-thing = 1"}, {}, "unknown setting"),
        ({"continuity.toml": "context-interval = 'soon'"}, {}, "duration"),
        ({"continuity.toml": "this is not toml"}, {}, "not valid TOML"),
        ({}, {"CONTINUITY_TRIGGERS": "task-completion,coffee"}, "unknown triggers"),
        ({}, {"CONTINUITY_DURABILITY": "eventually"}, "'sync' or 'batched'"),
    ],
)
def test_bad_values_are_refused_with_a_message(
    tmp_path: Path, files: dict[str, str], env: dict[str, str], fragment: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_config(tmp_path, environ=env)


def test_durations() -> None:
    assert parse_duration("30s", "x") == 30
    assert parse_duration("5min", "x") == 300
    assert parse_duration(1.5, "x") == 1.5
    with pytest.raises(ConfigError):
        parse_duration(-1, "x")
    with pytest.raises(ConfigError):
        parse_duration(True, "x")


def test_project_root_is_the_nearest_git_folder(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_project_root(deep) == tmp_path.resolve()
