"""Commands that create, write to, and inspect sessions."""

from __future__ import annotations

import sys
from typing import Any

import click

from agent_continuity.cli import render
from agent_continuity.cli.options import (
    emit,
    json_option,
    manager,
    project_config,
    session_option,
    store_option,
    user_filter_option,
    user_option,
)

ROLES = ("user", "assistant", "system", "tool")  # as agent_continuity.replies.ROLES


def _preferences(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    """``--preference KEY=VALUE`` options as a dict (a later KEY wins)."""
    parsed: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE, e.g. language=en")
        parsed[key.strip()] = value
    return parsed


def preference_option(func: Any) -> Any:
    """``--preference KEY=VALUE`` (repeatable)."""
    return click.option(
        "--preference",
        "preferences",
        multiple=True,
        metavar="KEY=VALUE",
        callback=_preferences,
        help="A user preference for the session, e.g. language=en (repeatable).",
    )(func)


@click.command()
@click.option(
    "--type",
    "session_type",
    default=None,
    help="Session type, e.g. task-execution (default: general, or the recovered session's).",
)
@user_option
@click.option("--task", metavar="TASK", help="The task the session works on, e.g. TASK-6-004.")
@click.option("--phase", metavar="P", help="The project phase, e.g. phase-6.")
@click.option(
    "--recover",
    "recover_from",
    metavar="[SESSION]",
    is_flag=False,
    flag_value="",
    default=None,
    help="Seed the new session from an earlier one (default: your most "
    "recent interrupted session).",
)
@click.option(
    "--agent-type",
    metavar="T",
    default=None,
    help="The kind of agent, e.g. coding-assistant (default: development-assistant).",
)
@click.option("--specialization", metavar="S", default=None, help="What the agent specialises in.")
@click.option(
    "--capability",
    "capabilities",
    multiple=True,
    metavar="C",
    help="What the agent can do (repeatable).",
)
@preference_option
@store_option
@json_option
def start(
    session_type: str | None,
    user: str | None,
    task: str | None,
    phase: str | None,
    recover_from: str | None,
    agent_type: str | None,
    specialization: str | None,
    capabilities: tuple[str, ...],
    preferences: dict[str, str],
    store: str | None,
    as_json: bool,
) -> None:
    """Start a session owned by the command line.

    Its lease is renewed by every command that touches it and expires after
    30 idle minutes (cli-lease-ttl); then the next command marks it interrupted.
    """
    from agent_continuity import replies

    data = replies.start(
        manager(store, user),
        session_type=session_type,
        task=task,
        phase=phase,
        recover_from=recover_from,
        agent_type=agent_type,
        specialization=specialization,
        capabilities=capabilities,
        preferences=preferences,
    )
    text = render.started(data["session"])
    if "recovery" in data:
        text = f"{text}, continuing {data['recoveredFrom']}\n\n{data['recovery']['prompt']}"
    emit(as_json, data, text)


@click.command()
@session_option
@click.option("--task", metavar="T", help="Set the current task.")
@click.option("--phase", metavar="P", help="Set the project phase.")
@click.option("--step", metavar="CURRENT", help="Set the step being worked on.")
@click.option("--complete", multiple=True, metavar="STEP", help="Mark a step done (repeatable).")
@click.option(
    "--next", "next_steps", multiple=True, metavar="STEP", help="Add a next step (repeatable)."
)
@click.option("--blocker", multiple=True, metavar="TEXT", help="Add a blocker (repeatable).")
@click.option("--unblock", multiple=True, metavar="TEXT", help="Resolve a blocker (repeatable).")
@click.option("--decision", multiple=True, metavar="TEXT", help="Record a decision (repeatable).")
@click.option("--progress", type=click.IntRange(0, 100), metavar="N", help="Progress, 0-100.")
@click.option("--summary", metavar="TEXT", help="Set the conversation summary.")
@click.option(
    "--file",
    "files",
    multiple=True,
    metavar="PATH",
    help="A file the agent is working on (repeatable).",
)
@preference_option
@click.option(
    "--pending",
    multiple=True,
    metavar="TEXT",
    help="An operation the agent began and has not finished (repeatable).",
)
@click.option(
    "--pending-done",
    multiple=True,
    metavar="TEXT",
    help="An operation declared with --pending that is finished (repeatable).",
)
@store_option
@json_option
def update(
    session_id: str | None,
    task: str | None,
    phase: str | None,
    step: str | None,
    complete: tuple[str, ...],
    next_steps: tuple[str, ...],
    blocker: tuple[str, ...],
    unblock: tuple[str, ...],
    decision: tuple[str, ...],
    progress: int | None,
    summary: str | None,
    files: tuple[str, ...],
    preferences: dict[str, str],
    pending: tuple[str, ...],
    pending_done: tuple[str, ...],
    store: str | None,
    as_json: bool,
) -> None:
    """Record progress: all the changes given are written as one atomic group."""
    from agent_continuity import replies

    changes: dict[str, Any] = {
        "task": task,
        "phase": phase,
        "step": step,
        "complete": complete,
        "next_steps": next_steps,
        "blockers": blocker,
        "unblock": unblock,
        "decisions": decision,
        "progress": progress,
        "summary": summary,
        "files": files,
        "preferences": preferences,
        "pending": pending,
        "pending_done": pending_done,
    }
    data = replies.update(manager(store), session_id, **changes)
    emit(as_json, data, f"{data['sessionId']}: recorded {len(data['seqs'])} change(s)")


@click.command()
@session_option
@click.option("--role", type=click.Choice(ROLES), required=True, help="Who said it.")
@click.argument("text")
@store_option
@json_option
def message(session_id: str | None, role: str, text: str, store: str | None, as_json: bool) -> None:
    """Record a message of the conversation (TEXT, or - to read standard input)."""
    if text == "-":
        text = sys.stdin.read()
    from agent_continuity import replies

    data = replies.message(manager(store), role, text, session_id)
    emit(as_json, data, f"{data['sessionId']}: message #{data['seq']}")


@click.command()
@session_option
@click.option(
    "--trigger",
    default="user-request",
    show_default=True,
    help="Why: task-completion, major-decision, file-modification, error-occurrence, "
    "user-request, or auto (pruned to backupCount).",
)
@store_option
@json_option
def save(session_id: str | None, trigger: str, store: str | None, as_json: bool) -> None:
    """Make a recovery point now."""
    from agent_continuity import replies

    data = replies.save(manager(store), session_id, trigger)
    emit(as_json, data, f"saved {data['recoveryPointId']}")


@click.command()
@session_option
@click.option("--cause", required=True, metavar="TEXT", help="What happened.")
@store_option
@json_option
def interrupt(session_id: str | None, cause: str, store: str | None, as_json: bool) -> None:
    """Mark a session interrupted (it can be recovered later)."""
    record = manager(store).interrupt(session_id, cause)
    emit(
        as_json,
        {"sessionId": record.id, "status": record.status.value},
        f"{record.id}: interrupted ({cause}); `continuity recover {record.id}` continues it",
    )


@click.command()
@session_option
@store_option
@json_option
def end(session_id: str | None, store: str | None, as_json: bool) -> None:
    """Complete a session: a final recovery point, status completed, lease released."""
    record = manager(store).end(session_id)
    emit(
        as_json, {"sessionId": record.id, "status": record.status.value}, f"{record.id}: completed"
    )


@click.command(name="list")
@click.option(
    "--status",
    type=click.Choice(["active", "interrupted", "completed", "archived"]),
    help="Only sessions with this status.",
)
@user_filter_option
@store_option
@json_option
def list_(status: str | None, user: str | None, store: str | None, as_json: bool) -> None:
    """List sessions, oldest first (marks dead ones interrupted first).

    A damaged session (its journal is gone) is listed and marked DAMAGED;
    with --json, "damaged" maps its id to what is wrong.
    """
    if as_json:
        listed = _listed_quickly(status, user, store)
        if listed is not None:
            emit(True, {"sessions": listed}, "")
            return
    from agent_continuity import replies

    data, no_store = replies.sessions(manager(store, user, create=False), status, user)
    if no_store:
        # Nothing to list is not an error, but say why rather than print an empty table.
        emit(as_json, data, f"no sessions: {no_store}")
        return
    emit(as_json, data, lambda: render.session_table(data["sessions"], data.get("damaged")))


def _listed_quickly(
    status: str | None, user: str | None, store: str | None
) -> list[dict[str, Any]] | None:
    """The sessions as `list --json` prints them, read without the model; None if unsure."""
    from datetime import UTC, datetime

    from agent_continuity import listed_sessions, resolve_store_url

    root, config = project_config(store, user)
    from agent_continuity.hooks import spool

    if spool.busy(root):
        return None  # a coding agent's hooks spooled records: the manager writes them first
    return listed_sessions(
        resolve_store_url(config, root), root, datetime.now(UTC), status=status, user=user
    )


@click.command()
@click.argument("session_id", metavar="SESSION")
@store_option
@json_option
def show(session_id: str, store: str | None, as_json: bool) -> None:
    """Show one session: context, state, tasks, recovery points, damage."""
    details = manager(store, create=False).details(session_id)
    emit(as_json, details, lambda: render.session_details(details))


@click.command()
@click.option(
    "--repair",
    is_flag=True,
    help="Rebuild the registry, active list and lost journals; quarantine damaged records.",
)
@store_option
@json_option
def verify(repair: bool, store: str | None, as_json: bool) -> None:
    """Check every record's checksum; exit 1 if anything is damaged."""
    report = manager(store, create=False).verify(repair=repair)
    from agent_continuity.hooks import spool

    hook_errors = spool.read_log()
    if hook_errors:  # the coding agents' hooks never fail a turn; their errors show here
        report["hookErrors"] = {"count": len(hook_errors), "newest": hook_errors[-5:]}
    emit(as_json, report, lambda: render.verify_report(report))
    if report["damage"] and not (repair and report["repairedAll"]):
        click.get_current_context().exit(1)


COMMANDS = [start, update, message, save, interrupt, end, list_, show, verify]


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option(
    "--session",
    "session_id",
    metavar="S",
    help="Continue this active session instead of starting a new one.",
)
@store_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(session_id: str | None, store: str | None, command: tuple[str, ...]) -> int:
    """Run an agent (any COMMAND) inside a session: continuity run -- COMMAND [ARGS...].

    The session is owned by this process: its lease is heartbeated, it is
    auto-saved on the intervals and on file changes in the project, and it
    ends with the command: exit 0 completes it, anything else marks it
    interrupted with the exit status or signal. The command sees
    CONTINUITY_SESSION and may record messages with `continuity message`.
    """
    outcome = manager(store).run(
        command,
        session_id=session_id,
        notify=lambda line: click.echo(line, err=True),
    )
    code = outcome.exit_status
    return 128 - code if code < 0 else code


COMMANDS.append(run)
