"""What is particular to ``sqlite:///PATH``: the file, its damage, its locks, its limits.

The behaviour every store shares is in the conformance suite; these tests
poke the database file directly, kill real processes and exhaust real limits.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent_continuity import ids
from agent_continuity.errors import (
    ContinuityError,
    CorruptRecord,
    DuplicateRecord,
    InvalidInput,
    LeaseHeld,
    SessionNotFound,
    StoreError,
)
from agent_continuity.model import (
    ContextSnapshot,
    EmergencyBackup,
    EventDraft,
    EventKind,
    Lease,
    RecoveryPointInfo,
    SessionRecord,
    Trigger,
)
from agent_continuity.replay import SessionView
from agent_continuity.storage import LeaseRequest, open_store, sqlite_points
from agent_continuity.storage.sqlite import SqliteStore
from agent_continuity.storage.sqlite_schema import MIGRATIONS

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
# The events table keys each journal by a small integer, filed in ``journals``.
JOURNAL_OF = "(SELECT id FROM journals WHERE session_id = ?)"


def request(holder: str = "111@alpha", now: datetime = NOW) -> LeaseRequest:
    return LeaseRequest(holder=holder, pid=111, host="alpha", ttl=timedelta(minutes=5), now=now)


def note(text: str) -> EventDraft:
    return EventDraft(kind=EventKind.NOTE, at=NOW, payload={"text": text})


def new_session(store: SqliteStore, holder: str = "111@alpha") -> tuple[SessionRecord, Lease]:
    draft = SessionRecord(id="unset", type="task-execution", created=NOW, last_activity=NOW)
    return store.create_session(draft, request(holder))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def store(db: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(db)
    yield opened
    opened.close()


@contextmanager
def raw(db: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection to the store file, as a person with `sqlite3` would open it."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


# -- the file -----------------------------------------------------------------


def test_a_new_store_is_a_wal_database_at_the_current_schema_version(tmp_path: Path) -> None:
    store = open_store("sqlite:///nested/folder/s.db", base_dir=tmp_path)
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
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) == 3
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


def test_sync_mode_syncs_every_commit_and_batched_mode_leaves_it_to_the_flusher(db: Path) -> None:
    for durability, level in (("sync", 2), ("batched", 1)):  # FULL, NORMAL
        store = SqliteStore(db, durability=durability)
        new_session(store)
        assert store._connection().execute("PRAGMA synchronous").fetchone()[0] == level
        store.close()


def test_batched_mode_fsyncs_the_wal_within_the_batch_interval(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    store = SqliteStore(db, durability="batched", batch_interval=0.05)
    _, lease = new_session(store)
    monkeypatch.setattr(os, "fsync", recording_fsync)
    appended = time.monotonic()
    store.append(lease, [note("acknowledged")])
    while f"{db}-wal" not in synced and time.monotonic() - appended < 5:
        time.sleep(0.01)
    assert f"{db}-wal" in synced
    assert time.monotonic() - appended < 1  # 0.05 s, plus a busy machine's scheduling
    store.close()


@pytest.mark.parametrize("durability", ["sync", "batched"])
def test_every_acknowledged_append_survives_kill_9(db: Path, durability: str) -> None:
    writer = textwrap.dedent(
        f"""
        import sys
        from datetime import UTC, datetime, timedelta
        from pathlib import Path
        from agent_continuity.model import EventDraft, EventKind, SessionRecord
        from agent_continuity.storage import LeaseRequest
        from agent_continuity.storage.sqlite import SqliteStore
        now = datetime.now(UTC)
        store = SqliteStore(Path({str(db)!r}), durability={durability!r})
        req = LeaseRequest("1@w", 1, "w", timedelta(minutes=5), now)
        record, lease = store.create_session(SessionRecord(id="x", created=now,
                                             last_activity=now), req)
        print(record.id, flush=True)
        n = 0
        while True:
            n += 1
            draft = EventDraft(kind=EventKind.NOTE, at=now, payload={{"text": f"note {{n}}"}})
            print(store.append(lease, [draft])[0].seq, flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    session_id = proc.stdout.readline().strip()
    acked = [int(proc.stdout.readline()) for _ in range(300)]
    proc.send_signal(signal.SIGKILL)
    acked += [int(line) for line in proc.stdout.read().split()]
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    read = SqliteStore(db).read_events(session_id)
    assert read.damage == []
    texts = {e.seq: e.payload.get("text") for e in read.events}
    assert all(texts[seq] == f"note {seq - 1}" for seq in acked)
    assert read.last_seq >= acked[-1]


# -- damage -------------------------------------------------------------------


def flip_byte(db: Path, table: str, column: str, where: str, key: tuple[object, ...]) -> bytes:
    with raw(db) as conn:
        data = bytearray(
            conn.execute(f"SELECT {column} FROM {table} WHERE {where}", key).fetchone()[0]
        )
        data[len(data) // 2] ^= 0x20
        conn.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (bytes(data), *key))
    return bytes(data)


def test_a_flipped_byte_in_an_event_row_is_reported_and_quarantined(
    store: SqliteStore, db: Path
) -> None:
    record, lease = new_session(store)
    store.append(lease, [note("first"), note("second"), note("third")])  # seqs 2, 3, 4
    damaged = flip_byte(db, "events", "line", f"journal = {JOURNAL_OF} AND seq = 3", (record.id,))

    read = store.read_events(record.id)
    assert [e.payload.get("text") for e in read.events[1:]] == ["first", "third"]
    [damage] = read.damage
    assert damage.location == f"{db}:events/{record.id}/3"
    assert damage.kind == "checksum"

    report = store.verify(repair=True)
    assert [d.location for d in report.damage] == [f"{db}:events/{record.id}/3"]
    assert report.quarantined == [f"{db}:quarantine/1"]
    with raw(db) as conn:
        assert conn.execute("SELECT source, key, data FROM quarantine").fetchall() == [
            ("events", f"{record.id}/3", damaged)
        ]
    # The loss stays on record, in the journal itself: a tombstone names the quarantine row.
    read = store.read_events(record.id)
    assert not read.damage and [e.seq for e in read.events] == [1, 2, 3, 4]
    assert read.events[2].kind is EventKind.NOTE
    assert read.events[2].payload["lost"]["quarantine"] == f"{db}:quarantine/1"
    assert store.verify().ok


def test_a_damaged_registry_entry_is_read_from_the_journal_then_rebuilt(
    store: SqliteStore, db: Path
) -> None:
    record, lease = new_session(store)
    store.append(
        lease,
        [note("kept"), EventDraft(kind=EventKind.DECISION, at=NOW, payload={"text": "use SQLite"})],
    )
    view = SessionView.replay(store.read_events(record.id).events)
    store.save_point(view.to_point(ids.make_recovery_id(record.id, at=NOW), NOW, Trigger.AUTO))
    store.append(lease, [EventDraft(kind=EventKind.NEXT_STEP, at=NOW, payload={"step": "ship"})])
    flip_byte(db, "sessions", "doc", "id = ?", (record.id,))

    reader = SqliteStore(db)
    derived = reader.get_session(record.id)
    assert derived.context.key_decisions == ["use SQLite"]  # from the point
    assert derived.state.next_steps == ["ship"]  # from the journal after it
    assert reader.list_sessions() == [derived]
    [noted] = reader.index_damage()
    assert noted.location == f"{db}:sessions/{record.id}" and "derived" in noted.detail
    assert [d.location for d in reader.verify().damage] == [f"{db}:sessions/{record.id}"]
    reader.close()

    report = store.verify(repair=True)
    assert report.repaired == [f"{db}:sessions/{record.id}"]
    rebuilt = store.get_session(record.id)
    assert rebuilt.context.key_decisions == ["use SQLite"]  # from the point
    assert rebuilt.state.next_steps == ["ship"]  # from the journal after it
    assert store.verify().ok


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


def test_damaged_documents_are_reported_then_moved_aside_by_repair(
    store: SqliteStore, db: Path
) -> None:
    record, _ = new_session(store)
    store.save_context_snapshot(ContextSnapshot(session_id=record.id, timestamp=NOW, seq=1))
    store.save_emergency(EmergencyBackup(session_id=record.id, updated=NOW, status="active"))
    store.log_recovery({"sessionId": record.id, "decision": "prompt"})
    store.log_recovery({"sessionId": record.id, "decision": "auto-resume"})
    flip_byte(db, "snapshots", "doc", "session_id = ?", (record.id,))
    flip_byte(db, "emergency", "doc", "session_id = ?", (record.id,))
    flip_byte(db, "recovery_log", "doc", "id = ?", (1,))

    with pytest.raises(CorruptRecord, match="verify --repair"):
        store.load_context_snapshot(record.id)
    backups, damage = store.list_emergency()
    assert backups == [] and [d.location for d in damage] == [f"{db}:emergency/{record.id}"]
    assert store.read_recovery_log() == [{"sessionId": record.id, "decision": "auto-resume"}]

    report = store.verify(repair=True)
    assert sorted(d.location for d in report.damage) == [
        f"{db}:emergency/{record.id}",
        f"{db}:recovery_log/1",
        f"{db}:snapshots/{record.id}",
    ]
    assert len(report.quarantined) == 3
    assert store.load_context_snapshot(record.id) is None
    assert store.verify().ok
    with raw(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0] == 3


def test_put_session_keeps_a_damaged_entry_in_the_quarantine_before_replacing_it(
    store: SqliteStore, db: Path
) -> None:
    record, _ = new_session(store)
    damaged = flip_byte(db, "sessions", "doc", "id = ?", (record.id,))
    changed = record.model_copy(update={"type": "changed"})

    store.put_session(changed)

    assert store.get_session(record.id) == changed
    with raw(db) as conn:
        assert conn.execute("SELECT source, key, data FROM quarantine").fetchall() == [
            ("sessions", record.id, damaged)
        ]
    assert "moved to" in store.index_damage()[0].detail
    assert store.verify().ok


def test_a_damaged_lease_is_read_from_the_journal_and_a_takeover_fences_everyone(
    store: SqliteStore, db: Path
) -> None:
    record, first = new_session(store)
    bob = store.acquire_lease(record.id, request("222@beta"), steal=True)  # token 2, event 2
    store.append(bob, [note("bob writes")])  # event 3
    damaged = flip_byte(db, "leases", "doc", "session_id = ?", (record.id,))

    derived = store.read_lease(record.id)
    assert derived is not None and (derived.token, derived.holder) == (2, "222@beta")
    assert derived.expires == NOW + timedelta(minutes=30)  # after the journal's last event
    assert [e.seq for e in store.append(bob, [note("bob goes on")])] == [4]
    with pytest.raises(LeaseHeld, match="222@beta"):
        store.acquire_lease(record.id, request("333@gamma", NOW + timedelta(minutes=1)))

    third = store.acquire_lease(record.id, request("333@gamma"), steal=True, expect_token=2)

    assert third.token > 4  # above every number the journal handed out
    for stale in (first, bob):
        with pytest.raises(LeaseHeld):
            store.append(stale, [note("fenced")])
    with raw(db) as conn:
        assert conn.execute("SELECT source, data FROM quarantine").fetchall() == [
            ("leases", damaged)
        ]
    assert store.read_lease(record.id) == third
    assert store.verify().ok


def test_repair_reseals_a_damaged_lease_so_fencing_still_holds(
    store: SqliteStore, db: Path
) -> None:
    record, lease = new_session(store)
    taken = store.acquire_lease(record.id, request("222@beta"), steal=True)  # token 2
    flip_byte(db, "leases", "doc", "session_id = ?", (record.id,))

    store.verify(repair=True)
    resealed = store.read_lease(record.id)
    assert resealed is not None and resealed.token == taken.token
    assert resealed.expires <= datetime.now(UTC)  # expired: the next writer may take it
    third = store.acquire_lease(record.id, request("333@gamma"))
    assert third.token == taken.token + 1
    for stale in (lease, taken):
        with pytest.raises(LeaseHeld):
            store.append(stale, [note("fenced")])


def test_threads_sharing_one_store_each_get_a_working_connection(store: SqliteStore) -> None:
    sessions = [new_session(store) for _ in range(4)]

    def write(lease: Lease) -> None:
        for n in range(50):
            store.append(lease, [note(f"{n}")])

    threads = [threading.Thread(target=write, args=(lease,)) for _, lease in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for record, _ in sessions:
        read = store.read_events(record.id)
        assert read.damage == []
        assert [e.payload.get("text") for e in read.events[1:]] == [str(n) for n in range(50)]


def test_connections_of_finished_threads_are_closed(store: SqliteStore) -> None:
    _, lease = new_session(store)
    open_files = len(os.listdir("/proc/self/fd"))
    for n in range(30):  # e.g. a server that starts a thread per request
        thread = threading.Thread(target=store.append, args=(lease, [note(f"{n}")]))
        thread.start()
        thread.join()
    assert len(os.listdir("/proc/self/fd")) - open_files < 5  # not 30 connections of 3 files each


def test_a_damaged_point_is_still_listed_but_never_loaded(store: SqliteStore, db: Path) -> None:
    record, _ = new_session(store)
    view = SessionView.replay(store.read_events(record.id).events)
    point = view.to_point(ids.make_recovery_id(record.id, auto_save=1), NOW, Trigger.AUTO)
    store.save_point(point)
    with pytest.raises(DuplicateRecord):
        store.save_point(point)
    flip_byte(db, "points", "body", "id = ?", (point.id,))
    assert [p.id for p in store.list_points(record.id)] == [point.id]
    with pytest.raises(CorruptRecord) as caught:
        store.load_point(point.id)
    assert caught.value.location == f"{db}:points/{point.id}"


def test_pruning_checks_the_point_it_just_saved_once_its_row_has_changed(
    store: SqliteStore, db: Path
) -> None:
    record, lease = new_session(store)
    saved = []
    for number in (1, 2):
        store.append(lease, [note(f"n{number}")])
        view = SessionView.replay(store.read_events(record.id).events)
        point_id = ids.make_recovery_id(record.id, auto_save=number)
        saved.append(view.to_point(point_id, NOW, Trigger.AUTO))
        store.save_point(saved[-1])
    # The body is intact, but its listing now claims another position in the journal.
    with raw(db) as conn:
        conn.execute("UPDATE points SET seq = 1 WHERE id = ?", (saved[1].id,))

    assert store.prune_points(record.id, keep_automatic=0) == [saved[1].id]
    assert [p.id for p in store.list_points(record.id)] == [saved[0].id]


def test_pruning_copes_with_a_point_another_process_pruned_meanwhile(
    store: SqliteStore, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record, lease = new_session(store)
    saved = []
    for number in (1, 2):
        store.append(lease, [note(f"n{number}")])
        view = SessionView.replay(store.read_events(record.id).events)
        point_id = ids.make_recovery_id(record.id, auto_save=number)
        saved.append(view.to_point(point_id, NOW, Trigger.AUTO))
        store.save_point(saved[-1])
    listing = sqlite_points._listing

    def listed_then_pruned_elsewhere(
        *args: Any,
    ) -> tuple[list[RecoveryPointInfo], bytes | None]:
        found = listing(*args)
        with raw(db) as conn:  # another process prunes between the listing and the check
            conn.execute("DELETE FROM points WHERE id = ?", (saved[1].id,))
        return found

    monkeypatch.setattr(sqlite_points, "_listing", listed_then_pruned_elsewhere)
    other = SqliteStore(db)  # remembers no point: it loads each one it checks
    assert other.prune_points(record.id, keep_automatic=0) == [saved[1].id]
    monkeypatch.setattr(sqlite_points, "_listing", listing)
    assert [p.id for p in other.list_points(record.id)] == [saved[0].id]
    other.close()


def test_a_point_named_after_another_session_is_refused(store: SqliteStore) -> None:
    record, _ = new_session(store)
    other, _ = new_session(store, holder="222@beta")
    view = SessionView.replay(store.read_events(record.id).events)
    point = view.to_point(ids.make_recovery_id(other.id, auto_save=1), NOW, Trigger.AUTO)
    with pytest.raises(InvalidInput, match="names another session"):
        store.save_point(point)
    assert store.list_points(record.id) == store.list_points(other.id) == []


def test_a_truncated_database_file_is_reported_as_damage(db: Path) -> None:
    store = SqliteStore(db)
    for _ in range(20):
        _, lease = new_session(store)
        store.append(lease, [note("x" * 2000) for _ in range(5)])
    store.close()
    os.truncate(db, db.stat().st_size // 2)

    # SQLite notices at once that the file is shorter than its header says.
    with pytest.raises(CorruptRecord) as caught:
        SqliteStore(db)
    assert caught.value.location == str(db)
    assert str(caught.value).startswith(f"{db} is damaged (database disk image is malformed)")
    assert "restore the file from a backup" in str(caught.value)


def test_a_garbled_page_is_reported_by_verify_and_refused_by_reads(db: Path) -> None:
    store = SqliteStore(db)
    for _ in range(20):
        new_session(store)
    store.close()
    with raw(db) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'sessions'").fetchone()
    with db.open("r+b") as file:
        file.seek((root[0] - 1) * page_size)
        file.write(bytes(range(256)) * (page_size // 256))

    store = SqliteStore(db)
    with pytest.raises(CorruptRecord, match="database disk image is malformed"):
        store.list_sessions()
    report = store.verify(repair=True)
    assert report.damage and all(d.kind == "integrity" for d in report.damage)
    assert f"sqlite3 {db} .recover" in report.damage[-1].detail
    assert report.quarantined == [] and report.repaired == []


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is empty \\(0 bytes\\)"), (b"not a database at all" * 100, "is damaged")],
)
def test_a_file_that_is_not_a_store_is_refused_not_replaced(
    db: Path, content: bytes, message: str
) -> None:
    db.write_bytes(content)
    with pytest.raises(CorruptRecord, match=message) as caught:
        SqliteStore(db).list_sessions()
    assert caught.value.location == str(db)
    assert db.read_bytes() == content


# -- concurrency and fencing ---------------------------------------------------


def test_eight_processes_creating_sessions_at_once_get_200_distinct_ids(db: Path) -> None:
    SqliteStore(db).close()
    go = db.with_name("go")
    creator = textwrap.dedent(
        f"""
        import json, time
        from datetime import UTC, datetime, timedelta
        from pathlib import Path
        from agent_continuity.model import SessionRecord
        from agent_continuity.storage import LeaseRequest
        from agent_continuity.storage.sqlite import SqliteStore
        now = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
        store = SqliteStore(Path({str(db)!r}))
        print("ready", flush=True)
        while not Path({str(go)!r}).exists():
            time.sleep(0.005)
        made = []
        for _ in range(25):
            req = LeaseRequest("p@h", None, "h", timedelta(minutes=5), now)
            made.append(store.create_session(SessionRecord(id="x", created=now,
                                             last_activity=now), req)[0].id)
        print(json.dumps(made), flush=True)
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", creator], stdout=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    go.touch()
    made = [json.loads(proc.communicate(timeout=120)[0]) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    every = [session_id for batch in made for session_id in batch]
    assert sorted(every) == [ids.make_session_id(NOW.date(), n) for n in range(1, 201)]
    assert len(SqliteStore(db).list_sessions()) == 200


def test_a_second_writer_is_refused_and_a_takeover_fences_the_first(db: Path) -> None:
    first, second = SqliteStore(db), SqliteStore(db)
    record, lease = new_session(first, holder="111@alpha")

    with pytest.raises(LeaseHeld, match="111@alpha") as caught:
        second.acquire_lease(record.id, request("222@beta", NOW + timedelta(minutes=1)))
    assert caught.value.holder == "111@alpha"

    taken = second.acquire_lease(record.id, request("222@beta"), steal=True)
    assert taken.token == lease.token + 1
    with pytest.raises(LeaseHeld, match="222@beta") as refused:
        first.append(lease, [note("late write from the old holder")])
    assert refused.value.holder == "222@beta"
    second.append(taken, [note("new holder")])

    events = first.read_events(record.id).events
    assert [e.kind for e in events] == [EventKind.SESSION, EventKind.LEASE, EventKind.NOTE]
    assert events[1].payload == {"token": 2, "holder": "222@beta"}
    assert events[2].payload == {"text": "new holder"}


def test_a_lock_held_beyond_the_busy_timeout_is_a_clear_error(db: Path) -> None:
    store = SqliteStore(db, busy_timeout=0.2)
    _, lease = new_session(store)
    with raw(db) as blocker:
        blocker.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        with pytest.raises(StoreError, match="stayed locked by another process"):
            store.append(lease, [note("waits")])
        assert time.monotonic() - started >= 0.2
        blocker.execute("ROLLBACK")
    assert store.append(lease, [note("goes through")])[0].seq == 2


# -- limits -------------------------------------------------------------------


def test_a_full_disk_raises_and_leaves_the_journal_as_it_was(store: SqliteStore, db: Path) -> None:
    record, lease = new_session(store)
    store.append(lease, [note("before")])
    conn = store._connection()  # SQLITE_FULL on demand: cap the file at its current size
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")

    with pytest.raises(StoreError, match="no space left") as caught:
        store.append(lease, [note("x" * 100_000), note("never half-written")])
    assert not isinstance(caught.value.__cause__, ContinuityError)

    read = SqliteStore(db).read_events(record.id)
    assert [e.payload.get("text") for e in read.events[1:]] == ["before"]
    assert read.damage == []
    conn.execute("PRAGMA max_page_count = 1073741823")
    assert store.append(lease, [note("after")])[0].seq == 3


def test_a_read_only_database_raises_and_keeps_its_data(store: SqliteStore) -> None:
    record, lease = new_session(store)
    store._connection().execute("PRAGMA query_only = ON")
    with pytest.raises(StoreError, match="cannot write"):
        store.append(lease, [note("refused")])
    with pytest.raises(StoreError, match="cannot write"):
        new_session(store)
    assert store.read_events(record.id).last_seq == 1
    assert [r.id for r in store.list_sessions()] == [record.id]


def test_unknown_sessions_and_closed_stores_say_what_to_do(store: SqliteStore) -> None:
    with pytest.raises(SessionNotFound, match="continuity list"):
        store.read_events("SESSION-261121-009")
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.list_sessions()
