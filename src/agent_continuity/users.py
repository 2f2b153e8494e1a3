"""The users of ``continuity serve``: names and the hashes of their tokens.

``continuity users add NAME`` makes a random token, shows it once, and keeps
only its SHA-256 (a token has 256 random bits, so a fast hash is as safe as a
slow one: there is nothing to guess). The users live in one JSON file, mode
0600, written atomically:

* ``users_file`` in the configuration (``CONTINUITY_USERS_FILE``), if set;
* else beside the store: ``PATH/users.json`` for ``files:PATH``,
  ``DB.users.json`` for ``sqlite:///DB``;
* ``postgresql://``: in the database itself (the ``settings`` row ``users``),
  so every worker and every host serving the store sees the same users and a
  new token works everywhere at once; a token's hash is not a secret, so the
  row is not encrypted;
* else (``memory:``) ``.continuity/users.json`` under the project root.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agent_continuity.errors import ConfigError, InvalidInput
from agent_continuity.model import format_time, utc_now
from agent_continuity.storage.atomic import FileLock, ensure_folder, replace_atomically

#: What a user name may be: it becomes the ``userId`` of the user's sessions.
USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_TOKEN_PREFIX = "ct_"
#: The ``settings`` row of a database store that holds its users.
SETTINGS_ROW = "users"
_DATABASE_SCHEMES = ("postgresql", "postgres")


class SettingsStore(Protocol):
    """A store that keeps settings rows every host sees (PostgreSQL)."""

    def load_setting(self, name: str) -> bytes | None:
        """The row's document, or None."""

    def change_setting(self, name: str, change: Callable[[bytes | None], bytes]) -> None:
        """Replace the row with ``change(its document)``, atomically."""


Settings = Callable[[], AbstractContextManager[SettingsStore]]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class NewUser:
    """A user just added, with the token shown this once.

    Attributes:
        user: The user name.
        token: The bearer token; only its hash is kept.
    """

    user: str
    token: str

    def to_wire(self) -> dict[str, str]:
        """The ``users add --json`` object: ``{"user", "token"}``."""
        return {"user": self.user, "token": self.token}


