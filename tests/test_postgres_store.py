"""The ``postgresql://`` store through the command line and the public API.

The conformance and chaos suites run on it too (``conftest.STORE_FACTORIES``,
``tests/chaos``); these are the things only a server has: connecting, its
schema version, synchronous commit, and reconnecting.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import psycopg
import pytest

from agent_continuity.errors import StoreError, StoreNotFound, StoreUnavailable
from agent_continuity.storage import open_store
from agent_continuity.storage.postgres import PostgresStore
from agent_continuity.storage.postgres.schema import MIGRATIONS
from agent_continuity.testing.factory import T0, draft_record, lease_request, make_point, message
from cli_support import cli, cli_json
from postgres_support import server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _query(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def test_the_command_line_keeps_sessions_in_postgresql(tmp_path: Path) -> None:
    url = server().new_database(empty=True)
    started = cli_json(tmp_path, url, "start", "--task", "TASK-PG-1")
    session_id = started["sessionId"]
    listed = cli_json(tmp_path, url, "list")
    assert [s["id"] for s in listed["sessions"]] == [session_id]
    # The store made its tables and recorded its schema version.
    assert _query(url, "SELECT version FROM continuity_schema") == [(len(MIGRATIONS),)]
    # postgres:// is the same store.
    again = cli_json(tmp_path, url.replace("postgresql://", "postgres://"), "list")
    assert [s["id"] for s in again["sessions"]] == [session_id]


def test_an_unreachable_server_is_one_line_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://app:Sup3rS3cret@127.0.0.1:{_free_port()}/continuity"
    done = cli(tmp_path, url, "list")
    assert done.returncode == 1
    assert "cannot connect to PostgreSQL at 127.0.0.1:" in done.stderr
    assert "Traceback" not in done.stderr and "Sup3rS3cret" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_messages_and_reports_name_the_store_without_its_password(tmp_path: Path) -> None:
    # The test server trusts loopback connections, so any password connects.
    url = server().new_database().replace("postgres@", "postgres:Sup3rS3cret@")
    assert cli(tmp_path, url, "start", "--task", "TASK-PG-1").returncode == 0
    missing = cli(tmp_path, url, "show", "SESSION-261207-999")
    assert missing.returncode == 1 and "[session-not-found]" in missing.stderr
    assert "postgresql://127.0.0.1:" in missing.stderr
    verified = cli_json(tmp_path, url, "verify")
    assert verified["store"].startswith("postgresql://127.0.0.1:")
    for text in (missing.stderr, str(verified)):
        assert "Sup3rS3cret" not in text


def test_reading_a_database_without_a_store_creates_nothing(tmp_path: Path) -> None:
    url = server().new_database(empty=True)
    with pytest.raises(StoreNotFound):
        open_store(url, create=False)
    assert _query(url, "SELECT to_regclass('continuity_schema')") == [(None,)]
    done = cli(tmp_path, url, "list")
    assert "there is no store in" in done.stdout + done.stderr, done
    assert _query(url, "SELECT to_regclass('continuity_schema')") == [(None,)]


def test_a_newer_schema_is_refused() -> None:
    url = server().new_database()
    _query(url, "UPDATE continuity_schema SET version = 99 RETURNING 1")
    with pytest.raises(StoreError, match="schema version 99, newer than"):
        PostgresStore(url)


@pytest.mark.parametrize(("durability", "level"), [("sync", "on"), ("batched", "off")])
def test_commits_are_synchronous_in_sync_mode(durability: str, level: str) -> None:
    store = PostgresStore(server().new_database(), durability=durability)
    try:
        record, lease = store.create_session(draft_record(), lease_request())
        store.append(lease, [message("hello")])
        # An automatic point is committed unsynced; the connection must sync again after.
        store.save_point(make_point(store, record.id, 1))
        with store._scope:
            shown = store._connection().execute("SHOW synchronous_commit").fetchone()
        assert shown == (level,)
    finally:
        store.close()


def test_the_next_call_reconnects_after_the_server_ended_every_connection() -> None:
    url = server().new_database()
    store = PostgresStore(url)
    try:
        record, lease = store.create_session(draft_record(), lease_request())
        # An administrator (or a failover) ends every connection to the database.
        name = url.rsplit("/", 1)[1]
        activity = f"FROM pg_stat_activity WHERE datname = '{name}'"
        _query(server().url(), f"SELECT pg_terminate_backend(pid) {activity}")
        deadline = time.monotonic() + 30
        while _query(server().url(), f"SELECT count(*) {activity}") != [(0,)]:
            assert time.monotonic() < deadline, "the backends did not end"
            time.sleep(0.01)
        (event,) = store.append(lease, [message("after the disconnect", minute=2)])
        assert store.read_events(record.id).events[-1] == event
    finally:
        store.close()


def test_psycopg_missing_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PostgresStore, "driver_errors", ())
    with pytest.raises(StoreUnavailable, match=r"agent-continuity\[postgres\]"):
        PostgresStore(server().url())


def test_session_ids_never_repeat_across_stores_on_one_database() -> None:
    """Two handles (two hosts) allocating on the same day interleave without a duplicate."""
    url = server().new_database()
    first, second = PostgresStore(url), PostgresStore(url)
    try:
        made = [
            store.create_session(draft_record(T0), lease_request())[0].id
            for _ in range(10)
            for store in (first, second)
        ]
        assert len(set(made)) == len(made) == 20
    finally:
        first.close()
        second.close()


def test_a_missing_database_is_not_found_for_reading_and_named_for_writing() -> None:
    url = server().url("no_such_database")
    with pytest.raises(StoreNotFound, match="no database"):
        open_store(url, create=False)
    with pytest.raises(StoreUnavailable, match='database "no_such_database" does not exist'):
        open_store(url)
