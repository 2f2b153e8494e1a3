"""The files store beyond the shared contract: its layout on disk, damage, repair, failures."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agent_continuity.errors import CorruptRecord, LeaseHeld, StoreError
from agent_continuity.model import (
    ContextSnapshot,
    EventDraft,
    EventKind,
    Lease,
    SessionRecord,
    SessionStatus,
)
from agent_continuity.storage import codec, files_flusher
from agent_continuity.storage.files import FileStore
from agent_continuity.testing.conformance import (
    BOB,
    T0,
    draft_record,
    lease_request,
    make_point,
    message,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "tracking"


@pytest.fixture
def store(root: Path) -> Iterator[FileStore]:
    opened = FileStore(root)
    yield opened
    opened.close()


@pytest.fixture
def session(store: FileStore) -> tuple[SessionRecord, Lease]:
    record, lease = store.create_session(draft_record(), lease_request())
    store.append(lease, [message(f"message {n}", n) for n in range(2, 7)])  # seq 2..6
    return record, lease


def journal(root: Path, session_id: str) -> Path:
    return root / "snapshots" / "conversation-history" / f"{session_id}.jsonl"


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def fail_os(
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    code: int,
    *,
    after: int = 0,
    partial: bool = False,
) -> None:
    """Make ``os.<name>`` fail with ``code`` after ``after`` successful calls.

    With ``partial``, the failing ``os.write`` first writes half its bytes, as a
    disk filling up mid-write does.
    """
    real = getattr(os, name)
    calls = {"n": 0}

    def failing(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= after:
            return real(*args)
        if partial and name == "write":
            fd, data = args
            real(fd, bytes(data[: len(data) // 2]))
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, name, failing)


# -- layout -------------------------------------------------------------------


def test_a_new_session_lays_out_the_specification_folders(
    root: Path, store: FileStore, session: tuple[SessionRecord, Lease]
) -> None:
    record, _ = session
    for folder in (
        "sessions/session-archive",
        "snapshots/context-snapshots",
        "snapshots/conversation-history",
        "snapshots/recovery-points",
        "recovery/recovery-logs",
        "recovery/emergency-backups",
    ):
        assert (root / folder).is_dir(), folder
    raw = json.loads((root / "sessions" / "session-registry.json").read_text())
    assert raw["checksum"].startswith("sha256:")
    registry = raw["sessionRegistry"]
    assert registry["metadata"] == {
        "totalSessions": 1,
        "activeSessions": 1,
        "lastSessionId": record.id,
        "systemVersion": "1.0",
    }
    assert registry["sessions"][record.id]["context"]["currentTask"] == "TASK-6-004"
    active = codec.load_document((root / "sessions" / "active-sessions.json").read_bytes())
    assert active == {"activeSessions": [record.id]}
    protocols = json.loads((root / "recovery" / "recovery-protocols.json").read_text())
    assert protocols["recoveryProtocols"]["quickRecovery"]["timeLimit"] == "24 hours"
    assert set(protocols["recoveryProtocols"]) == {
        "quickRecovery",
        "fullRecovery",
        "emergencyRecovery",
    }


def test_the_journal_is_plain_json_lines(root: Path, session: tuple[SessionRecord, Lease]) -> None:
    record, _ = session
    lines = journal(root, record.id).read_text(encoding="utf-8").splitlines()
    parsed = [json.loads(line) for line in lines]
    assert [p["seq"] for p in parsed] == [1, 2, 3, 4, 5, 6]
    assert parsed[1]["payload"] == {"role": "user", "text": "message 2"}
    assert all(set(p) == {"seq", "kind", "at", "payload", "crc"} for p in parsed)


def test_registry_counts_follow_put_session_and_completed_sessions_are_archived(
    root: Path, store: FileStore, session: tuple[SessionRecord, Lease]
) -> None:
    record, _ = session
    store.create_session(draft_record(), lease_request())
    store.put_session(record.model_copy(update={"status": SessionStatus.COMPLETED}))
    metadata = json.loads((root / "sessions" / "session-registry.json").read_text())
    assert metadata["sessionRegistry"]["metadata"]["totalSessions"] == 2
    assert metadata["sessionRegistry"]["metadata"]["activeSessions"] == 1
    assert metadata["sessionRegistry"]["metadata"]["lastSessionId"] == "SESSION-241124-002"
    archived = root / "sessions" / "session-archive" / f"{record.id}.json"
    assert codec.load_document(archived.read_bytes())["status"] == "completed"
    active = codec.load_document((root / "sessions" / "active-sessions.json").read_bytes())
    assert active == {"activeSessions": ["SESSION-241124-002"]}


def test_points_are_listed_from_their_file_names(
    root: Path,
    store: FileStore,
    session: tuple[SessionRecord, Lease],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record, _ = session
    info = store.save_point(make_point(store, record.id, 1))
    assert Path(info.location).name == (
        "RECOVERY-241124-001-AUTO-SAVE-1.seq6.20241124T101001000Z.auto.json.gz"
    )
    monkeypatch.setattr(codec, "load_compressed", None)  # listing must not open a body
    assert store.list_points(record.id) == [info]


# -- damage ---------------------------------------------------------------------


def test_a_torn_tail_names_the_file_keeps_every_earlier_event_and_stays_visible(
    root: Path, store: FileStore, session: tuple[SessionRecord, Lease]
) -> None:
    record, _ = session
    path = journal(root, record.id)
    os.truncate(path, path.stat().st_size - 9)
    read = store.read_events(record.id)
    assert [e.seq for e in read.events] == [1, 2, 3, 4, 5]
    assert [(d.kind, d.location) for d in read.damage] == [("torn-tail", str(path))]
    assert [(d.kind, d.location) for d in FileStore(root).verify().damage] == [
        ("torn-tail", str(path))
    ]
    # The next append starts on a fresh line and never reuses the torn event's number.
    fresh = FileStore(root)
    taken = fresh.acquire_lease(record.id, lease_request(BOB), steal=True)
    assert [e.seq for e in fresh.append(taken, [message("after the crash")])] == [8]
    read = store.read_events(record.id)
    assert [e.seq for e in read.events] == [1, 2, 3, 4, 5, 7, 8]
    assert {d.kind for d in read.damage} == {"checksum", "gap"}
    assert all(d.location == str(path) for d in read.damage)
    fresh.close()


def test_a_flipped_byte_in_a_point_is_caught_by_load_and_verify(
    store: FileStore, session: tuple[SessionRecord, Lease]
) -> None:
    record, _ = session
    info = store.save_point(make_point(store, record.id, 1))
    data = bytearray(Path(info.location).read_bytes())
    data[len(data) // 2] ^= 0x01
    Path(info.location).write_bytes(bytes(data))
    with pytest.raises(CorruptRecord) as refused:
        store.load_point(info.id)
    assert refused.value.location == info.location
    assert [d.location for d in store.verify().damage] == [info.location]


def test_pruning_trusts_a_point_it_wrote_only_while_the_file_holds_what_it_wrote(
    store: FileStore, session: tuple[SessionRecord, Lease], monkeypatch: pytest.MonkeyPatch
) -> None:
    record, _ = session
    saved = [store.save_point(make_point(store, record.id, n)) for n in (1, 2)]
    real_load = codec.load_compressed
    monkeypatch.setattr(codec, "load_compressed", None)  # the newest is this store's own write
    assert store.prune_points(record.id, keep_automatic=1) == [saved[0].id]
    monkeypatch.setattr(codec, "load_compressed", real_load)
    third = store.save_point(make_point(store, record.id, 3))
    # Replaced behind the store's back (a new file, as `cp` or a git checkout leaves
    # it): a valid gzip point, but not the one its name promises.
    swapped = Path(third.location).with_name(".swap.tmp")
    swapped.write_bytes(Path(saved[1].location).read_bytes())
    os.replace(swapped, third.location)
    assert store.prune_points(record.id, keep_automatic=1) == []  # the newest valid is kept
    assert store.load_point(saved[1].id).seq == 6
    with pytest.raises(CorruptRecord):
        store.load_point(third.id)


def quarantined(root: Path) -> list[bytes]:
    folder = root / "quarantine"
    return [p.read_bytes() for p in sorted(folder.iterdir())] if folder.exists() else []


def test_a_damaged_lease_is_read_from_the_journal_and_its_holder_writes_on(
    root: Path, store: FileStore, session: tuple[SessionRecord, Lease]
) -> None:
    record, alice = session
    bob = FileStore(root).acquire_lease(record.id, lease_request(BOB), steal=True)  # event 7
    lease_file = root / "sessions" / "leases" / f"{record.id}.json"
    damaged = lease_file.read_bytes().replace(b"bob", b"eve")
    lease_file.write_bytes(damaged)

    other = FileStore(root)
    derived = other.read_lease(record.id)
    assert derived is not None and (derived.token, derived.holder) == (bob.token, BOB)
    # Held until 30 minutes after the journal's last event (message 6, at T0 + 6 min).
    assert derived.expires == T0 + timedelta(minutes=36)
    assert [e.seq for e in other.append(bob, [message("bob goes on")])] == [8]
    with pytest.raises(LeaseHeld):
        other.append(alice, [message("fenced long ago")])
    with pytest.raises(LeaseHeld, match=BOB):
        other.acquire_lease(record.id, lease_request("carol@host-c", T0 + timedelta(minutes=9)))
    assert [(d.location, d.kind) for d in other.index_damage()] == [(str(lease_file), "checksum")]
    assert [d.location for d in other.verify().damage] == [str(lease_file)]

    # Bob's heartbeat writes a sound document again; the damaged one is kept aside.
    other.renew_lease(bob, lease_request(BOB, T0 + timedelta(minutes=10)))
    assert quarantined(root) == [damaged]
    assert other.verify().ok
    assert "moved to" in other.index_damage()[0].detail


@pytest.mark.parametrize("damage", ["flipped", "deleted"])
def test_a_takeover_over_a_damaged_lease_fences_every_earlier_writer(
    root: Path, store: FileStore, session: tuple[SessionRecord, Lease], damage: str
) -> None:
    record, alice = session  # token 1, the creator's: no lease event in the journal
    lease_file = root / "sessions" / "leases" / f"{record.id}.json"
    before = lease_file.read_bytes()
    if damage == "deleted":
        lease_file.unlink()
    else:
        lease_file.write_bytes(before[:-20])
    other = FileStore(root)
    current = other.read_lease(record.id)
    assert current is not None and current.token == 1

    # The owner was found dead: whatever token it held, the new one is higher.
    taken = other.acquire_lease(record.id, lease_request(BOB), steal=True, expect_token=1)

    assert taken.token > 6  # above every number the journal handed out
    for stale in (alice, taken.model_copy(update={"token": 1})):
        with pytest.raises(LeaseHeld):
            FileStore(root).append(stale, [message("interleaved?")])
    assert [e.seq for e in other.append(taken, [message("bob's")])] == [8]
    assert quarantined(root) == ([before[:-20]] if damage == "flipped" else [])
    assert other.read_lease(record.id) == taken
    assert other.verify().ok


def test_repair_rebuilds_a_damaged_lease_as_expired_with_the_journal_token(
    root: Path, store: FileStore, session: tuple[SessionRecord, Lease]
) -> None:
    record, _ = session
    FileStore(root).acquire_lease(record.id, lease_request(BOB), steal=True)
    lease_file = root / "sessions" / "leases" / f"{record.id}.json"
    lease_file.write_bytes(lease_file.read_bytes().replace(b"bob", b"eve"))
    report = store.verify(repair=True)
    assert [d.location for d in report.damage] == [str(lease_file)]
    rebuilt = store.read_lease(record.id)
    assert rebuilt is not None and (rebuilt.token, rebuilt.holder) == (2, BOB)
    again = store.acquire_lease(record.id, lease_request(now=T0))  # rebuilt leases are expired
    assert again.token == 3


# -- repair -----------------------------------------------------------------------


def _decide(store: FileStore, lease: Lease, text: str) -> None:
    store.append(lease, [EventDraft(kind=EventKind.DECISION, at=T0, payload={"text": text})])


@pytest.mark.parametrize("damage", ["deleted", "flipped"])
def test_repair_rebuilds_the_registry_from_points_and_journals(
    root: Path, store: FileStore, session: tuple[SessionRecord, Lease], damage: str
) -> None:
    record, lease = session
    _decide(store, lease, "Use SQLite for tests")
    store.save_point(make_point(store, record.id, 1))
    _decide(store, lease, "Keep the files store as default")  # only in the journal
    second, _ = store.create_session(draft_record(), lease_request())
    registry = root / "sessions" / "session-registry.json"
    damaged = registry.read_bytes().replace(b'"totalSessions": 2', b'"totalSessions": 3')
    if damage == "deleted":
        registry.unlink()
    else:
        registry.write_bytes(damaged)
    reader = FileStore(root)
    derived = reader.get_session(record.id)  # read from the point and the journal after it
    assert derived.context.key_decisions[-1] == "Keep the files store as default"
    assert [r.id for r in reader.list_sessions()] == [record.id, second.id]
    assert [d.location for d in reader.index_damage()] == [str(registry)]
    assert registry.exists() == (damage == "flipped")  # reads never write

    report = FileStore(root).verify(repair=True)

    assert [d.location for d in report.damage] == [str(registry)]
    if damage == "flipped":
        assert [Path(q).read_bytes() for q in report.quarantined] == [damaged]
    reopened = FileStore(root)
    rebuilt = reopened.get_session(record.id)
    assert rebuilt.context.key_decisions[-2:] == [
        "Use SQLite for tests",
        "Keep the files store as default",
    ]
    assert rebuilt.last_seq == 8
    assert [r.id for r in reopened.list_sessions()] == [record.id, second.id]
    assert reopened.verify().ok


@pytest.mark.parametrize("damage", ["flipped", "deleted", "not-a-registry"])
@pytest.mark.parametrize("write", ["create", "put"])
def test_a_write_quarantines_a_damaged_registry_and_rebuilds_it_first(
    root: Path, store: FileStore, session: tuple[SessionRecord, Lease], damage: str, write: str
) -> None:
    record, _ = session
    second, _ = store.create_session(draft_record(), lease_request())
    registry = root / "sessions" / "session-registry.json"
    damaged = {
        "flipped": registry.read_bytes().replace(b'"totalSessions": 2', b'"totalSessions": 0'),
        "deleted": None,
        "not-a-registry": codec.dump_document({"sessionRegistry": []}),
    }[damage]
    if damaged is None:
        registry.unlink()
    else:
        registry.write_bytes(damaged)

    writer = FileStore(root)
    changed = second.model_copy(update={"type": "changed by put"})
    if write == "create":
        third, _ = writer.create_session(draft_record(), lease_request())
        assert third.id == "SESSION-241124-003"  # the journals' ids are never handed out again
        expected = [record.id, second.id, third.id]
    else:
        writer.put_session(changed)
        expected = [record.id, second.id]

    reader = FileStore(root)
    assert [r.id for r in reader.list_sessions()] == expected
    assert reader.get_session(record.id).last_seq == 6  # rebuilt from its journal
    if write == "put":
        assert reader.get_session(second.id) == changed
    assert quarantined(root) == ([damaged] if damaged is not None else [])
    [noted] = writer.index_damage()
    assert noted.location == str(registry) and "rebuilt from the journals" in noted.detail
    assert reader.verify().ok and not reader.index_damage()


def test_a_damaged_active_list_is_kept_aside_when_a_write_replaces_it(
    root: Path, store: FileStore, session: tuple[SessionRecord, Lease]
) -> None:
    record, _ = session
    active = root / "sessions" / "active-sessions.json"
    damaged = active.read_bytes().replace(b"SESSION", b"SESSIoN")
    active.write_bytes(damaged)
    assert [d.location for d in FileStore(root).verify().damage] == [str(active)]

    store.put_session(record.model_copy(update={"status": SessionStatus.COMPLETED}))

    assert quarantined(root) == [damaged]
    assert json.loads(active.read_text())["activeSessions"] == []
    assert FileStore(root).verify().ok


def test_repair_quarantines_damaged_lines_and_keeps_every_valid_event(
    root: Path, store: FileStore, session: tuple[SessionRecord, Lease]
) -> None:
    record, lease = session
    path = journal(root, record.id)
    data = bytearray(path.read_bytes())
    third = data.index(b'{"seq":3,')
    bad_line = data[third : data.index(b"\n", third) + 1]
    data[third + 40] ^= 0x20
    torn = b'{"seq":7,"kind":"message","at":"2024-11-24'
    path.write_bytes(bytes(data) + torn)
    valid_before = store.read_events(record.id).events

    report = store.verify(repair=True)

    assert sorted(d.kind for d in report.damage) == ["checksum", "gap", "torn-tail"]
    (quarantined,) = report.quarantined
    assert Path(quarantined).parent == root / "quarantine"
    kept = Path(quarantined).read_bytes()
    assert kept.startswith(bytes(bad_line[:40])) and kept.endswith(torn + b"\n")
    # Each lost number now holds a tombstone that names the quarantine; the rest is as it was.
    read = store.read_events(record.id)
    assert [e for e in read.events if e.seq not in (3, 7)] == valid_before
    assert [e.seq for e in read.events] == [1, 2, 3, 4, 5, 6, 7]
    lost = {e.seq: e.payload["lost"] for e in read.events if e.kind is EventKind.NOTE}
    assert {seq: (x["reason"], x["quarantine"]) for seq, x in lost.items()} == {
        3: ("checksum", quarantined),
        7: ("torn", quarantined),
    }
    assert store.verify().ok
    # The writer that was holding the journal open now appends to the repaired file.
    assert [e.seq for e in store.append(lease, [message("after repair")])] == [8]
    assert [e.seq for e in FileStore(root).read_events(record.id).events] == list(range(1, 9))


def test_repair_closes_a_gap_an_earlier_repair_left(
    root: Path, store: FileStore, session: tuple[SessionRecord, Lease]
) -> None:
    record, _ = session
    path = journal(root, record.id)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:3] + lines[4:]))  # event 4 gone, no damaged bytes left

    report = store.verify(repair=True)

    assert [d.kind for d in report.damage] == ["gap"] and not report.quarantined
    stone = store.read_events(record.id).events[3]
    assert stone.seq == 4 and stone.payload["lost"]["reason"] == "missing"
    assert stone.payload["lost"]["quarantine"] is None
    assert store.verify().ok


def test_repair_closes_a_journal_cut_short_up_to_what_a_point_saw(
    root: Path, store: FileStore, session: tuple[SessionRecord, Lease]
) -> None:
    record, _ = session
    store.save_point(make_point(store, record.id, 1))  # covers event 6
    path = journal(root, record.id)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:4]))  # an older copy put back: events 5 and 6 gone

    assert [d.kind for d in store.verify().damage] == ["truncated"]
    store.verify(repair=True)

    events = store.read_events(record.id).events
    assert [(e.seq, e.payload.get("lost", {}).get("reason")) for e in events[4:]] == [
        (5, "truncated"),
        (6, "truncated"),
    ]
    assert store.verify().ok


def test_repair_moves_damaged_documents_aside_and_rewrites_derivable_ones(
    root: Path, store: FileStore, session: tuple[SessionRecord, Lease]
) -> None:
    record, _ = session
    info = store.save_point(make_point(store, record.id, 1))
    Path(info.location).write_bytes(b"not gzip")
    store.log_recovery({"sessionId": record.id, "decision": "auto-resume"})
    log = root / "recovery" / "recovery-logs" / "recovery-log.jsonl"
    with log.open("ab") as handle:
        handle.write(b'{"sessionId":"torn\n')
    store.log_recovery({"sessionId": record.id, "decision": "prompt"})
    protocols = root / "recovery" / "recovery-protocols.json"
    protocols.write_text("{}")

    report = store.verify(repair=True)

    assert {d.location for d in report.damage} == {info.location, str(log), str(protocols)}
    assert len(report.quarantined) == 3
    assert store.list_points(record.id) == []
    assert [e["decision"] for e in store.read_recovery_log()] == ["auto-resume", "prompt"]
    assert json.loads(protocols.read_text())["recoveryProtocols"]["fullRecovery"]
    assert store.verify().ok


# -- failures leave the store as it was --------------------------------------------


@pytest.mark.parametrize(
    ("name", "code", "partial"),
    [
        ("write", errno.ENOSPC, False),
        ("write", errno.ENOSPC, True),
        ("fdatasync", errno.EIO, False),
    ],
)
def test_a_failed_append_raises_and_leaves_the_journal_as_it_was(
    root: Path,
    store: FileStore,
    session: tuple[SessionRecord, Lease],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    code: int,
    partial: bool,
) -> None:
    record, lease = session
    before = journal(root, record.id).read_bytes()
    with monkeypatch.context() as patch:
        fail_os(patch, name, code, partial=partial)
        with pytest.raises(StoreError) as refused:
            store.append(lease, [message("lost?")])
    assert str(journal(root, record.id)) in str(refused.value)
    assert ("disk is full" if code == errno.ENOSPC else "I/O error") in str(refused.value)
    assert journal(root, record.id).read_bytes() == before
    assert [e.seq for e in store.append(lease, [message("retried")])] == [7]
    assert store.read_events(record.id).damage == []


@pytest.mark.parametrize("action", ["put_session", "save_point", "snapshot", "create", "lease"])
def test_a_failed_document_write_raises_and_changes_nothing(
    root: Path,
    store: FileStore,
    session: tuple[SessionRecord, Lease],
    monkeypatch: pytest.MonkeyPatch,
    action: str,
) -> None:
    record, lease = session
    calls: dict[str, Callable[[], object]] = {
        "put_session": lambda: store.put_session(record.model_copy(update={"type": "x"})),
        "save_point": lambda: store.save_point(make_point(store, record.id, 1)),
        "snapshot": lambda: store.save_context_snapshot(
            ContextSnapshot(session_id=record.id, timestamp=T0)
        ),
        "create": lambda: store.create_session(draft_record(), lease_request()),
        "lease": lambda: store.acquire_lease(record.id, lease_request(BOB), steal=True),
    }
    before = files_under(root)
    with monkeypatch.context() as patch:
        fail_os(patch, "replace", errno.EACCES)
        with pytest.raises(StoreError, match="permission denied"):
            calls[action]()
    after = files_under(root)
    assert after == before
    # The store still works, and the old writer still holds its lease.
    assert [e.seq for e in store.append(lease, [message("still here")])] == [7]


def test_a_write_that_cannot_lock_raises_store_error(
    root: Path,
    store: FileStore,
    session: tuple[SessionRecord, Lease],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, lease = session
    fresh = FileStore(root)
    fail_os(monkeypatch, "open", errno.EMFILE)
    with pytest.raises(StoreError, match="too many open files"):
        fresh.append(lease, [message("x")])


# -- batched mode and kill -9 -----------------------------------------------------


def _spy_fdatasync(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    synced: list[int] = []
    real = os.fdatasync

    def spy(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", spy)
    return synced


def test_batched_appends_are_written_at_once_and_synced_later(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files_flusher, "FLUSH_INTERVAL", 3600.0)  # the flusher waits; we watch
    store = FileStore(root, durability="batched")
    record, lease = store.create_session(draft_record(), lease_request())
    synced = _spy_fdatasync(monkeypatch)
    for n in range(200):
        store.append(lease, [message(f"m{n}")])
    # In the file already (what kill -9 cannot take), and not one fdatasync per append.
    assert FileStore(root).read_events(record.id).last_seq == 201
    assert synced == []
    # A recovery point never covers events a power loss could still take back.
    store.save_point(make_point(store, record.id, 1))
    assert len(synced) == 1
    store.append(lease, [message("last")])
    store.close()  # flushes what is left
    assert len(synced) == 2


def test_the_batched_flusher_syncs_within_its_interval(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStore(root, durability="batched")
    _, lease = store.create_session(draft_record(), lease_request())
    synced = _spy_fdatasync(monkeypatch)
    store.append(lease, [message("soon durable")])
    deadline = time.monotonic() + 5
    while not synced and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(synced) == 1
    store.close()


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from agent_continuity.storage.files import FileStore
    from agent_continuity.testing.conformance import draft_record, lease_request, message
    store = FileStore(Path(sys.argv[1]), durability=sys.argv[2])
    record, lease = store.create_session(draft_record(), lease_request())
    print(record.id, flush=True)
    n = 0
    while True:
        n += 1
        (event,) = store.append(lease, [message("x" * (n % 1000) + str(n))])
        print(event.seq, flush=True)
    """
)


