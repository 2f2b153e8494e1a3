"""Entry point of the ``continuity`` command: the group, shared options, error handling.

Only click is imported at start-up; each command imports the library when it
runs, so ``continuity --help`` stays fast.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from pathlib import Path

    from agent_continuity.config import Config
    from agent_continuity.session import SessionManager

F = TypeVar("F", bound=Callable[..., Any])

HELP = """Crash-safe session persistence and recovery for AI agents.

\b
A typical command-line session:
  continuity start --task TASK-6-004 --phase phase-6
  continuity message --role user "Add SMS reminders to bookings"
  continuity update --decision "Twilio is the SMS provider" --next test-sms-endpoints
  continuity save
  ... the terminal dies ...
  continuity recover            # detect, diff, score, decide, and print the prompt

The store is chosen by --store, then CONTINUITY_STORE, then [tool.continuity]
in pyproject.toml or continuity.toml, then files:projectDocs/tracking under the
project root (the nearest folder holding .git).
"""


def store_option(func: F) -> F:
    """``--store URL`` on a command (also accepted before the command name)."""
    return click.option(
        "--store",
        "store",
        metavar="URL",
        default=None,
        help="Store URL: files:PATH, sqlite:///PATH or memory:. Default: CONTINUITY_STORE, "
        "the config file, then files:projectDocs/tracking.",
    )(func)


def json_option(func: F) -> F:
    """``--json``: print one JSON object on stdout and nothing else there."""
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")(func)


def user_option(func: F) -> F:
    """``--user U``."""
    return click.option(
        "--user",
        "user",
        metavar="U",
        default=None,
        help="Whose sessions (default: CONTINUITY_USER, the config file, then your login name).",
    )(func)


def project_config(store: str | None = None, user: str | None = None) -> tuple[Path, Config]:
    """The project root of the current folder, and its configuration with the given options."""
    from agent_continuity.config import find_project_root, load_config

    root_opts = click.get_current_context().find_root().params
    root = find_project_root(_cwd())
    return root, load_config(root, store=store or root_opts.get("store"), user=user)


def manager(
    store: str | None = None, user: str | None = None, *, create: bool = True
) -> SessionManager:
    """The SessionManager for the current folder and the given options.

    ``create=False`` for commands that only read: they never create a store.
    """
    from agent_continuity.session import SessionManager

    ctx = click.get_current_context()
    root, config = project_config(store, user)
    mgr = SessionManager(project_dir=root, config=config, create_store=create)
    # Closed when the command ends, so batched appends are flushed here and not
    # left to a daemon thread that dies with the process.
    ctx.call_on_close(mgr.close)
    return mgr


def _cwd() -> Path:
    from pathlib import Path

    return Path.cwd()


def emit(as_json: bool, data: dict[str, Any], text: str | Callable[[], str]) -> None:
    """Print ``data`` as one JSON object, or ``text`` for people."""
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
    else:
        click.echo(text() if callable(text) else text)


@click.group(help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--store", "store", metavar="URL", default=None, help="Store URL (see above).")
@click.version_option(package_name="agent-continuity", prog_name="continuity")
def cli(store: str | None) -> None:
    """The ``continuity`` command group."""


def _register() -> None:
    from agent_continuity.cli import recovery_commands, session_commands

    for module in (session_commands, recovery_commands):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    """Run the command line; exit 1 with one line on stderr on any error."""
    from agent_continuity.cli.errors import run

    status = run(
        cli, argv if argv is not None else sys.argv[1:], debug="CONTINUITY_DEBUG" in os.environ
    )
    # What is left is nearly all module state (pydantic's schemas, click's
    # commands) that dies with the process; the collections the interpreter runs
    # over it while shutting down cost ~25 ms, a tenth of `continuity list`.
    # Frozen objects are skipped. Nothing waits on a finaliser: the command has
    # closed its store, and stores write with os.write, never through Python buffers.
    gc.freeze()
    sys.exit(status)
