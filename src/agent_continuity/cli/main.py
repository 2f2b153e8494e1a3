"""Entry point of the ``continuity`` command: the group and its error handling.

Only click is imported at start-up; each command imports the library when it
runs, so ``continuity --help`` stays fast. The options the commands share live
in :mod:`agent_continuity.cli.options`.
"""

from __future__ import annotations

import gc
import os
import sys

import click

from agent_continuity.cli import (
    analytics_command,
    hooks_command,
    import_command,
    keys_command,
    mcp_command,
    recovery_commands,
    search_command,
    serve_command,
    session_commands,
)

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


@click.group(help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--store", "store", metavar="URL", default=None, help="Store URL (see above).")
@click.version_option(package_name="agent-continuity", prog_name="continuity")
def cli(store: str | None) -> None:
    """The ``continuity`` command group."""


for _module in (
    session_commands,
    recovery_commands,
    mcp_command,
    analytics_command,
    serve_command,
    import_command,
    hooks_command,
    keys_command,
    search_command,
):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


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
