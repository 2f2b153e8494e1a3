"""Running the service: uvicorn, the first user's login URL, and the worker rule.

``--workers N`` needs a store that several processes can share at full speed
(PostgreSQL). A files or SQLite store is served by one process: every write
to it takes one file lock, so more processes would queue on that lock rather
than add throughput; a ``memory:`` store lives in one process by definition.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from agent_continuity import find_project_root, load_config
from agent_continuity.errors import InvalidInput
from agent_continuity.service import store_url
from agent_continuity.service.state import Service

#: How a worker process (``--workers N``) finds the project and store it serves.
ROOT_ENV = "CONTINUITY_SERVE_ROOT"
MULTI_PROCESS_SCHEMES = ("postgresql:", "postgres:")


def check_workers(url: str, workers: int) -> None:
    """Refuse several workers on a store one process must serve.

    Raises:
        InvalidInput: If ``workers`` is below 1, or above 1 for a store that is
            not shared across processes (see the module documentation).
    """
    if workers < 1:
        raise InvalidInput(f"--workers must be at least 1, not {workers}")
    if workers > 1 and not url.startswith(MULTI_PROCESS_SCHEMES):
        raise InvalidInput(
            f"--workers {workers} needs a PostgreSQL store (--store postgresql://...); "
            f"{url.split(':', 1)[0]} stores are served by one process (their writes queue on "
            "one file lock, so more workers add no throughput): drop --workers"
        )


def login_banner(service: Service, host: str, port: int) -> str:
    """The lines ``serve`` prints: where it listens and the first user's login URL.

    With no user yet, the first user is made now (named after the configured
    user); each start prints a fresh login link, as Jupyter does.
    """
    registry = service.users
    names = registry.names()
    made = ""
    if not names:
        # Named after the configured user (the login name), made fit to be a user name.
        wanted = re.sub(r"[^A-Za-z0-9._-]+", "-", service.config.user).strip("-._")[:64]
        first = registry.add(wanted or "admin")
        names = [first.user]
        made = f"  made the first user {first.user!r}; its API token (shown once): {first.token}\n"
    token = registry.launch_token(names[0])
    shown = f"[{host}]" if ":" in host else host
    return (
        f"continuity serve: {service.store_url} on http://{shown}:{port}/\n{made}"
        f"  log in as {names[0]}: http://{shown}:{port}/login?token={token}\n"
        f"  more users: continuity users add NAME   (stop: Ctrl-C)"
    )


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    store: str | None = None,
    workers: int = 1,
    *,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve the project of the working directory until stopped.

    Args:
        host: The interface to listen on.
        port: The port.
        store: The store URL (default: configured, else ``sqlite:///projectDocs/tracking/service.db``).
        workers: Processes (more than one only with a PostgreSQL store).
        echo: Where the banner goes.

    Raises:
        InvalidInput: If ``workers`` does not suit the store.
    """
    import uvicorn

    root = find_project_root(Path.cwd())
    config = load_config(root, store=store)
    url = store_url(config.store, root)
    check_workers(url, workers)
    service = Service(root, url, config=config)
    echo(login_banner(service, host, port))
    if workers == 1:
        from agent_continuity.service.app import build_app

        uvicorn.run(build_app(service), host=host, port=port, log_level="warning")
        return
    # Each worker opens the store afresh (its own pool): this process only supervises.
    service.close()
    os.environ[ROOT_ENV] = str(root)
    os.environ["CONTINUITY_STORE"] = url
    uvicorn.run(
        "agent_continuity.service.server:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


def app_from_env() -> object:
    """The app of one worker process (``--workers N``), from :data:`ROOT_ENV` and the store."""
    from agent_continuity.service.app import build_app

    root = Path(os.environ.get(ROOT_ENV) or Path.cwd())
    return build_app(Service(root, os.environ.get("CONTINUITY_STORE")))
