"""A damaged index never stops the command line: the journals answer instead.

The registry (``session-registry.json``; in SQLite a ``sessions`` row) and
the lease documents are an index over the journals. Here they are damaged on
disk (bytes flipped, files deleted) under real ``continuity`` processes and a
real writer process, and:

* ``list``, ``start`` and ``recover`` work, from what the journals say;
* the recovered session holds every event its writer was acknowledged;
* no id is handed out twice;
* a live writer whose lease document is damaged keeps its session: nobody
  takes it over or writes between its events;
* ``verify`` names the damage until a write or ``verify --repair`` mends it,
  and the damaged bytes end up in the quarantine, never deleted.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from chaos_support import (
    FIGURES,
    CliResult,
    assert_one_clear_error_line,
    manager,
    run_cli,
    store_url,
    subprocess_env,
)

from agent_continuity.model import EventKind

# Starts a session owned by this process, writes to it, prints its id, then
# follows stdin: "msg TEXT" appends a message and prints its number.
WRITER = """
import sys
from pathlib import Path
from chaos_support import manager
mgr = manager(sys.argv[1], Path(sys.argv[2]), heartbeat_interval=3600.0)
session = mgr.start(task="TASK-DAMAGE", phase="phase-1", auto_save=False)
for n in range(5):
    session.add_message("user", f"message {n}")
session.decide("keep the journal as the truth")
session.checkpoint(observe=False)
session.add_message("assistant", "after the point")
print(session.id, flush=True)
for line in sys.stdin:
    verb, _, text = line.strip().partition(" ")
    if verb == "msg":
        print(session.add_message("user", text), flush=True)
