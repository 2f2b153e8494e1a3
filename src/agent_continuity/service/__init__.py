"""``continuity serve``: the HTTP API and the web app (the ``[service]`` extra).

This module is light (no Starlette): the command line reads the default store
from it before deciding to start anything. The app is in
:mod:`~agent_continuity.service.app`, the server in
:mod:`~agent_continuity.service.server`.
"""

from __future__ import annotations

from pathlib import Path

#: The store ``serve`` and ``users`` use when none is configured: SQLite, one
#: embedded file, nothing to set up.
DEFAULT_STORE = "sqlite:///projectDocs/tracking/service.db"


def store_url(configured: str, project_root: Path) -> str:
    """The store the service uses: the configured one, else :data:`DEFAULT_STORE`.

    Args:
        configured: The store URL of ``--store``, ``CONTINUITY_STORE`` or the config file.
        project_root: Where a relative path starts.
    """
    if configured:
        return configured
    return f"sqlite:///{project_root / DEFAULT_STORE.removeprefix('sqlite:///')}"
