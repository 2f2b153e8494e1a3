"""Small, exact checks behind the corruption suite: what counts as damage, what it says."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from chaos_support import (
    HERE,
    STORE_KINDS,
    cli_in_process,
    manager,
    store_url,
    subprocess_env,
)

from agent_continuity.errors import CorruptRecord
from agent_continuity.model import Event, EventKind
from agent_continuity.storage import codec


def _event_with_a_letter_in_its_checksum() -> bytes:
    for n in range(100):
        event = Event(seq=1, kind=EventKind.NOTE, at=datetime(2026, 1, 1, tzinfo=UTC), payload={})
        event.payload["n"] = n
        line = codec.encode_event(event)
        at = line.index(b'"crc":"') + len(b'"crc":"')
        if any(chr(c).isalpha() for c in line[at : at + 8]):
            return line
    raise AssertionError("no checksum with a letter in 100 tries")


def test_a_checksum_that_differs_only_in_letter_case_is_damage() -> None:
    """Bit 0x20 turns ``c`` into ``C``: the number is the same, the bytes are not ours."""
    line = _event_with_a_letter_in_its_checksum()
    at = line.index(b'"crc":"') + len(b'"crc":"')
    letter = next(i for i in range(8) if chr(line[at + i]).isalpha())
    damaged = bytearray(line)
    damaged[at + letter] ^= 0x20
    assert codec.decode_event(line).payload["n"] >= 0
    with pytest.raises(CorruptRecord, match="checksum"):
        codec.decode_event(bytes(damaged), "journal")


@pytest.mark.parametrize("record", ["registry", "lease", "snapshot"])
def test_a_damaged_file_says_which_and_what_to_do(tmp_path: Path, record: str) -> None:
    url = store_url("files", tmp_path)
    with manager(url, tmp_path) as mgr:
        session = mgr.start(task="TASK-1", owned_by_process=False, auto_save=False)
        session.save_context_snapshot()
        sid = session.id
    root = tmp_path / "tracking"
    path = {
        "registry": root / "sessions" / "session-registry.json",
        "lease": root / "sessions" / "leases" / f"{sid}.json",
        "snapshot": root / "snapshots" / "context-snapshots" / f"{sid}.json",
    }[record]
    path.write_bytes(path.read_bytes()[:-9])
    with manager(url, tmp_path) as mgr:
        if record == "snapshot":
            with pytest.raises(CorruptRecord) as caught:
                mgr.store.load_context_snapshot(sid)
            assert str(path) in str(caught.value)
            assert "`continuity verify --repair`" in str(caught.value)
            return
        # The registry and the lease are an index over the journal: it answers instead.
        if record == "registry":
            assert mgr.get(sid).context.current_task == "TASK-1"
        else:
            lease = mgr.store.read_lease(sid)
            assert lease is not None and (lease.token, lease.holder) == (1, "cli")
        [noted] = mgr.store.index_damage()
        assert noted.location == str(path) and "derived from" in noted.detail
        assert [d["location"] for d in mgr.verify()["damage"]] == [str(path)]
        # The session's own next command goes on, and its writes mend the record.
        mgr.attach(sid).set_phase("phase-2")
        assert mgr.verify()["damage"] == []
        assert mgr.get(sid).context.current_phase == "phase-2"
        assert "moved to" in mgr.store.index_damage()[0].detail
    assert len(list((root / "quarantine").iterdir())) == 1


def test_a_journal_cut_short_never_hands_out_numbers_a_point_covers(tmp_path: Path) -> None:
    """An older copy of a journal put back: new events go after the newest point, the loss
    is named by verify and by recovery, and replay from the point sees the new events."""
    url = store_url("files", tmp_path)
    with manager(url, tmp_path) as mgr:
        session = mgr.start(task="TASK-1", owned_by_process=False, auto_save=False)
        for n in range(6):
            session.add_message("user", f"message {n}")
        covered = mgr.store.load_point(session.checkpoint(observe=False)).seq
        sid = session.id
    journal = tmp_path / "tracking" / "snapshots" / "conversation-history" / f"{sid}.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:3]))
    with manager(url, tmp_path) as mgr:
        report = mgr.verify()
        assert [d["kind"] for d in report["damage"]] == ["truncated"]
        assert report["damage"][0]["location"] == str(journal)
        seq = mgr.attach(sid).add_message("user", "after the cut")
        assert seq > covered
        mgr.interrupt(sid, "chaos")
        result = mgr.recover(sid, answer=True)
        assert result.status == "partial"
        assert any("lost" in w for w in result.warnings), result.warnings
        assert "after the cut" in [m["text"] for m in mgr.load(sid).view.recent_messages]


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_damage_under_a_point_made_by_whoever_found_the_dead_writer_is_still_reported(
    kind: str, tmp_path: Path
) -> None:
    """A writer dies; its last event is damaged; the next process marks the session
    interrupted, which makes a new recovery point *over* the damage. Recovery from
    that point must still say what was lost, not report a clean success."""
    url = store_url(kind, tmp_path)
    died = subprocess.run(
        [sys.executable, str(HERE / "chaos_writer.py"), "die-mid-session", url, str(tmp_path)],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    sid = died.stdout.split()[1]
    if kind == "files":
        path = tmp_path / "tracking" / "snapshots" / "conversation-history" / f"{sid}.jsonl"
        data = bytearray(path.read_bytes())
        data[data.rindex(b'"text":"') + 10] ^= 0x01
        path.write_bytes(bytes(data))
    else:
        with sqlite3.connect(tmp_path / "continuity.db") as conn:
            seq, line = conn.execute(
                "SELECT seq, line FROM events WHERE journal ="
                " (SELECT id FROM journals WHERE session_id = ?) ORDER BY seq DESC LIMIT 1",
                (sid,),
            ).fetchone()
            damaged = bytearray(line)
            damaged[len(damaged) // 2] ^= 0x01
            conn.execute(
                "UPDATE events SET line = ?"
                " WHERE journal = (SELECT id FROM journals WHERE session_id = ?) AND seq = ?",
                (bytes(damaged), sid, seq),
            )
        conn.close()
    recovered = cli_in_process(["--store", url, "recover", sid, "--yes", "--json"], tmp_path)
    assert recovered.code == 0, recovered
    result = recovered.json()
    assert result["status"] == "partial", result["warnings"]
    assert any("journal damage (checksum)" in w for w in result["warnings"]), result["warnings"]


TORN_WRITER = """
import os, signal, sys
from pathlib import Path
from chaos_support import manager
mgr = manager(sys.argv[1], Path(sys.argv[2]), heartbeat_interval=3600.0)
session = mgr.start(task="TASK-1", auto_save=False)
session.add_message("user", "whole")
print(session.id, flush=True)
real_write = os.write
def torn(fd, data):
    # What SIGKILL does to a long write(): the first pages reach the file, the rest never.
    if len(data) > 100_000:
        real_write(fd, bytes(data)[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    return real_write(fd, data)
os.write = torn
session.add_message("user", "x" * 300_000)
"""


def test_an_append_cut_by_sigkill_mid_write_stays_visible_and_loses_nothing_acknowledged(
    tmp_path: Path,
) -> None:
    """SIGKILL can stop a long write() between pages. The first pages of that append
    (which never returned) are never read as an event, stay reported until repair
    quarantines them and puts a tombstone at their number, and nothing acknowledged
    is lost or renumbered."""
    url = store_url("files", tmp_path)
    died = subprocess.run(
        [sys.executable, "-c", TORN_WRITER, url, str(tmp_path)],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert died.returncode == -9, died.stderr
    sid = died.stdout.split()[0]
    journal = tmp_path / "tracking" / "snapshots" / "conversation-history" / f"{sid}.jsonl"
    fragment = journal.read_bytes().rsplit(b"\n", 1)[1]
    assert len(fragment) > 100_000
    with manager(url, tmp_path) as mgr:
        read = mgr.store.read_events(sid)
        assert [d.kind for d in read.damage] == ["torn-tail"]
        whole = read.last_seq
        assert read.events[-1].payload["text"] == "whole"
        mgr.detect_interruptions()  # the next writer: the fragment becomes a sealed bad line
        read = mgr.store.read_events(sid)
        assert {d.kind for d in read.damage} == {"checksum", "gap"}
        assert [e.seq for e in read.events][:whole] == list(range(1, whole + 1))
        assert read.events[whole].seq == whole + 2  # the torn append's number is not reused
        assert mgr.verify()["damage"]  # the gap is named until repair
        before = read.events
        report = mgr.verify(repair=True)
        assert any(fragment in Path(q).read_bytes() for q in report["quarantined"])
        assert mgr.verify()["damage"] == []
        read = mgr.store.read_events(sid)
        assert not read.damage
        assert [e.seq for e in read.events] == list(range(1, len(before) + 2))
        stone = read.events[whole]
        assert stone.kind is EventKind.NOTE and stone.seq == whole + 1
        assert stone.payload["lost"]["reason"] == "torn"
        assert fragment in Path(stone.payload["lost"]["quarantine"]).read_bytes()
        assert [e for e in read.events if e.seq != whole + 1] == before