class UserRegistry:
    """The users of the service, their tokens hashed: in one file, or in a database store.

    Args:
        path: The users file (made on the first ``add``).
        settings: Instead of a file: opens the database store that keeps them
            (see :meth:`for_store`).

    Example:
        >>> registry = UserRegistry.for_store("sqlite:///s.db", Path("."))  # doctest: +SKIP
        >>> token = registry.add("alice").token  # doctest: +SKIP
        >>> registry.authenticate(token)  # doctest: +SKIP
        'alice'
    """

    def __init__(self, path: Path | None = None, *, settings: Settings | None = None) -> None:
        if (path is None) == (settings is None):
            raise ValueError("a user registry is kept in a file or in a database: give one")
        self.path = path
        self._settings = settings

    @property
    def location(self) -> str:
        """Where the users are kept, for messages."""
        return (
            str(self.path)
            if self.path is not None
            else f"the store's settings row {SETTINGS_ROW!r}"
        )

    @classmethod
    def for_store(
        cls,
        store_url: str,
        project_root: Path,
        users_file: str = "",
        *,
        store: Callable[[], Any] | None = None,
    ) -> UserRegistry:
        """The registry of the users of a store (see the module documentation for where).

        Args:
            store_url: The store's URL.
            project_root: Where relative paths start.
            users_file: The configured users file, if any.
            store: The open store (a database store's users are in it); by
                default the store is opened for each read or change.
        """
        if store_url.partition(":")[0] in _DATABASE_SCHEMES and not users_file:
            if store is not None:
                opened = store
                return cls(settings=lambda: nullcontext(opened()))

            @contextmanager
            def opening() -> Iterator[SettingsStore]:
                from agent_continuity.storage import open_store

                database: Any = open_store(store_url, base_dir=project_root)
                try:
                    yield database
                finally:
                    database.close()

            return cls(settings=opening)
        if users_file:
            return cls(project_root / Path(users_file).expanduser())
        scheme, _, rest = store_url.partition(":")
        if scheme == "files" and rest:
            return cls(project_root / rest / "users.json")
        if scheme == "sqlite" and rest.startswith("///") and len(rest) > 3:
            database = project_root / rest[3:]
            return cls(database.with_name(database.name + ".users.json"))
        return cls(project_root / ".continuity" / "users.json")

    def _read(self) -> dict[str, Any]:
        if self._settings is not None:
            with self._settings() as database:
                return self._parse(database.load_setting(SETTINGS_ROW))
        assert self.path is not None
        try:
            return self._parse(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigError(
                f"cannot read the users file {self.path}: {exc}; fix or remove it, then "
                "`continuity users add NAME` again"
            ) from exc

    def _parse(self, raw: bytes | None) -> dict[str, Any]:
        if raw is None:
            return {}
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(
                f"cannot read the users in {self.location}: {exc}; fix or remove it, then "
                "`continuity users add NAME` again"
            ) from exc
        users = data.get("users") if isinstance(data, dict) else None
        if not isinstance(users, dict):
            raise ConfigError(
                f"{self.location} does not hold users; move it away and "
                "`continuity users add NAME` again"
            )
        return users

    def _change(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Read the users, ``change`` them in place, write them: one atomic step."""
        if self._settings is not None:

            def changed(raw: bytes | None) -> bytes:
                users = self._parse(raw)
                change(users)
                return _dump(users)

            with self._settings() as database:
                database.change_setting(SETTINGS_ROW, changed)
            return
        assert self.path is not None
        ensure_folder(self.path.parent)
        # Two `users add` at once must not lose each other's user.
        lock = FileLock(self.path.with_name(self.path.name + ".lock"))
        try:
            with lock:
                users = self._read()
                change(users)
                replace_atomically(self.path, _dump(users))
        finally:
            lock.close()

    def names(self) -> list[str]:
        """The user names, in the order they were added."""
        return list(self._read())

    def add(self, name: str) -> NewUser:
        """Add a user, or give an existing one a new token (the old one stops working).

        Args:
            name: The user name (letters, digits, ``.``, ``_``, ``-``; at most 64).

        Returns:
            The user and the token, shown once.

        Raises:
            InvalidInput: If the name is not a valid user name.
        """
        if not USER_NAME.fullmatch(name):
            raise InvalidInput(
                f"{name!r} is not a user name: use letters, digits, '.', '_' or '-' "
                "(at most 64, starting with a letter or digit)"
            )
        token = _TOKEN_PREFIX + secrets.token_urlsafe(32)

        def put(users: dict[str, Any]) -> None:
            users[name] = {"tokenSha256": _hash(token), "created": format_time(utc_now())}

        self._change(put)
        return NewUser(name, token)

    def launch_token(self, name: str) -> str:
        """A new login token for ``name``, replacing the previous one this made.

        ``continuity serve`` prints a login URL with it at each start, as
        Jupyter does; the token of ``add`` keeps working beside it.

        Raises:
            InvalidInput: If there is no such user.
        """
        token = _TOKEN_PREFIX + secrets.token_urlsafe(32)

        def stamp(users: dict[str, Any]) -> None:
            if name not in users:
                raise InvalidInput(f"no user {name!r}; `continuity users add {name}` adds one")
            users[name]["launchTokenSha256"] = _hash(token)

        self._change(stamp)
        return token

    def authenticate(self, token: str) -> str | None:
        """The user a bearer token belongs to, or None.

        Args:
            token: The token presented.
        """
        if not token or len(token) > 200:
            return None
        digest = _hash(token)
        found = None
        for name, entry in self._read().items():
            for key in ("tokenSha256", "launchTokenSha256"):
                kept = entry.get(key, "") if isinstance(entry, dict) else ""
                # Compared in constant time, and every entry is compared.
                if isinstance(kept, str) and kept and hmac.compare_digest(kept, digest):
                    found = name
        return found


def _dump(users: dict[str, Any]) -> bytes:
    return json.dumps({"users": users}, indent=2, sort_keys=True).encode() + b"\n"