"""
WRITTEN = [f"message {n}" for n in range(5)] + ["after the point"]


@dataclass
class Store:
    kind: str
    base: Path

    @property
    def url(self) -> str:
        return store_url(self.kind, self.base)

    @property
    def project(self) -> Path:
        return self.base / "project"

    def cli(self, *args: str) -> CliResult:
        return run_cli(["--store", self.url, *args], self.project)


class Writer:
    """The writer process: alive until :meth:`kill`."""

    def __init__(self, store: Store) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, store.url, str(store.project)],
            env=subprocess_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.session_id = self.proc.stdout.readline().strip()
        assert self.session_id.startswith("SESSION-"), self.proc.stderr

    def message(self, text: str) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"msg {text}\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=60)
        assert self.proc.returncode == -signal.SIGKILL


def make_store(kind: str, base: Path) -> tuple[Store, str]:
    """A store with one ended session (made by the command line, so numbered first)."""
    store = Store(kind, base)
    store.project.mkdir(parents=True)
    ended = store.cli("start", "--task", "TASK-ENDED", "--json")
    assert ended.code == 0, ended
    assert store.cli("end").code == 0
    return store, str(ended.json()["sessionId"])


def flip(data: bytes) -> bytes:
    """One letter in the middle changes case: still JSON-looking, no longer what was sealed."""
    damaged = bytearray(data)
    for index in range(len(damaged) // 2, len(damaged)):
        if chr(damaged[index]).isalpha():
            damaged[index] ^= 0x20
            return bytes(damaged)
    raise AssertionError("nothing to flip")


def damage_index(
    store: Store, session_id: str, how: str, records: tuple[str, ...] = ("registry", "lease")
) -> tuple[list[str], list[bytes]]:
    """Damage the registry and the session's lease; return what verify must name and
    the damaged bytes the quarantine must end up holding."""
    if store.kind == "sqlite":
        db = store.base / "continuity.db"
        kept = []
        tables = {"registry": ("sessions", "id"), "lease": ("leases", "session_id")}
        with sqlite3.connect(db) as conn:
            for table, key in (tables[r] for r in records):
                (doc,) = conn.execute(
                    f"SELECT doc FROM {table} WHERE {key} = ?", (session_id,)
                ).fetchone()
                kept.append(flip(bytes(doc)))
                conn.execute(f"UPDATE {table} SET doc = ? WHERE {key} = ?", (kept[-1], session_id))
        conn.close()
        return [f"{db}:{tables[r][0]}/{session_id}" for r in records], kept
    sessions = store.base / "tracking" / "sessions"
    files = {
        "registry": sessions / "session-registry.json",
        "lease": sessions / "leases" / f"{session_id}.json",
    }
    paths = [files[r] for r in records]
    if how == "delete":
        for path in paths:
            path.unlink()
        return [str(p) for p in paths], []
    kept = [flip(path.read_bytes()) for path in paths]
    for path, data in zip(paths, kept, strict=True):
        path.write_bytes(data)
    return [str(p) for p in paths], kept


def quarantined(store: Store) -> list[bytes]:
    if store.kind == "sqlite":
        with sqlite3.connect(store.base / "continuity.db") as conn:
            found = [bytes(row[0]) for row in conn.execute("SELECT data FROM quarantine")]
        conn.close()
        return found
    folder = store.base / "tracking" / "quarantine"
    return [p.read_bytes() for p in folder.iterdir()] if folder.exists() else []


@pytest.mark.parametrize(
    ("kind", "how"), [("files", "flip"), ("files", "delete"), ("sqlite", "flip")]
)
def test_list_start_and_recover_work_from_the_journals_and_repair_leaves_a_clean_store(
    kind: str, how: str, tmp_path: Path
) -> None:
    store, ended = make_store(kind, tmp_path)
    writer = Writer(store)
    sid = writer.session_id
    writer.kill()  # its session is left active, leased to a process that is gone
    named, damaged = damage_index(store, sid, how)

    # verify names both records; nothing is repaired by looking.
    checked = store.cli("verify", "--json")
    assert checked.code == 1
    assert set(named) <= {d["location"] for d in checked.json()["damage"]}, checked.json()

    listed = store.cli("list", "--json")
    assert listed.code == 0, listed
    sessions = {s["id"]: s for s in listed.json()["sessions"]}
    assert sorted(sessions) == sorted([ended, sid])
    assert sessions[ended]["status"] == "completed"
    assert sessions[sid]["status"] == "interrupted"  # its dead owner was noticed

    started = store.cli("start", "--task", "TASK-NEW", "--json")
    assert started.code == 0, started
    fresh = started.json()["sessionId"]
    assert fresh not in (ended, sid)
    assert int(fresh.rsplit("-", 1)[1]) == 3  # the next number, none reused

    recovered = store.cli("recover", sid, "--yes", "--json")
    assert recovered.code == 0, recovered
    result = recovered.json()
    assert result["sessionId"] == sid and result["outcome"] == "restored", result
    assert result["status"] != "failed", result["warnings"]

    with manager(store.url, store.project) as mgr:
        read = mgr.store.read_events(sid)
        assert not read.damage
        texts = [e.payload["text"] for e in read.events if e.kind is EventKind.MESSAGE]
        assert texts == WRITTEN
        assert [e.seq for e in read.events] == list(range(1, len(read.events) + 1))
        record = mgr.get(sid)
        assert record.status.value == "active" and record.context.current_task == "TASK-DAMAGE"
        assert record.context.key_decisions[-1] == "keep the journal as the truth"
        assert len({r.id for r in mgr.sessions()}) == 3

    repaired = store.cli("verify", "--repair", "--json")
    assert repaired.code == 0, repaired
    clean = store.cli("verify", "--json")
    assert clean.code == 0 and clean.json()["damage"] == [], clean
    kept = quarantined(store)
    for data in damaged:
        assert data in kept, "damaged bytes were not kept in the quarantine"
    FIGURES["damaged index records worked around by real commands"] += len(named)


@pytest.mark.parametrize("kind", ["files", "sqlite"])
def test_a_live_writer_keeps_its_session_when_its_lease_document_is_damaged(
    kind: str, tmp_path: Path
) -> None:
    store, _ = make_store(kind, tmp_path)
    writer = Writer(store)
    sid = writer.session_id
    try:
        [lease], _ = damage_index(store, sid, "flip", ("lease",))
        last = writer.message("before the others look")

        # The journal names the holder, a live process: nobody takes over.
        recovered = store.cli("recover", sid, "--yes", "--json")
        assert recovered.code == 0, recovered
        assert recovered.json()["outcome"] == "still-active", recovered.json()
        adopted = store.cli("run", "--session", sid, "--", sys.executable, "-c", "pass")
        assert_one_clear_error_line(adopted)
        assert f"{writer.proc.pid}@" in adopted.stderr, adopted.stderr
        updated = store.cli("update", "--session", sid, "--decision", "interleaved?")
        assert_one_clear_error_line(updated)
        assert f"{writer.proc.pid}@" in updated.stderr, updated.stderr

        # The writer goes on, right after its own last event.
        assert writer.message("still mine") == last + 1
    finally:
        writer.kill()
    with manager(store.url, store.project) as mgr:
        events = mgr.store.read_events(sid).events
        assert [e.payload.get("text") for e in events[-2:]] == [
            "before the others look",
            "still mine",
        ]
        assert [e for e in events if e.kind is EventKind.LEASE] == []  # never taken over
        assert "interleaved?" not in str([e.payload for e in events])
    # Nobody wrote the lease: verify still names it.
    assert lease in [d["location"] for d in store.cli("verify", "--json").json()["damage"]]
    FIGURES["live writers kept their session over a damaged lease"] += 1


@pytest.mark.parametrize("kind", ["files", "sqlite"])
def test_recovery_over_a_damaged_registry_warns_and_names_it(kind: str, tmp_path: Path) -> None:
    store, _ = make_store(kind, tmp_path)
    writer = Writer(store)
    sid = writer.session_id
    writer.kill()
    [registry], _ = damage_index(store, sid, "flip", ("registry",))

    recovered = store.cli("recover", sid, "--yes", "--json")

    assert recovered.code == 0, recovered
    result = recovered.json()
    assert result["outcome"] == "restored", result
    index_warnings = [w for w in result["warnings"] if registry in w]
    assert index_warnings, result["warnings"]
    assert "verify --repair" in index_warnings[0]


@pytest.mark.parametrize("kind", ["files", "sqlite"])
def test_an_event_lost_to_damage_stays_a_recovery_warning_after_repair(
    kind: str, tmp_path: Path
) -> None:
    store, _ = make_store(kind, tmp_path)
    writer = Writer(store)
    sid = writer.session_id
    lost = writer.message("the line that will be damaged")
    writer.message("a later line")
    writer.kill()
    damage_event(store, "the line that will be damaged")
    repaired = store.cli("verify", "--repair", "--json")
    assert repaired.code == 0, repaired
    assert store.cli("verify").code == 0

    recovered = store.cli("recover", sid, "--yes", "--json")

    assert recovered.code == 0, recovered
    result = recovered.json()
    lost_warnings = [w for w in result["warnings"] if f"event {lost} was lost" in w]
    assert len(lost_warnings) == 1, result["warnings"]
    assert "(checksum)" in lost_warnings[0] and "quarantine" in lost_warnings[0]
    assert result["confidence"]["factors"]["completeness"] < 1.0, result["confidence"]
    assert "lost to damage" in str(result["confidence"]), result["confidence"]
    with manager(store.url, store.project) as mgr:
        texts = [e.payload.get("text") for e in mgr.store.read_events(sid).events]
    assert "the line that will be damaged" not in texts and "a later line" in texts


def damage_event(store: Store, text: str) -> None:
    """Flip one letter of the journal record holding ``text``, so that it fails its checksum."""
    needle = text.encode()
    if store.kind == "sqlite":
        with sqlite3.connect(store.base / "continuity.db") as conn:
            lines = [bytes(row[0]) for row in conn.execute("SELECT line FROM events")]
            (line,) = [line for line in lines if needle in line]
            conn.execute("UPDATE events SET line = ? WHERE line = ?", (flip(line), line))
        conn.close()
        return
    journal = store.base / "tracking" / "snapshots" / "conversation-history"
    (path,) = [p for p in journal.iterdir() if needle in p.read_bytes()]
    lines = path.read_bytes().splitlines(keepends=True)
    (index,) = [i for i, line in enumerate(lines) if needle in line]
    lines[index] = flip(lines[index])
    path.write_bytes(b"".join(lines))
