"""The README and --help agree with the command line, and the README's examples run as written."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from agent_continuity.cli.main import cli
from agent_continuity.recovery import PLACEHOLDERS

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every command and subcommand under ``group``."""
    for name, command in sorted(group.commands.items()):
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


COMMANDS = list(commands(cli))


def command_at(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


def test_the_walk_finds_every_command() -> None:
    assert len(COMMANDS) >= 16 and ("list",) in COMMANDS and ("demo",) in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_a_description(path: tuple[str, ...]) -> None:
    command = command_at(path)
    assert command.help and len(command.help.split()) >= 5, f"{path}: no description"
    shown = CliRunner().invoke(cli, [*path, "--help"])
    assert shown.exit_code == 0, shown.output
    assert f"Usage: cli {' '.join(path)}" in shown.output
    first_line = command.help.strip().splitlines()[0]
    assert " ".join(first_line.split()[:5]) in " ".join(shown.output.split())


def reference() -> str:
    """The README's command reference table."""
    start = README.index("| command | what it does |")
    return README[start : README.index("\n\n", start)]


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_is_in_the_readme_command_reference(path: tuple[str, ...]) -> None:
    row = f"| `continuity {' '.join(path)}"
    assert any(
        line.startswith(row + " ") or line.startswith(row + "`")
        for line in reference().splitlines()
    ), f"README's command reference has no row for `continuity {' '.join(path)}`"


def test_the_readme_names_no_command_that_does_not_exist() -> None:
    named = set(re.findall(r"(?<![\w-])continuity ([a-z][a-z-]*)", README))
    top = {path[0] for path in COMMANDS}
    assert named <= top, f"README names commands that do not exist: {sorted(named - top)}"


def block(language: str, after: str) -> str:
    """The first ```language block of the README after the heading ``after``."""
    start = README.index(after)
    match = re.search(rf"```{language}\n(.*?)```", README[start:], re.DOTALL)
    assert match is not None, f"no {language} block after {after!r}"
    return match.group(1)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    return root


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CONTINUITY_")}


def test_the_readme_python_example_runs_as_written_and_recovers_its_session(
    project: Path,
) -> None:
    example = block("python", "## From Python")
    check = (
        "\nassert result.session_id == s.id, (result.session_id, s.id)"
        "\nassert result.status == 'success' and result.outcome == 'restored', result.outcome"
        "\nassert 'test-sms-endpoints' in result.prompt"
        "\nassert [e.seq for e in events] == list(range(1, len(events) + 1)) and events"
        "\nprint('EXAMPLE-OK')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", example + check],
        cwd=project,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("EXAMPLE-OK")


def test_the_readme_configuration_example_loads_and_its_template_is_used(project: Path) -> None:
    toml = block("toml", "## Configuration")
    (project / "pyproject.toml").write_text(toml)
    template = REPO / "docs" / "recovery-prompt.md"
    named = re.search(r'prompt-template = "([^"]+)"', toml)
    assert named is not None
    assert (REPO / named.group(1)) == template and template.is_file()
    used = set(re.findall(r"\{([A-Z-]+)\}", template.read_text()))
    assert used and used <= set(PLACEHOLDERS)
    (project / "docs").mkdir()
    shutil.copy(template, project / "docs" / "recovery-prompt.md")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "agent_continuity.cli", *args],
            cwd=project,
            env={**clean_env(), "CONTINUITY_USER": "alice"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    started = run("start", "--task", "TASK-6-004", "--json")
    assert started.returncode == 0, started.stderr
    assert (project / ".continuity" / "sessions.db").is_file()  # the configured store
    assert run("update", "--next", "test-sms-endpoints").returncode == 0
    prompt = run("prompt")
    assert prompt.returncode == 0, prompt.stderr
    assert prompt.stdout.startswith("# Resuming SESSION-")
    assert "Task: TASK-6-004" in prompt.stdout and "test-sms-endpoints" in prompt.stdout
    assert "{" not in prompt.stdout


def test_no_merge_conflict_is_left_in_the_docs() -> None:
    for path in [REPO / "README.md", *REPO.glob("docs/*.md"), *REPO.glob("benchmarks/*.md")]:
        text = path.read_text(encoding="utf-8")
        left = [line for line in text.splitlines() if line.startswith(("<<<<<<< ", ">>>>>>> "))]
        assert not left, f"{path.name} keeps merge-conflict markers: {left}"
