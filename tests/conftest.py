"""Shared fixtures: ``store_factory``, parametrised over every store we ship.

A new store joins the conformance run by adding its factory to
:data:`STORE_FACTORIES`.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Detailed assertion messages from the suite, which lives outside the test folder.
pytest.register_assert_rewrite("agent_continuity.testing")

from agent_continuity.storage.base import Store  # noqa: E402
from agent_continuity.storage.files import FileStore  # noqa: E402
from agent_continuity.storage.memory import MemoryStore  # noqa: E402
from agent_continuity.storage.sqlite import SqliteStore  # noqa: E402
from agent_continuity.testing.conformance import StoreFactory  # noqa: E402
from agent_continuity.testing.encrypted import KEY_ENV, encrypt_at, encrypt_store  # noqa: E402
from coding_agents.fixtures import claude_project, claude_transcripts  # noqa: E402, F401
from postgres_support import postgres_server, server  # noqa: E402, F401  (session fixture)


def _flip_letter(data: bytearray, start: int, end: int) -> None:
    """Change the case of one ASCII letter in ``data[start:end]`` (never makes a newline)."""
    for index in range((start + end) // 2, end):
        if chr(data[index]).isalpha() and data[index] < 0x80:
            data[index] ^= 0x20
            return
    raise AssertionError("no letter to flip in that record")


class MemoryFactory(StoreFactory):
    """``memory:``; every call returns the one in-process store. Damage edits its buffers."""

    name = "memory"

    def __init__(self, location: Path) -> None:
        super().__init__(location)
        self._store: MemoryStore | None = None

    def open(self) -> Store:
        if self._store is None:
            self._store = MemoryStore()
        return self._store

    def _memory(self, store: Store) -> MemoryStore:
        assert isinstance(store, MemoryStore)
        return store

    def truncate_journal(self, store: Store, session_id: str, nbytes: int) -> None:
        journal = self._memory(store)._journals[session_id]
        journal[-1] = journal[-1][:-nbytes]

    def flip_journal_byte(self, store: Store, session_id: str, seq: int) -> None:
        journal = self._memory(store)._journals[session_id]
        line = bytearray(journal[seq - 1])
        assert line.startswith(b'{"seq":%d,' % seq)
        _flip_letter(line, 0, len(line))
        journal[seq - 1] = bytes(line)

    def flip_point_byte(self, store: Store, point_id: str) -> None:
        points = self._memory(store)._points
        info, data = points[point_id]
        body = bytearray(data)
        body[len(body) // 2] ^= 0xFF
        points[point_id] = (info, bytes(body))

    def delete_journal(self, store: Store, session_id: str) -> None:
        del self._memory(store)._journals[session_id]


class FilesFactory(StoreFactory):
    """``files:PATH``; every call opens a new FileStore (another process's view)."""

    name = "files"

    @property
    def root(self) -> Path:
        """The store's folder."""
        return self.location / "tracking"

    def open(self) -> Store:
        return FileStore(self.root)

    def journal(self, session_id: str) -> Path:
        """The session's journal file."""
        return self.root / "snapshots" / "conversation-history" / f"{session_id}.jsonl"

    def truncate_journal(self, store: Store, session_id: str, nbytes: int) -> None:
        path = self.journal(session_id)
        os.truncate(path, path.stat().st_size - nbytes)

    def flip_journal_byte(self, store: Store, session_id: str, seq: int) -> None:
        path = self.journal(session_id)
        data = bytearray(path.read_bytes())
        start = data.index(b'{"seq":%d,' % seq)
        _flip_letter(data, start, data.index(b"\n", start))
        path.write_bytes(bytes(data))

    def flip_point_byte(self, store: Store, point_id: str) -> None:
        session_id = "SESSION-" + point_id.split("-")[1] + "-" + point_id.split("-")[2]
        folder = self.root / "snapshots" / "recovery-points" / session_id
        (path,) = folder.glob(f"{point_id}.*")
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))

    def delete_journal(self, store: Store, session_id: str) -> None:
        self.journal(session_id).unlink()


