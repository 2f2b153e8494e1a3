"""Corruption injection: every kind of record, truncated and bit-flipped, is caught.

For each kind of file (files store) or row (SQLite) the stores write, seeded
random damage is applied to a copy of one store: truncation at a random
offset, at a record boundary and to nothing, single bit flips and random
bytes. For each damage that changes what the record means:

* reading it through the API never returns altered data;
* ``continuity verify`` exits 1 and names the file or row;
* ``continuity recover`` of the session falls back to the newest valid
  recovery point plus the intact journal and says so in its warnings; where
  the damaged record is the index (the registry, the lease), reads derive it
  from the journal and the write that replaces it keeps the damaged bytes in
  the quarantine first;
* ``continuity verify --repair`` rebuilds what is derivable, moves the
  damaged bytes to the quarantine (they are never deleted), puts a tombstone
  at each event number really lost, and leaves a store that verifies clean;
  recovery then works.

A damage that leaves the meaning intact (JSON whitespace, a gzip header's
timestamp) is counted apart: the record reads back equal to the original.

``CONTINUITY_CHAOS_DAMAGES`` raises the number of damages per kind and type.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from chaos_support import (
    FIGURES,
    HERE,
    CliResult,
    cli_in_process,
    manager,
    store_url,
    subprocess_env,
)

from agent_continuity.errors import CorruptRecord
from agent_continuity.model import Event
from agent_continuity.storage import Store
from agent_continuity.storage.index import derive_record
from agent_continuity.storage.tombstones import LOST_REASONS, lost_of

DAMAGES = int(os.environ.get("CONTINUITY_CHAOS_DAMAGES") or 3)  # per record kind and type

FILE_RECORDS = (
    "registry",
    "active-list",
    "journal",
    "recovery-point",
    "context-snapshot",
    "emergency-backup",
    "recovery-log",
    "lease",
    "archive",
)
ROW_RECORDS = (
    "registry",
    "journal",
    "recovery-point",
    "context-snapshot",
    "emergency-backup",
    "recovery-log",
    "lease",
)
# The index over the journals: damage to them is derived around, never refused.
INDEX = {"registry", "lease"}
# Records recovery reads: damage to them must show in its warnings.
WARNED = {"journal", "recovery-point", "emergency-backup"}
LINES = {"journal", "recovery-log"}  # files of one checksummed line per record


@dataclass
class Pristine:
    """A store with a dead session (A), a completed one (B) and an interrupted one (C)."""

    kind: str
    base: Path
    session: str  # A: its writer died after its last recovery point
    completed: str  # B

    @property
    def url(self) -> str:
        return store_url(self.kind, self.base)

    @property
    def project(self) -> Path:
        return self.base / "project"

    @property
    def tracking(self) -> Path:
        return self.base / "tracking"

    @property
    def database(self) -> Path:
        return self.base / "continuity.db"


def build(kind: str, base: Path) -> Pristine:
    (base / "project").mkdir(parents=True)
    url = store_url(kind, base)
    with manager(url, base / "project") as mgr:
        b = mgr.start(type="chaos", task="TASK-B", owned_by_process=False, auto_save=False)
        b.add_message("user", "finished work")
        b.end()
        c = mgr.start(type="chaos", task="TASK-C", owned_by_process=False, auto_save=False)
        c.add_message("user", "about to crash")
        mgr.interrupt(c.id, "chaos: browser crashed")
        assert mgr.store.read_recovery_log()
    # Last, so that nothing has noticed yet that its writer is dead.
    done = subprocess.run(
        [
            sys.executable,
            str(HERE / "chaos_writer.py"),
            "die-mid-session",
            url,
            str(base / "project"),
        ],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with manager(url, base / "project") as mgr:
        assert [r.id for r in mgr.detect_interruptions()] == [done.stdout.split()[1]]
    return Pristine(kind, base, done.stdout.split()[1], b.id)


# -- the damage ---------------------------------------------------------------


def damage_bytes(data: bytes, how: str, case: int, rng: random.Random, record: str) -> bytes:
    """Truncate or flip ``data``; ``case`` picks the variant so each one is exercised.

    The recovery log is cut only inside a line: nothing else counts its entries,
    so a log cut between two lines is just a shorter log (a known limit).
    """
    lines = record in LINES
    if how == "truncate":
        variant = 0 if record == "recovery-log" else case % 3
        if variant == 2 or len(data) < 2:
            return b""
        if variant == 1 and lines:
            # At a record boundary: what a line checksum alone cannot notice.
            ends = [i + 1 for i, byte in enumerate(data[:-1]) if byte == 0x0A]
            if ends:
                return data[: rng.choice(ends)]
        return data[: rng.randrange(1, len(data))]
    damaged = bytearray(data)
    if case % 2 == 0:
        damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)  # bit rot
    else:
        for _ in range(rng.randint(1, 3)):
            damaged[rng.randrange(len(damaged))] ^= rng.randint(1, 255)
    return bytes(damaged)


def same_meaning(record: str, before: bytes, after: bytes) -> bool:
    """Whether the damaged bytes still say exactly what the original said."""
    try:
        if record == "recovery-point":
            return gzip.decompress(after) == gzip.decompress(before)
        if record in LINES:
            return _lines(after) == _lines(before)
        return bool(json.loads(after) == json.loads(before))
    except (ValueError, OSError, EOFError, zlib.error):
        return False


def _lines(data: bytes) -> list[Any]:
    return [json.loads(line) for line in data.split(b"\n") if line.strip()]


# -- where each record lives ----------------------------------------------------


@dataclass
class Target:
    """One damaged record: where it is, its bytes before and after, how to put it back."""

    record: str
    name: str  # what verify must name: a file name, or "table/key"
    before: bytes
    after: bytes
    write: Callable[[bytes], None]
    read: Callable[[], bytes | None]


def current_bytes(store: Pristine, target: Target) -> bytes | None:
    return target.read()


def file_target(store: Pristine, record: str) -> tuple[str, Path]:
    root, sid = store.tracking, store.session
    paths = {
        "registry": root / "sessions" / "session-registry.json",
        "active-list": root / "sessions" / "active-sessions.json",
        "journal": root / "snapshots" / "conversation-history" / f"{sid}.jsonl",
        "context-snapshot": root / "snapshots" / "context-snapshots" / f"{sid}.json",
        "emergency-backup": root / "recovery" / "emergency-backups" / f"{sid}.json",
        "recovery-log": root / "recovery" / "recovery-logs" / "recovery-log.jsonl",
        "lease": root / "sessions" / "leases" / f"{sid}.json",
        "archive": root / "sessions" / "session-archive" / f"{store.completed}.json",
    }
    if record == "recovery-point":
        folder = root / "snapshots" / "recovery-points" / sid
        newest = max(folder.iterdir(), key=lambda p: int(p.name.split(".seq")[1].split(".")[0]))
        return newest.name, newest
    return paths[record].name, paths[record]


ROWS = {  # record -> table, blob column, key column
    "registry": ("sessions", "doc", "id"),
    "journal": ("events", "line", "session_id"),
    "recovery-point": ("points", "body", "id"),
    "context-snapshot": ("snapshots", "doc", "session_id"),
    "emergency-backup": ("emergency", "doc", "session_id"),
    "recovery-log": ("recovery_log", "doc", "id"),
    "lease": ("leases", "doc", "session_id"),
}


def row_target(
    store: Pristine, record: str, rng: random.Random
) -> tuple[str, str, tuple[Any, ...]]:
    """The table, a WHERE clause and its key for one row of ``record``."""
    table, _, key = ROWS[record]
    with sqlite3.connect(store.database) as conn:
        if record == "journal":
            (last,) = conn.execute(
                "SELECT max(seq) FROM events"
                " WHERE journal = (SELECT id FROM journals WHERE session_id = ?)",
                (store.session,),
            ).fetchone()
            seq = rng.randint(1, last)
            found: tuple[str, str, tuple[Any, ...]] = (
                f"events/{store.session}/{seq}",
                "journal = (SELECT id FROM journals WHERE session_id = ?) AND seq = ?",
                (store.session, seq),
            )
        elif record == "recovery-point":
            (point,) = conn.execute(
                "SELECT id FROM points WHERE session_id = ? ORDER BY seq DESC LIMIT 1",
                (store.session,),
            ).fetchone()
            found = (f"points/{point}", "id = ?", (point,))
        elif record == "recovery-log":
            ids = [row[0] for row in conn.execute("SELECT id FROM recovery_log")]
            entry = rng.choice(ids)
            found = (f"recovery_log/{entry}", "id = ?", (entry,))
        else:
            found = (f"{table}/{store.session}", f"{key} = ?", (store.session,))
    conn.close()
    return found


def inject(store: Pristine, record: str, how: str, case: int, rng: random.Random) -> Target:
    if store.kind == "files":
        name, path = file_target(store, record)
        before = path.read_bytes()
        after = damage_bytes(before, how, case, rng, record)
        path.write_bytes(after)

        def read_file() -> bytes | None:
            return path.read_bytes() if path.exists() else None

        def write_file(data: bytes) -> None:
            path.write_bytes(data)

        return Target(record, name, before, after, write_file, read_file)
    name, where, key = row_target(store, record, rng)
    table, column, _ = ROWS[record]

    def write(data: bytes) -> None:
        with sqlite3.connect(store.database) as conn:
            conn.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (data, *key))
        conn.close()

    def read_row() -> bytes | None:
        with sqlite3.connect(store.database) as conn:
            row = conn.execute(f"SELECT {column} FROM {table} WHERE {where}", key).fetchone()
        conn.close()
        return None if row is None else bytes(row[0])

    found = read_row()
    assert found is not None
    after = damage_bytes(found, how, case, rng, f"{record} row")
    write(after)
    return Target(record, name, found, after, write, read_row)


# -- the checks -------------------------------------------------------------------


def events_of(store: Store, session_id: str) -> tuple[list[Event], int]:
    read = store.read_events(session_id)
    return read.events, len(read.damage)


def assert_never_read_as_valid(
    store: Pristine, target: Target, original: dict[str, Any], mgr_store: Store
) -> None:
    """Reading the damaged record returns the original data or raises CorruptRecord."""
    sid = store.session
    record = target.record

    def refused(read: Callable[[], object]) -> None:
        try:
            value = read()
        except CorruptRecord as exc:
            assert exc.location, exc
            return
        assert value == original[record], f"damaged {record} was read as valid data"

    if record == "registry":
        # Each entry as it was, or as its journal rebuilds it; never the damaged bytes.
        listed = {r.id: r.to_wire() for r in mgr_store.list_sessions()}
        assert sorted(listed) == sorted(r["id"] for r in original["registry"])
        for entry in original["registry"]:
            derived = derive_record(mgr_store, entry["id"]).to_wire()
            assert listed[entry["id"]] in (entry, derived), "damaged registry read as valid"
    elif record == "journal":
        events, damage = events_of(mgr_store, sid)
        assert damage or len(events) < len(original["journal"]), "lost events went unnoticed"
        kept = {e.seq: e.to_wire() for e in original["journal"]}
        assert all(kept[e.seq] == e.to_wire() for e in events), "an altered event was returned"
    elif record == "recovery-point":
        point_id = target.name.split(".")[0].removeprefix("points/")
        refused(lambda: mgr_store.load_point(point_id).to_wire())
    elif record == "context-snapshot":
        refused(lambda: _wire(mgr_store.load_context_snapshot(sid)))
    elif record == "emergency-backup":
        refused(lambda: _wire(mgr_store.load_emergency(sid)))
        _, unreadable = mgr_store.list_emergency()
        assert any(target.name in d.location for d in unreadable)
    elif record == "recovery-log":
        entries = mgr_store.read_recovery_log()
        assert len(entries) < len(original["recovery-log"])
        assert all(e in original["recovery-log"] for e in entries)
    elif record == "lease":
        # As it was, or as the journal tells it: the same token, so fencing holds.
        lease = mgr_store.read_lease(sid)
        assert lease is not None, "a damaged lease was read as no lease"
        was = original["lease"]
        assert lease.to_wire() == was or (lease.token, lease.holder) == (
            was["token"],
            was["holder"],
        )
    # active list and archive: nothing reads them but verify, checked next.


def _wire(model: Any) -> Any:
    return None if model is None else model.to_wire()


def originals(store: Pristine) -> dict[str, Any]:
    with manager(store.url, store.project) as mgr:
        point = mgr.store.list_points(store.session)[-1]
        return {
            "registry": [r.to_wire() for r in mgr.store.list_sessions()],
            "journal": mgr.store.read_events(store.session).events,
            "recovery-point": mgr.store.load_point(point.id).to_wire(),
            "context-snapshot": _wire(mgr.store.load_context_snapshot(store.session)),
            "emergency-backup": _wire(mgr.store.load_emergency(store.session)),
            "recovery-log": mgr.store.read_recovery_log(),
            "lease": _wire(mgr.store.read_lease(store.session)),
        }


def quarantined(store: Pristine) -> list[bytes]:
    if store.kind == "files":
        folder = store.tracking / "quarantine"
        return [p.read_bytes() for p in folder.iterdir()] if folder.exists() else []
    with sqlite3.connect(store.database) as conn:
        found = [bytes(row[0]) for row in conn.execute("SELECT data FROM quarantine")]
    conn.close()
    return found


def assert_in_quarantine(store: Pristine, target: Target) -> None:
    """Every damaged byte that is not a copy of intact data sits in the quarantine."""
    kept = quarantined(store)
    if target.record in LINES and store.kind == "files":
        intact = set(target.before.split(b"\n"))
        for line in target.after.split(b"\n"):
            if line and line not in intact:
                assert any(line in blob for blob in kept), f"damaged line lost: {line[:60]!r}"
        return
    assert target.after in kept or not target.after, "the damaged bytes were not quarantined"


def verify(store: Pristine, *extra: str) -> tuple[CliResult, dict[str, Any]]:
    result = cli_in_process(["--store", store.url, "verify", *extra, "--json"], store.project)
    return result, result.json()


def check_damage(pristine: Pristine, case_dir: Path, record: str, how: str, case: int) -> None:
    rng = random.Random(zlib.crc32(f"{pristine.kind}/{record}/{how}/{case}".encode()))
    shutil.copytree(pristine.base, case_dir)
    store = Pristine(pristine.kind, case_dir, pristine.session, pristine.completed)
    original = originals(store)
    target = inject(store, record, how, case, rng)
    FIGURES["damages injected"] += 1
    if same_meaning(record, target.before, target.after):
        # Whitespace inside JSON, a gzip header field: the record still says the same.
        FIGURES["damages that left the meaning intact"] += 1
        assert originals(store) == original
        return

    # 1. Never read as valid data.
    with manager(store.url, store.project) as mgr:
        assert_never_read_as_valid(store, target, original, mgr.store)

    # 2. verify names it.
    result, report = verify(store)
    assert result.code == 1, f"verify missed damage to the {record}: {report}"
    named = [d for d in report["damage"] if target.name in d["location"]]
    assert named, f"verify did not name {target.name}: {report['damage']}"
    FIGURES["damages detected and named by verify"] += 1

    # 3. recovery falls back (around the index: derives it) and says so.
    recover = ["--store", store.url, "recover", store.session, "--yes", "--json"]
    recovered = cli_in_process(recover, store.project)
    assert recovered.code == 0, recovered
    outcome = recovered.json()
    assert outcome["status"] != "failed", outcome["warnings"]
    assert outcome["outcome"] == "restored", outcome
    if record in WARNED:
        assert outcome["status"] == "partial", outcome
        named_by = (target.name, f"journal of {store.session}")
        assert any(n in w for w in outcome["warnings"] for n in named_by), outcome["warnings"]
    if record in INDEX and current_bytes(store, target) != target.after:
        # The takeover's write replaced the damaged record: its bytes went to the quarantine.
        assert_in_quarantine(store, target)
        FIGURES["damaged index records kept aside by the write that replaced them"] += 1
    FIGURES["recoveries that fell back past the damage"] += 1

    # 4. repair: rebuild what is derivable, quarantine the rest, delete nothing.
    # (Recovery may already have replaced a damaged backup or snapshot with a
    # fresh one: those are copies of what the journal holds.)
    still_damaged = current_bytes(store, target) == target.after
    repaired, report = verify(store, "--repair")
    left = verify(store)[1]["damage"]
    assert not left and repaired.code == 0, (repaired, left)
    if still_damaged:
        assert_in_quarantine(store, target)
    with manager(store.url, store.project) as mgr:
        events, damage = events_of(mgr.store, store.session)
        assert not damage
        stones = {e.seq: lost_of(e) for e in events if lost_of(e) is not None}
        survivors = {e.seq for e in events if e.seq not in stones}
        lost = [e.seq for e in original["journal"] if e.seq not in survivors]
        if record != "journal":
            assert not lost and not stones, f"repair lost events {lost}"
        # Every event lost is on record at its number, naming where its bytes went.
        assert set(lost) <= set(stones), (lost, stones)
        for why in stones.values():
            assert why is not None and why["reason"] in LOST_REASONS, why
            assert why["quarantine"] in [None, *report["quarantined"]], why
        assert mgr.get(store.session).id == store.session
    if record in INDEX:
        again = cli_in_process(recover, store.project)
        assert again.code == 0, again
        assert again.json()["status"] != "failed"
    FIGURES["damages repaired or quarantined"] += 1
    FIGURES["lost events closed by a tombstone"] += len(stones)


def cases(records: tuple[str, ...]) -> list[tuple[str, str, int]]:
    return [
        (record, how, case)
        for record in records
        for how in ("truncate", "flip")
        for case in range(DAMAGES)
    ]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pristine]:
    return {
        kind: build(kind, tmp_path_factory.mktemp(f"pristine-{kind}"))
        for kind in ("files", "sqlite")
    }


@pytest.mark.slow
@pytest.mark.parametrize(("record", "how", "case"), cases(FILE_RECORDS))
def test_damaged_file_is_caught_named_recovered_around_and_quarantined(
    pristine: dict[str, Pristine], tmp_path: Path, record: str, how: str, case: int
) -> None:
    check_damage(pristine["files"], tmp_path / "store", record, how, case)


@pytest.mark.slow
@pytest.mark.parametrize(("record", "how", "case"), cases(ROW_RECORDS))
def test_damaged_row_is_caught_named_recovered_around_and_quarantined(
    pristine: dict[str, Pristine], tmp_path: Path, record: str, how: str, case: int
) -> None:
    check_damage(pristine["sqlite"], tmp_path / "store", record, how, case)
