"""Commands that recover sessions and brief the next agent."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from agent_continuity.cli import recovery_render
from agent_continuity.cli.options import emit, json_option, manager, store_option, user_option

if TYPE_CHECKING:
    from agent_continuity import RecoveryResult


class _Question:
    """Asks on a terminal whether to resume, after showing the summary; remembers it asked."""

    def __init__(self) -> None:
        self.asked = False

    def __call__(self, result: RecoveryResult) -> bool | None:
        click.echo(recovery_render.recovery(result, with_prompt=False))
        self.asked = True
        return click.confirm("Would you like to resume your previous session?", default=True)


def _confirm(as_json: bool) -> _Question | None:
    """Ask on a terminal; without one (or with --json) leave the decision open."""
    if as_json or not (sys.stdin.isatty() and sys.stdout.isatty()):
        return None
    return _Question()


@click.command()
@click.argument("session_id", metavar="[SESSION]", required=False)
@user_option
@click.option(
    "--mode",
    type=click.Choice(["auto", "quick", "full", "emergency"]),
    default="auto",
    show_default=True,
    help="auto: quick under 24 h, full beyond; emergency: critical facts only.",
)
@click.option(
    "--yes",
    "answer",
    flag_value=True,
    default=None,
    help="Resume without asking if the decision is to ask.",
)
@click.option(
    "--no", "answer", flag_value=False, help="Archive the old session and start a new one."
)
@store_option
@json_option
def recover(
    session_id: str | None,
    user: str | None,
    mode: str,
    answer: bool | None,
    store: str | None,
    as_json: bool,
) -> None:
    """Recover a session: detect, diff, validate, score, decide, and brief the next agent.

    Without SESSION, the user's most recent interrupted session. A confident
    recovery resumes it; a doubtful one asks (on a terminal) or waits for --yes
    or --no; a hopeless one archives it and starts a new session. Each recovery
    is logged in the store's recovery log.
    """
    mgr = manager(store, user, create=False)
    question = _confirm(as_json)
    with recovery_render.progress(
        enabled=not as_json and sys.stdout.isatty(), mode=mode
    ) as progress:
        result = mgr.recover(
            session_id,
            user=user,
            mode=mode,
            answer=answer,
            confirm=question,
            progress=progress,
        )
    if question is not None and question.asked:
        emit(as_json, result.to_wire(), lambda: recovery_render.after_answer(result))
    else:
        emit(as_json, result.to_wire(), lambda: recovery_render.recovery(result, with_prompt=True))


@click.command()
@click.argument("task_id", metavar="TASK")
@click.option(
    "--session",
    "session_id",
    metavar="S",
    help="The session to resume from (default: the newest that worked on TASK).",
)
@click.option("--from-step", metavar="STEP", help="Resume from this step.")
@store_option
@json_option
def resume(
    task_id: str, session_id: str | None, from_step: str | None, store: str | None, as_json: bool
) -> None:
    """Resume TASK from its last checkpoint: context, current step, progress, next actions."""
    result = manager(store, create=False).resume_task(task_id, session_id, from_step)
    emit(as_json, result.to_wire(), lambda: recovery_render.resume(result))


@click.command()
@click.argument("session_id", metavar="[SESSION]", required=False)
@store_option
@json_option
def summary(session_id: str | None, store: str | None, as_json: bool) -> None:
    """Context summary of a session and the project's state now (changes nothing)."""
    from agent_continuity import replies

    result = manager(store, create=False).analyse(session_id)
    emit(
        as_json,
        replies.summary(result),
        lambda: recovery_render.recovery(result, with_prompt=False),
    )


@click.command()
@click.argument("session_id", metavar="[SESSION]", required=False)
@store_option
def prompt(session_id: str | None, store: str | None) -> None:
    """Print the recovery prompt for the next agent (changes nothing).

    The template is the specification's; set prompt-template in the config to
    a file of your own (placeholders such as {CURRENT-TASK} and {NEXT-STEPS}).
    """
    click.echo(manager(store, create=False).analyse(session_id).prompt)


@click.command()
@user_option
@store_option
@json_option
def emergency(user: str | None, store: str | None, as_json: bool) -> None:
    """Emergency recovery: critical project info, urgent tasks and basic context only.

    Reads only the emergency backups, so it works when the registry and the
    recovery points are gone.
    """
    result = manager(store, user, create=False).emergency()
    emit(as_json, result.to_wire(), lambda: recovery_render.emergency(result))


@click.command()
@click.option("--keep", is_flag=True, help="Keep the demo project folder and print its path.")
def demo(keep: bool) -> None:
    """Watch a session die by kill -9 and come back: detection, diff, score, prompt."""
    from agent_continuity import run_demo

    run_demo(
        click.echo, lambda result: recovery_render.recovery(result, with_prompt=True), keep=keep
    )


COMMANDS = [recover, resume, summary, prompt, emergency, demo]