class _SqlFactory(StoreFactory):
    """The damage of a SQL store, by editing its rows: the same SQL on SQLite and PostgreSQL.

    A subclass says how to run one statement (``?`` placeholders) and how to
    rewrite one column of one row.
    """

    def _execute(self, sql: str, params: tuple[object, ...] = ()) -> Any:
        """Run one statement in a transaction of its own; its rows ([] when it returns none)."""
        raise NotImplementedError

    def _rewrite(
        self,
        table: str,
        column: str,
        where: str,
        key: tuple[object, ...],
        damage: Callable[[bytearray], None],
    ) -> None:
        """Apply ``damage`` to the ``column`` of the one row of ``table`` matching ``where``."""
        raise NotImplementedError

    def truncate_journal(self, store: Store, session_id: str, nbytes: int) -> None:
        ((seq,),) = self._execute(
            "SELECT max(seq) FROM events WHERE journal = "
            "(SELECT id FROM journals WHERE session_id = ?)",
            (session_id,),
        )

        def cut(data: bytearray) -> None:
            del data[-nbytes:]

        where = "journal = (SELECT id FROM journals WHERE session_id = ?) AND seq = ?"
        self._rewrite("events", "line", where, (session_id, seq), cut)

    def flip_journal_byte(self, store: Store, session_id: str, seq: int) -> None:
        self._rewrite(
            "events",
            "line",
            "journal = (SELECT id FROM journals WHERE session_id = ?) AND seq = ?",
            (session_id, seq),
            lambda data: _flip_letter(data, 0, len(data)),
        )

    def flip_point_byte(self, store: Store, point_id: str) -> None:
        def flip(data: bytearray) -> None:
            data[len(data) // 2] ^= 0xFF

        self._rewrite("points", "body", "id = ?", (point_id,), flip)

    def delete_journal(self, store: Store, session_id: str) -> None:
        journal = "(SELECT id FROM journals WHERE session_id = ?)"
        self._execute(f"DELETE FROM events WHERE journal = {journal}", (session_id,))
        self._execute("DELETE FROM journals WHERE session_id = ?", (session_id,))


class SqliteFactory(_SqlFactory):
    """``sqlite:///PATH``; every call opens a new SqliteStore. Damage edits rows directly."""

    name = "sqlite"

    @property
    def path(self) -> Path:
        """The database file."""
        return self.location / "continuity.db"

    def open(self) -> Store:
        return SqliteStore(self.path)

    def _rewrite(
        self,
        table: str,
        column: str,
        where: str,
        key: tuple[object, ...],
        damage: Callable[[bytearray], None],
    ) -> None:
        with sqlite3.connect(self.path) as conn:
            (data,) = conn.execute(f"SELECT {column} FROM {table} WHERE {where}", key).fetchone()
            edited = bytearray(data)
            damage(edited)
            conn.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (bytes(edited), *key))
        conn.close()

    def _execute(self, sql: str, params: tuple[object, ...] = ()) -> Any:
        with sqlite3.connect(self.path) as conn:
            rows = conn.execute(sql, params).fetchall()
        conn.close()
        return rows


class EncryptedFilesFactory(FilesFactory):
    """``files:PATH`` encrypted at rest (AES-256-GCM) from its first record."""

    name = "files-encrypted"

    def __init__(self, location: Path) -> None:
        super().__init__(location)
        self.key = encrypt_at(self.root / "encryption.json")


class EncryptedSqliteFactory(SqliteFactory):
    """``sqlite:///PATH`` encrypted at rest (AES-256-GCM) from its first record."""

    name = "sqlite-encrypted"

    def __init__(self, location: Path) -> None:
        super().__init__(location)
        self.key = encrypt_at(self.path.with_name(self.path.name + ".encryption.json"))


class PostgresFactory(_SqlFactory):
    """``postgresql://``; a database of its own on the test server (postgres_support), every
    call opens a new PostgresStore. Damage edits rows directly."""

    name = "postgres"

    def __init__(self, location: Path) -> None:
        super().__init__(location)
        self.url = server().new_database()

    def open(self) -> Store:
        from agent_continuity.storage.postgres import PostgresStore

        return PostgresStore(self.url)

    def _execute(self, sql: str, params: tuple[object, ...] = ()) -> Any:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def _rewrite(
        self,
        table: str,
        column: str,
        where: str,
        key: tuple[object, ...],
        damage: Callable[[bytearray], None],
    ) -> None:
        ((data,),) = self._execute(f"SELECT {column} FROM {table} WHERE {where}", key)
        edited = bytearray(data)
        damage(edited)
        self._execute(
            f"UPDATE {table} SET {column} = ? WHERE {where} RETURNING 1", (bytes(edited), *key)
        )


class EncryptedPostgresFactory(PostgresFactory):
    """``postgresql://`` encrypted at rest from its first record (the marker is a row)."""

    name = "postgres-encrypted"

    def __init__(self, location: Path) -> None:
        super().__init__(location)
        from agent_continuity.storage.postgres import PostgresStore

        store = PostgresStore(self.url)
        try:
            self.key = encrypt_store(store)
        finally:
            store.close()


STORE_FACTORIES: list[type[StoreFactory]] = [
    MemoryFactory,
    FilesFactory,
    SqliteFactory,
    EncryptedFilesFactory,
    EncryptedSqliteFactory,
    PostgresFactory,
    EncryptedPostgresFactory,
]


@pytest.fixture(params=STORE_FACTORIES, ids=lambda factory: factory.name)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens the store under test on fresh data; see :class:`StoreFactory`."""
    factory: StoreFactory = request.param(tmp_path)
    # An encrypted store's key is configured as a user would, in the environment
    # (inherited by worker processes); a context of its own, which a test's
    # `monkeypatch.undo()` leaves alone.
    with pytest.MonkeyPatch.context() as env:
        key = getattr(factory, "key", None)
        if key is not None:
            env.setenv(KEY_ENV, key)
        yield factory
        factory.close_all()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The figures of the durability suites (tests/chaos), when they ran."""
    figures = getattr(sys.modules.get("chaos_support"), "FIGURES", None)
    if not figures:
        return
    terminalreporter.section("durability figures")
    for name, count in sorted(figures.items()):
        terminalreporter.write_line(f"{count:>9,}  {name}")
