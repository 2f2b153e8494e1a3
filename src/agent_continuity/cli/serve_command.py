"""``continuity serve`` and ``continuity users``: the HTTP service, imported only when it runs."""

from __future__ import annotations

import click

from agent_continuity.cli.options import emit, json_option, project_config, store_option


def _store(store: str | None) -> str | None:
    return store or click.get_current_context().find_root().params.get("store")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@store_option
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=int,
    help="Processes; more than one needs a PostgreSQL store.",
)
def serve(host: str, port: int, store: str | None, workers: int) -> None:
    """Serve the web app and the HTTP API of this project's sessions.

    The store defaults to the configured one, else
    sqlite:///projectDocs/tracking/service.db. It prints a login URL for the
    first user (made now if there is none); `continuity users add NAME` adds
    more. Needs the service extra: pip install 'agent-continuity[service]'.
    """
    try:
        from agent_continuity.service.server import serve as run
    except ModuleNotFoundError as exc:
        if exc.name not in ("starlette", "uvicorn"):
            raise
        raise click.ClickException(
            "the service needs the service extra: pip install 'agent-continuity[service]'"
        ) from exc
    run(host, port, _store(store), workers)


@click.group()
def users() -> None:
    """The users of `continuity serve` (each sees only their own sessions)."""


@users.command(name="add")
@click.argument("name")
@store_option
@json_option
def users_add(name: str, store: str | None, as_json: bool) -> None:
    """Add a user (or give one a new token) and print the token, once.

    Only the token's hash is kept, beside the service's store (or in
    CONTINUITY_USERS_FILE). Log in at /login?token=TOKEN, or send
    Authorization: Bearer TOKEN.
    """
    from agent_continuity import UserRegistry
    from agent_continuity.service import store_url

    root, config = project_config(_store(store))
    registry = UserRegistry.for_store(store_url(config.store, root), root, config.users_file)
    added = registry.add(name)
    emit(
        as_json,
        added.to_wire(),
        f"user {added.user}: token {added.token}\n"
        f"  (shown once; log in at http://HOST:PORT/login?token={added.token})",
    )


COMMANDS = [serve, users]
