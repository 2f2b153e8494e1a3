"""The SQLite store's file and schema: a new file, upgrades from older versions, the journal keys.

A database made by an older version is upgraded in place, every record intact;
the ``journals`` table that keys each journal is checked against the journal's
own first event, so a damaged key is reported and repaired, never misread.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_continuity import ids
from agent_continuity.errors import LeaseHeld, StoreError
from agent_continuity.model import ContextSnapshot, EmergencyBackup, Trigger
from agent_continuity.replay import SessionView
from agent_continuity.storage import open_store
from agent_continuity.storage.sqlite import SqliteStore
from agent_continuity.storage.sqlite.schema import MIGRATIONS
from sqlite_support import NOW, new_session, note, raw, request


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def store(db: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(db)
    yield opened
    opened.close()


def test_a_new_store_is_a_wal_database_at_the_current_schema_version(tmp_path: Path) -> None:
    store = open_store("sqlite:///nested/folder/s.db", base_dir=tmp_path)
    assert isinstance(store, SqliteStore)
    record, _ = new_session(store)
    store.close()
    with raw(tmp_path / "nested/folder/s.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("SELECT id FROM sessions").fetchall() == [(record.id,)]
    assert store.url == "sqlite:///nested/folder/s.db"
    assert not list((tmp_path / "nested/folder").glob(".s.db.*")), "temporary file left behind"


def test_an_older_schema_is_upgraded_and_a_newer_one_refused(db: Path) -> None:
    with raw(db) as conn:  # version 0: a database this package has never touched
        conn.execute("CREATE TABLE unrelated (x)")
    store = SqliteStore(db)
    record, _ = new_session(store)
    store.close()
    with raw(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match=r"schema version 99.*upgrade agent-continuity"):
        SqliteStore(db)
    with raw(db) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
    assert SqliteStore(db).get_session(record.id).id == record.id


def as_version_1(db: Path, old: Path) -> None:
    """Copy every row of the store ``db`` into ``old``, laid out as schema version 1 was."""
    with raw(old) as conn:
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.execute("ATTACH DATABASE ? AS new", (str(db),))
        conn.execute("BEGIN")
        for table in ("sessions", "leases", "points", "snapshots", "emergency", "recovery_log"):
            conn.execute(f"INSERT INTO main.{table} SELECT * FROM new.{table}")
        conn.execute(
            "INSERT INTO main.events (session_id, seq, line) SELECT j.session_id, e.seq, e.line"
            " FROM new.events AS e JOIN new.journals AS j ON j.id = e.journal"
        )
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE new")


def test_a_version_1_store_is_migrated_with_every_record_intact(tmp_path: Path) -> None:
    made = tmp_path / "made.db"
    store = SqliteStore(made)
    first, alice = new_session(store)
    second, _ = new_session(store, holder="222@beta")
    store.append(alice, [note(f"first {n}") for n in range(5)])
    bob = store.acquire_lease(first.id, request("333@gamma"), steal=True)
    store.append(bob, [note("after the takeover")])
    view = SessionView.replay(store.read_events(first.id).events)
    point = view.to_point(ids.make_recovery_id(first.id, auto_save=1), NOW, Trigger.AUTO)
    store.save_point(point)
    store.save_context_snapshot(ContextSnapshot(session_id=first.id, timestamp=NOW, seq=8))
    store.save_emergency(EmergencyBackup(session_id=first.id, updated=NOW, status="active"))
    store.log_recovery({"sessionId": first.id, "decision": "prompt"})
    before = {
        sid: (store.get_session(sid), store.read_events(sid).events, store.read_lease(sid))
        for sid in (first.id, second.id)
    }
    store.close()
    old = tmp_path / "old.db"
    as_version_1(made, old)

    migrated = SqliteStore(old)

    with raw(old) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) == 4
        assert conn.execute("SELECT session_id FROM journals ORDER BY id").fetchall() == [
            (first.id,),
            (second.id,),
        ]
    for sid, (record, events, lease) in before.items():
        read = migrated.read_events(sid)
        assert read.damage == [] and read.events == events
        assert migrated.get_session(sid) == record
        assert migrated.read_lease(sid) == lease
    assert migrated.load_point(point.id).to_wire() == point.to_wire()
    assert migrated.load_context_snapshot(first.id) is not None
    assert migrated.load_emergency(first.id) is not None
    assert migrated.read_recovery_log() == [{"sessionId": first.id, "decision": "prompt"}]
    report = migrated.verify()
    assert report.ok and report.checked > len(before[first.id][1]) + len(before[second.id][1])
    # Fencing survives: the journal goes on where it stopped, the old holder stays out.
    assert [e.seq for e in migrated.append(bob, [note("goes on")])] == [
        len(before[first.id][1]) + 1
    ]
    with pytest.raises(LeaseHeld):
        migrated.append(alice, [note("fenced")])
    migrated.close()
    with raw(old) as upgraded, raw(made) as fresh:
        layout = "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name"
        assert upgraded.execute(layout).fetchall() == fresh.execute(layout).fetchall()


def test_a_journal_filed_under_a_wrong_session_id_is_reported_and_refiled(
    store: SqliteStore, db: Path
) -> None:
    record, lease = new_session(store)
    other, _ = new_session(store, holder="222@beta")
    store.append(lease, [note("kept")])
    wrong = ids.make_session_id(NOW.date(), 7)
    with raw(db) as conn:  # a flipped digit in the key column: "...-001" -> "...-007"
        conn.execute("UPDATE journals SET session_id = ? WHERE session_id = ?", (wrong, record.id))

    report = store.verify()
    assert [(d.location, d.kind) for d in report.damage][:1] == [(f"{db}:journals/1", "missing")]
    assert f"filed under {wrong!r}, but its first event is session {record.id}" in (
        report.damage[0].detail
    )
    assert f"{db}:events/{record.id}" in [d.location for d in report.damage]

    repaired = store.verify(repair=True)
    assert f"{db}:journals/1: filed under {record.id}" in repaired.repaired
    assert store.verify().ok
    assert [e.payload.get("text") for e in store.read_events(record.id).events[1:]] == ["kept"]
    assert store.read_events(other.id).last_seq == 1
    with raw(db) as conn:
        assert conn.execute("SELECT source, key, data FROM quarantine").fetchall() == [
            ("journals", "1", wrong.encode())
        ]
