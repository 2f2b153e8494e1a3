"""What the running service holds: the store, the users, one view per user, the lease sweeper."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from agent_continuity import (
    Config,
    SessionManager,
    Store,
    UserRegistry,
    UserSessions,
    load_config,
    open_store,
)
from agent_continuity.service import store_url
from agent_continuity.service.responder import Responder, responder_from_env


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Service:
    """The service of one store: opened once, shared by every request.

    Args:
        project_root: The project the sessions belong to (relative store paths start here).
        store: The store URL (default: the configured store, else SQLite under the root).
        config: Settings (default: loaded from the project and the environment).
        responder: Who writes the assistant's replies (default: chosen by the environment).
        clock: The clock (tests).
    """

    def __init__(
        self,
        project_root: Path,
        store: str | None = None,
        *,
        config: Config | None = None,
        responder: Responder | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.project_root = project_root
        self.config = config if config is not None else load_config(project_root, store=store)
        self.store_url = store_url(store or self.config.store, project_root)
        self.users = UserRegistry.for_store(
            self.store_url, project_root, self.config.users_file, store=lambda: self.store
        )
        self.responder = responder if responder is not None else responder_from_env()
        self._clock = clock
        self._store: Store | None = None
        self._views: dict[str, UserSessions] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._sweeping: SessionManager | None = None

    @property
    def store(self) -> Store:
        """The store, opened on first use (and created if it is not there yet)."""
        with self._lock:
            if self._store is None:
                self._store = open_store(
                    self.store_url, durability=self.config.durability, base_dir=self.project_root
                )
            return self._store

    def _manager(self, user: str) -> SessionManager:
        # observer=False: a web page's sessions are conversations, not the
        # files of the folder the server happens to run in.
        return SessionManager(
            store=self.store,
            project_dir=self.project_root,
            user_id=user,
            config=self.config,
            clock=self._clock or _utc_now,
            observer=False,
        )

    def sessions_of(self, user: str) -> UserSessions:
        """The one view of ``user``'s sessions that every request of that user goes through."""
        with self._lock:
            view = self._views.get(user)
            if view is None:
                view = self._views[user] = UserSessions(self._manager(user))
            return view

    # -- the lease sweeper -------------------------------------------------

    def sweep(self) -> int:
        """Mark interrupted every session whose owner is gone (a page's heartbeats stopped).

        A session whose page left normally and was not claimed back within
        ``browser-leave-grace`` is completed instead (not counted).

        Returns:
            How many sessions were marked.
        """
        if self._sweeping is None:
            self._sweeping = self._manager("continuity-service")
        return len(self._sweeping.detect_interruptions())

    def start_sweeper(self) -> None:
        """Sweep in the background, a few times per browser lease."""
        # Also often enough that a page that left is completed soon after its grace.
        quarter = min(self.config.browser_lease_ttl / 4, self.config.browser_leave_grace / 2)
        interval = min(max(quarter, 0.1), 5.0)

        def run() -> None:
            while not self._stop.wait(interval):
                try:
                    self.sweep()
                except Exception as exc:  # a damaged store must not kill the sweeper
                    print(f"continuity serve: lease sweep failed: {exc}", flush=True)

        self._sweeper = threading.Thread(target=run, name="continuity-lease-sweeper", daemon=True)
        self._sweeper.start()

    def close(self) -> None:
        """Stop the sweeper and close the store."""
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=10)
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
