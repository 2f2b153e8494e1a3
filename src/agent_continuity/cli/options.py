"""What every command shares: its options, the manager of the current folder, output.

Kept apart from :mod:`agent_continuity.cli.main` so that a command module can
be imported on its own, before or without the command group. Like the rest of
the command line it uses only the public API (``agent_continuity`` and its
errors), imported when a command runs so that ``continuity --help`` stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from pathlib import Path

    from agent_continuity import Config, SessionManager

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class _Output:
    """What the running command asked for and printed; read when it fails."""

    json_asked: bool = False  # it was given --json: its error is a JSON object on stdout too
    emitted: bool = False  # it printed its JSON object: a later error adds no second one


_OUTPUT = _Output()


def reset_output() -> None:
    """Forget the previous command's output (tests run many commands in one process)."""
    _OUTPUT.json_asked = _OUTPUT.emitted = False


def wants_json_error() -> bool:
    """Whether the failing command asked for ``--json`` and has printed nothing on stdout yet."""
    return _OUTPUT.json_asked and not _OUTPUT.emitted


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


def _remember_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        _OUTPUT.json_asked = True
    return value


def json_option(func: F) -> F:
    """``--json``: print one JSON object on stdout and nothing else there.

    Eager, so that it is known before any other option can fail: the error is
    then a JSON object too.
    """
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        is_eager=True,
        callback=_remember_json,
        help='Print one JSON object (on an error: {"error": {"code", "message"}}).',
    )(func)


def user_option(func: F) -> F:
    """``--user U``: whose sessions a command acts on."""
    return click.option(
        "--user",
        "user",
        metavar="U",
        default=None,
        help="Whose sessions (default: CONTINUITY_USER, the config file, then your login name).",
    )(func)


def user_filter_option(func: F) -> F:
    """``--user U`` on a command that reads across users: only U's sessions, else everyone's."""
    return click.option(
        "--user",
        "user",
        metavar="U",
        default=None,
        help="Only this user's sessions (default: every user's).",
    )(func)


def session_option(func: F) -> F:
    """``--session S``: the session a command writes to (default: the newest active one)."""
    return click.option(
        "--session", "session_id", metavar="S", help="Session id (default: newest active)."
    )(func)


def project_config(store: str | None = None, user: str | None = None) -> tuple[Path, Config]:
    """The project root of the current folder, and its configuration with the given options."""
    from pathlib import Path

    from agent_continuity import find_project_root, load_config

    root_opts = click.get_current_context().find_root().params
    root = find_project_root(Path.cwd())
    return root, load_config(root, store=store or root_opts.get("store"), user=user)


def manager(
    store: str | None = None, user: str | None = None, *, create: bool = True
) -> SessionManager:
    """The SessionManager for the current folder and the given options.

    ``create=False`` for commands that only read: they never create a store.
    """
    from agent_continuity import SessionManager

    ctx = click.get_current_context()
    root, config = project_config(store, user)
    _ingest_hooks(root)
    mgr = SessionManager(project_dir=root, config=config, create_store=create)
    # Closed when the command ends, so batched appends are flushed here and not
    # left to a daemon thread that dies with the process.
    ctx.call_on_close(mgr.close)
    return mgr


def _ingest_hooks(root: Path) -> None:
    """Write what coding agents' hooks spooled for this project first, so commands see it all.

    Into the project's configured store, as the hooks themselves do (not one
    named by --store), creating it if the hooks' first session is still spooled.
    """
    from agent_continuity.hooks import spool

    if spool.busy(root):
        from agent_continuity.hooks.ingest import ingest_project

        ingest_project(root)


def emit(as_json: bool, data: dict[str, Any], text: str | Callable[[], str]) -> None:
    """Print ``data`` as one JSON object, or ``text`` for people."""
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        _OUTPUT.emitted = True
    else:
        click.echo(text() if callable(text) else text)