@pytest.mark.parametrize("durability", ["sync", "batched"])
def test_kill_9_loses_no_acknowledged_event_and_tears_no_line(root: Path, durability: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(root), durability],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    session_id = child.stdout.readline().strip()
    acknowledged = 0
    while acknowledged < 300:
        acknowledged = int(child.stdout.readline())
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    read = FileStore(root).read_events(session_id)
    assert read.damage == []
    assert read.last_seq >= acknowledged
    assert [e.seq for e in read.events] == list(range(1, read.last_seq + 1))


def test_repair_moves_only_stale_temporary_files_aside(root: Path, store: FileStore) -> None:
    stale = root / "sessions" / ".session-registry.json.999.1.tmp"
    fresh = root / "sessions" / "leases" / ".SESSION-241124-001.json.999.2.tmp"
    for path in (stale, fresh):
        path.write_bytes(b'{"half a wri')
    os.utime(stale, (time.time() - 3600, time.time() - 3600))

    report = store.verify(repair=True)

    assert not stale.exists() and fresh.exists()  # a fresh one may be a write in progress
    assert [Path(q).read_bytes() for q in report.quarantined] == [b'{"half a wri']


TAKEOVER_SCRIPT = textwrap.dedent(
    """
    import sys
    from datetime import timedelta
    from pathlib import Path
    from agent_continuity.errors import LeaseHeld
    from agent_continuity.model import EventDraft, EventKind
    from agent_continuity.storage.files import FileStore
    from agent_continuity.testing.conformance import T0, lease_request
    root, session_id, name = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    store = FileStore(root, durability=sys.argv[4])
    for round_ in range(40):
        lease = store.acquire_lease(session_id, lease_request(name), steal=True)
        for n in range(5):
            note = EventDraft(kind=EventKind.NOTE, at=T0,
                              payload={"text": f"{name} {round_}.{n}", "token": lease.token})
            try:
                store.append(lease, [note])
            except LeaseHeld:
                break
    """
)


@pytest.mark.parametrize("durability", ["sync", "batched"])
def test_writers_stealing_from_each_other_never_interleave(
    root: Path, store: FileStore, durability: str
) -> None:
    # Batched writers keep the session's lock between appends: a takeover must
    # still get it, and the writer it took the session from must be fenced.
    record, _ = store.create_session(draft_record(), lease_request())
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", TAKEOVER_SCRIPT, str(root), record.id, name, durability]
        )
        for name in ("w1@a", "w2@b", "w3@c")
    ]
    assert [w.wait(120) for w in writers] == [0, 0, 0]
    read = store.read_events(record.id)
    assert read.damage == []
    current, takeovers, notes = 1, 0, 0
    for event in read.events[1:]:
        if event.kind is EventKind.LEASE:
            assert event.payload["token"] == current + 1
            current, takeovers = event.payload["token"], takeovers + 1
        else:  # every note was written under the lease in force at its place in the journal
            assert event.payload["token"] == current, event
            notes += 1
    assert takeovers == 120 and notes > 0
