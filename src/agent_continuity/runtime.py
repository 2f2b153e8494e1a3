"""The runtime the session modules share: store, settings, clock, observer and owners.

:class:`~agent_continuity.session.SessionManager` builds one and hands it to
the modules that do the work (:mod:`~agent_continuity.lifecycle`,
:mod:`~agent_continuity.live`, :mod:`~agent_continuity.restore`,
:mod:`~agent_continuity.inspection`, :mod:`~agent_continuity.runner`), so
that none of them calls back into the manager: the manager is a facade on
top of them, and they form a tree below it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_continuity.config import Config, find_project_root, load_config, resolve_store_url
from agent_continuity.errors import StoreNotFound
from agent_continuity.liveness import BROWSER_HOLDER, CLI_HOLDER, Owner
from agent_continuity.model import EventDraft, EventKind, Lease, SessionRecord, format_time
from agent_continuity.storage import Store, open_store

if TYPE_CHECKING:
    from agent_continuity.capture.observer import ProjectObserver
    from agent_continuity.redaction import Redactor


class Runtime:
    """What every operation on a project's sessions needs, and nothing more.

    Args:
        store: The open store, or the error to raise on first use when there
            is none (a manager made with ``create_store=False``).
        config: The settings.
        project_root: The project's root folder.
        user_id: Whose sessions these are.
        clock: Returns the current UTC time.
        observer: The project observer; None to make the default one on first
            use, False to observe nothing.
    """

    def __init__(
        self,
        store: Store | StoreNotFound,
        *,
        config: Config,
        project_root: Path,
        user_id: str,
        clock: Callable[[], datetime],
        observer: ProjectObserver | bool | None = None,
    ) -> None:
        self._store = store
        self.config = config
        self.project_root = project_root
        self.user_id = user_id
        self._clock = clock
        self._observer_choice = observer
        self._observer: ProjectObserver | None = None
        self._observer_made = False
        self._redactor: Redactor | None = None

    @classmethod
    def open(
        cls,
        store: str | Store | None,
        project_dir: str | os.PathLike[str],
        user_id: str | None,
        *,
        config: Config | None,
        clock: Callable[[], datetime],
        observer: ProjectObserver | bool | None,
        create_store: bool,
    ) -> Runtime:
        """The runtime of the project holding ``project_dir``, as SessionManager documents it.

        Args:
            store: A store URL, an open store, or None for the configured one.
            project_dir: Any folder in the project.
            user_id: Whose sessions; default: the configured user.
            config: Settings; default: loaded from the project.
            clock: Returns the current UTC time.
            observer: The project observer, None for the default, False for none.
            create_store: Create the store if it does not exist yet.

        Returns:
            The runtime; a missing store it was not to create raises on first use.
        """
        root = find_project_root(Path(project_dir))
        config = config if config is not None else load_config(root)
        opened: Store | StoreNotFound
        if isinstance(store, str) or store is None:
            url = store or resolve_store_url(config, root)
            try:
                opened = open_store(
                    url, durability=config.durability, base_dir=root, create=create_store
                )
            except StoreNotFound as exc:
                # Raised on first use, so that what needs no store (checking a
                # session id's format) still answers first.
                opened = exc
        else:
            opened = store
        return cls(
            opened,
            config=config,
            project_root=root,
            user_id=user_id or config.user,
            clock=clock,
            observer=observer,
        )

    @property
    def store(self) -> Store:
        """The store.

        Raises:
            StoreNotFound: If there is no store (and none was to be created).
        """
        if isinstance(self._store, StoreNotFound):
            raise self._store
        return self._store

    def close(self) -> None:
        """Close the store, if there is one."""
        if not isinstance(self._store, StoreNotFound):
            self._store.close()

    @property
    def redactor(self) -> Redactor | None:
        """What replaces secrets in events before they are written (None: redaction is off)."""
        if self._redactor is None and self.config.redact:
            from agent_continuity.redaction import Redactor

            self._redactor = Redactor(self.config.redact_patterns, self.config.redact_allow)
        return self._redactor

    def now(self) -> datetime:
        """The current time, from the injected clock."""
        return self._clock()

    def draft(self, kind: EventKind, payload: dict[str, Any]) -> EventDraft:
        """An event stamped with this runtime's clock."""
        return EventDraft(kind=kind, at=self.now(), payload=payload)

    # -- observing ------------------------------------------------------

    @property
    def observer(self) -> ProjectObserver | None:
        """The project observer (None when observing is off).

        Made on first use: commands that never observe (``list``, ``show``)
        do not import the capture package.
        """
        if not self._observer_made:
            self._observer = self._make_observer(self._observer_choice)
            self._observer_made = True
        return self._observer

    def _make_observer(self, observer: ProjectObserver | bool | None) -> ProjectObserver | None:
        if observer is False:
            return None
        if observer is not None and observer is not True:
            return observer
        from agent_continuity.capture.observer import ProjectObserver

        return ProjectObserver(
            self.project_root,
            ignore=self.observer_ignores(),
            build_command=self.config.build_command or None,
            build_timeout=self.config.build_timeout,
            clock=self._clock,
        )

    def observer_ignores(self) -> list[str]:
        """Project paths that observing and watching skip: the store's own folder or files."""
        ignore = []
        for prefix in ("files:", "sqlite:///"):
            if self.store.url.startswith(prefix):
                path = (self.project_root / self.store.url[len(prefix) :]).resolve()
                folder = path if prefix == "files:" else path.parent
                if folder != self.project_root and folder.is_relative_to(self.project_root):
                    ignore.append(folder.relative_to(self.project_root).as_posix())
                elif prefix == "sqlite:///" and path.is_relative_to(self.project_root):
                    # A database beside the project's files: skip it and SQLite's
                    # companions, or every observation would hash the whole database.
                    rel = path.relative_to(self.project_root).as_posix()
                    ignore += [rel + suffix for suffix in ("", "-wal", "-shm", "-journal")]
        return ignore

    # -- owners -----------------------------------------------------------

    def owner(self, owned_by_process: bool) -> Owner:
        """The owner a new lease is taken as: this process, or the command line."""
        if owned_by_process:
            return Owner.process(self.config.process_lease_ttl)
        return Owner.cli(self.config.cli_lease_ttl)

    def owner_for(self, lease: Lease) -> Owner:
        """The owner a lease is renewed as."""
        if lease.holder == BROWSER_HOLDER:
            return Owner.browser(self.config.browser_lease_ttl)
        return self.owner(lease.holder != CLI_HOLDER)

    def log_interruption(self, record: SessionRecord, cause: str) -> None:
        """Write one line to the recovery log about an interruption."""
        self.store.log_recovery(
            {
                "event": "interruption",
                "at": format_time(self.now()),
                "sessionId": record.id,
                "userId": record.user_id,
                "cause": cause,
                "lastAlive": format_time(record.interruption.at) if record.interruption else None,
                "lastSeq": record.last_seq,
            }
        )
