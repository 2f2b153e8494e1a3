"""What is particular to ``sqlite:///PATH``: the file, its damage, its locks, its limits.

The behaviour every store shares is in the conformance suite; these tests
poke the database file directly, kill real processes and exhaust real limits.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent_continuity import ids
from agent_continuity.errors import (
    ContinuityError,
    CorruptRecord,
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
    Trigger,
)
from agent_continuity.replay import SessionView
from agent_continuity.storage.sqlite import SqliteStore
from sqlite_support import JOURNAL_OF, NOW, flip_byte, new_session, note, raw, request


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def store(db: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(db)
    yield opened
    opened.close()


# -- the file -----------------------------------------------------------------


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
    # The next writer asks at the real time: the repair sealed it expired as of then.
    third = store.acquire_lease(record.id, request("333@gamma", now=datetime.now(UTC)))
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
