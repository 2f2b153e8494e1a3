"""Storage backends behind one protocol, chosen by URL.

``memory:``, ``files:PATH``, ``sqlite:///PATH`` and ``postgresql://…``.
Backends import their drivers lazily, so opening a files store never imports
sqlite3 or psycopg.
"""

from __future__ import annotations

from pathlib import Path

from agent_continuity.errors import ConfigError, StoreNotFound, StoreUnavailable

from .base import DURABILITY_MODES, JournalRead, LeaseRequest, Store, VerifyReport

__all__ = ["JournalRead", "LeaseRequest", "Store", "VerifyReport", "open_store", "shown_url"]


def open_store(
    url: str, *, durability: str = "sync", base_dir: Path | None = None, create: bool = True
) -> Store:
    """Open the store a URL names.

    Args:
        url: ``memory:``, ``files:PATH``, ``sqlite:///PATH`` or ``postgresql://…``
            (a libpq URL; the database must exist).
            A relative PATH is taken from ``base_dir`` (default: the current directory).
        durability: ``"sync"`` (default) or ``"batched"``.
        base_dir: Where relative paths start.
        create: Create the store when it does not exist yet (what writing
            commands want). False for commands that only read: they must
            leave no folder or database file behind.

    Raises:
        ConfigError: If the URL or durability mode is not understood.
        StoreNotFound: If ``create`` is False and there is no store at the URL.
        StoreUnavailable: If the backend's driver is missing or it cannot connect.
        KeyUnavailable: If the store is encrypted and its key is not configured.
        WrongKey: If the configured key is not the one the store is encrypted with.
    """
    if durability not in DURABILITY_MODES:
        raise ConfigError(
            f"durability must be one of {', '.join(DURABILITY_MODES)}, not {durability!r}"
        )
    base = base_dir if base_dir is not None else Path.cwd()
    scheme, _, rest = url.partition(":")
    if scheme == "memory":
        from .memory import MemoryStore

        return MemoryStore(url, durability)
    if scheme == "files":
        if not rest:
            raise ConfigError("files: needs a folder, e.g. files:projectDocs/tracking")
        from .files import FileStore

        root = base / rest
        if not create and not _files_store_exists(root):
            raise _not_found(url, root)
        return FileStore(root, durability=durability, url=url)
    if scheme == "sqlite":
        if not rest.startswith("///") or len(rest) <= 3:
            raise ConfigError(
                "sqlite URLs look like sqlite:///relative/path.db or sqlite:////abs/path.db"
            )
        from .sqlite import SqliteStore

        path = base / rest[3:]
        # Connecting to SQLite creates the file: look before opening.
        if not create and not path.is_file():
            raise _not_found(url, path)
        return SqliteStore(path, durability=durability, url=url)
    if scheme in ("postgresql", "postgres"):
        try:
            from .postgres import PostgresStore
        except ImportError:
            raise StoreUnavailable(
                "postgresql:// stores need psycopg 3: pip install 'agent-continuity[postgres]'"
            ) from None
        return PostgresStore(url, durability=durability, create=create)
    raise ConfigError(f"unknown store URL {url!r}; use files:PATH, sqlite:///PATH or memory:")


def shown_url(store: Store) -> str:
    """The store as messages and reports name it: a server store's address, never its password.

    A ``postgresql://`` URL may carry a password; its store is named by
    ``postgresql://HOST:PORT/DATABASE`` instead. Other stores' URLs hold none.
    """
    if store.url.startswith(("postgresql:", "postgres:")):
        return f"postgresql://{getattr(store, 'where', '?')}"
    return store.url


def _files_store_exists(root: Path) -> bool:
    """Whether ``root`` holds a files store (its sessions or its journals), even a damaged one."""
    return (root / "sessions").is_dir() or (root / "snapshots" / "conversation-history").is_dir()


def _not_found(url: str, where: Path) -> StoreNotFound:
    return StoreNotFound(
        f"there is no store at {where} ({url}) yet, so nothing to read; `continuity start` "
        "creates it, or --store / CONTINUITY_STORE names the store you meant"
    )
