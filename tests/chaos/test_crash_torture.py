"""Crash torture: writers killed with SIGKILL at random moments never lose an acknowledged event.

Each round opens a fresh store and kills :data:`PER_ROUND` writer processes.
A writer starts a session (or continues one) through the public API and
prints every sequence number once the call that wrote it has returned. After
each kill the store is opened again, as the next process would, and must
hold every acknowledged event, in order, with no gap and no duplicate; it
must pass ``continuity verify``; the dead writer's session must be found
interrupted with the cause ``lease-expired``; and ``recover`` must bring it
back. Between kills the suite varies who finds the dead session: this test,
the next writer's ``start()`` (which may itself be killed while marking it),
or a writer that takes the dead session over directly. At the end of a
round, ``continuity verify --repair`` closes every number an append torn by
a kill left behind with a tombstone, and the store verifies clean.

``CONTINUITY_CHAOS_KILLS`` raises the number of kills per store (default 200).
"""

from __future__ import annotations

import copy
import math
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from chaos_support import (
    FIGURES,
    HERE,
    SHARED_KINDS,
    CliResult,
    cli_in_process,
    manager,
    message_text,
    run_cli,
    store_url,
    subprocess_env,
)

from agent_continuity import SessionManager
from agent_continuity.model import EventKind, SessionStatus, Trigger
from agent_continuity.storage.retention import KEEP_PER_TRIGGER
from agent_continuity.storage.tombstones import lost_of

KILLS = int(os.environ.get("CONTINUITY_CHAOS_KILLS") or 200)  # per store
PER_ROUND = 25
ROUNDS = max(1, math.ceil(KILLS / PER_ROUND))
# PostgreSQL's own durability is the server's; these rounds prove the store's part
# (fencing, numbering, the checks) with a quarter of the kills, to keep the suite short.
SERVER_ROUNDS = max(1, ROUNDS // 4)


@dataclass
class Ledger:
    """What writers said was durable in one session."""

    session_id: str
    acks: list[tuple[int, str, int]] = field(default_factory=list)  # seq, token, size
    decisions: list[tuple[int, str]] = field(default_factory=list)  # seq, text
    steps: list[tuple[int, str]] = field(default_factory=list)  # seq, text
    points: list[str] = field(default_factory=list)
    last_op: dict[int, int] = field(default_factory=dict)  # generation -> last printed op


@dataclass
class Run:
    """One writer process, from fork to SIGKILL."""

    generation: int
    pid: int = 0
    session_id: str | None = None
    exit_status: int | None = None
    error: str | None = None
    done: int | None = None  # steps made, when a script ran to its end


class WriterServer:
    """The forking writer process and a thread that reads its output."""

    def __init__(self, url: str, project: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "chaos_writer.py"), url, str(project)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=subprocess_env(),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode().rstrip("\n"))
        self.lines.put("eof")

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def next_line(self) -> str:
        line = self.lines.get(timeout=60)
        assert line != "eof", "the writer server died"
        return line

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


class Torture:
    """One round: a fresh store, ``kills`` writers killed, every promise checked."""

    def __init__(
        self, kind: str, base: Path, seed: int, server: WriterServer | None = None
    ) -> None:
        self.kind = kind
        self.url = store_url(kind, base)
        self.project = base / "project"
        self.project.mkdir(parents=True, exist_ok=True)
        self.rng = random.Random(seed)
        self.ledgers: dict[str, Ledger] = {}
        self.dead: list[str] = []  # killed writers' sessions nobody has marked yet
        self.server = server or WriterServer(self.url, self.project)
        self.generation = 0
        self.torn: dict[str, set[int | None]] = {}  # session -> offsets of torn appends

    def copy(self, base: Path) -> Torture:
        """The same store, its ledgers and its writer server, in another folder."""
        shutil.copytree(self.project.parent, base)
        twin = Torture(self.kind, base, 0, self.server)
        twin.ledgers = copy.deepcopy(self.ledgers)
        twin.dead = list(self.dead)
        return twin

    def run_script(self, level: str, kill_at: int, length: str) -> Run:
        """Run the writer's fixed script, which SIGKILLs itself before step ``kill_at``."""
        run = Run(0)
        self.server.send(f"script {self.url} {self.project} {level} {kill_at} {length}")
        while run.exit_status is None:
            line = self.server.next_line()
            self._take(run, line)
        assert run.error is None, f"the script failed by itself at step {kill_at}: {run.error}"
        return run

    # -- one kill -------------------------------------------------------

    def kill_one(self, target: str | None, *, once_named: bool = False) -> Run:
        """Start a writer on ``target`` (None: a new session) and SIGKILL it.

        With ``once_named``, the clock starts only when the writer owns its session.
        """
        self.generation += 1
        run = Run(self.generation)
        self.server.send(f"run {target or 'NEW'} {run.generation} {self.rng.getrandbits(32)}")
        # Most kills land while the writer is busy writing; the rest while it is
        # still opening the store, starting or adopting the session.
        once_named = once_named or self.rng.random() < 0.7
        delay = self.rng.uniform(0, 0.12) if once_named else self.rng.uniform(0, 0.05)
        started = None
        sent = False
        while run.exit_status is None:
            if started is None and run.pid and (run.session_id or not once_named):
                started = time.monotonic()
            if not sent and started is not None and time.monotonic() - started >= delay:
                try:
                    os.kill(run.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass  # it exited by itself; the exit line says why
                sent = True
            try:
                line = self.server.lines.get(timeout=0.002)
            except queue.Empty:
                continue
            assert line != "eof", "the writer server died"
            self._take(run, line)
        assert run.error is None, f"writer {run.generation} failed by itself: {run.error}"
        assert run.exit_status == -signal.SIGKILL, run
        FIGURES["writers killed with SIGKILL"] += 1
        return run

    def _take(self, run: Run, line: str) -> None:
        verb, _, rest = line.partition(" ")
        parts = rest.split(" ")
        if verb == "pid":
            run.pid = int(parts[0])
            return
        if verb == "exit":
            run.exit_status = int(parts[0])
            return
        if verb == "error":
            run.error = rest
            return
        if verb == "done":
            run.done = int(parts[0])
            return
        if verb == "session":
            run.session_id = parts[0]
            self.ledgers.setdefault(parts[0], Ledger(parts[0]))
            return
        assert run.session_id is not None, line
        ledger = self.ledgers[run.session_id]
        op = int(parts[0])
        assert op > ledger.last_op.get(run.generation, 0), f"operations out of order: {line}"
        ledger.last_op[run.generation] = op
        if verb == "ack":
            ledger.acks.append((int(parts[1]), parts[2], int(parts[3])))
        elif verb == "decided":
            ledger.decisions.append((int(parts[1]), f"decision g{run.generation}.{op}"))
        elif verb == "step":
            ledger.steps.append((int(parts[1]), f"step g{run.generation}.{op}"))
        elif verb == "point":
            ledger.points.append(parts[1])
        else:
            raise AssertionError(f"unknown line from a writer: {line!r}")

    # -- the checks -----------------------------------------------------

    def check_journal(self, mgr: SessionManager, ledger: Ledger, *, torn_ok: bool = False) -> None:
        """Every acknowledged event present, in order, no gap, no duplicate, no phantom.

        One exception, and it stays visible: SIGKILL can stop a long ``write``
        between two pages, leaving the first pages of an append that never
        returned. With ``torn_ok`` (just after a kill) the journal may end in
        such a torn line; from then on that line is reported (sealed by the next
        append as a damaged line, its number left as a gap), never read as an
        event, and nothing acknowledged is missing.
        """
        read = mgr.store.read_events(ledger.session_id)
        known = self.torn.setdefault(ledger.session_id, set())
        for damage in read.damage:
            if damage.kind == "gap":
                continue
            if torn_ok and damage.kind == "torn-tail" and damage.offset not in known:
                known.add(damage.offset)
                FIGURES["appends torn by SIGKILL mid-write (unacknowledged, reported)"] += 1
            assert damage.kind in ("torn-tail", "checksum") and damage.offset in known, damage
        seqs = [e.seq for e in read.events]
        assert seqs == sorted(set(seqs)), "a duplicate or a step backwards in the journal"
        missing = set(range(1, (seqs[-1] if seqs else 0) + 1)) - set(seqs)
        assert len(missing) <= len(known), f"events {sorted(missing)} are missing"
        by_seq = {e.seq: e for e in read.events}
        acked = [seq for seq, _, _ in ledger.acks]
        assert acked == sorted(acked) and len(set(acked)) == len(acked)
        for seq, token, size in ledger.acks:
            event = by_seq.get(seq)
            assert event is not None, f"acknowledged event {seq} ({token}) is lost"
            assert event.kind is EventKind.MESSAGE
            assert event.payload["text"] == message_text(token, size), f"event {seq} changed"
        for seq, text in ledger.decisions:
            assert by_seq[seq].kind is EventKind.DECISION and by_seq[seq].payload["text"] == text
        for seq, text in ledger.steps:
            assert by_seq[seq].kind is EventKind.NEXT_STEP and by_seq[seq].payload["step"] == text
        # No duplicate and no phantom: each operation is in the journal at most
        # once, and only the one in flight at the kill may be there unacknowledged.
        tokens = Counter(
            str(e.payload["text"]).split("|", 1)[0]
            for e in read.events
            if e.kind is EventKind.MESSAGE
        )
        assert max(tokens.values(), default=1) == 1, "a message was recorded twice"
        for token in tokens:
            generation, op = (int(x) for x in token.removeprefix("g").split("."))
            assert op <= ledger.last_op.get(generation, 0) + 1, f"{token} was never written"
        # Every acknowledged point loads, unless retention pruned it, which it does
        # only past the newest KEEP_PER_TRIGGER of its kind. (A pruned HHMMSS id may
        # be taken again within the same second by a point of another kind.)
        listed = {p.id: p for p in mgr.store.list_points(ledger.session_id)}
        kind = [p for p in listed.values() if p.trigger is Trigger.USER_REQUEST]
        kept = [point_id for point_id in ledger.points if point_id in {p.id for p in kind}]
        if len(kept) < len(ledger.points):
            assert len(kind) >= KEEP_PER_TRIGGER, (ledger.points, [p.id for p in kind])
        for point_id in kept:
            point = mgr.store.load_point(point_id)
            assert point.seq <= seqs[-1]
        FIGURES["acknowledged events checked"] += len(ledger.acks) + len(ledger.decisions)
        FIGURES["acknowledged events checked"] += len(ledger.steps)
        FIGURES["acknowledged recovery points loaded"] += len(kept)

    def check_store(self, cli: Callable[[list[str], Path], CliResult] = cli_in_process) -> None:
        """``continuity verify`` passes, or names only appends torn by a kill (and exits 1)."""
        result = cli(["--store", self.url, "verify", "--json"], self.project)
        torn = [sid for sid, offsets in self.torn.items() if offsets]
        damage = result.json()["damage"]
        for found in damage:
            assert found["kind"] in ("torn-tail", "checksum", "gap"), found
            assert any(sid in found["location"] for sid in torn), found
        assert result.code == (1 if damage else 0), result
        FIGURES["verify passes after a kill" if not damage else "verify names a torn append"] += 1

    def check_interrupted_and_recover(self, mgr: SessionManager, session_ids: list[str]) -> None:
        mgr.detect_interruptions()
        for session_id in session_ids:
            record = mgr.get(session_id)
            assert record.status is SessionStatus.INTERRUPTED, (session_id, record.status)
            assert record.interruption is not None
            assert record.interruption.cause == "lease-expired"
            result = mgr.recover(session_id, answer=True)
            assert result.status != "failed", result.warnings
            assert result.outcome == "restored", (result.outcome, result.warnings)
            assert mgr.get(session_id).status is SessionStatus.ACTIVE
            FIGURES["killed sessions found interrupted and recovered"] += 1

    def check_unnamed_sessions(self, mgr: SessionManager) -> list[str]:
        """Sessions whose writer died before naming them must be sound too."""
        found = []
        for record in mgr.sessions():
            if record.id not in self.ledgers:
                self.ledgers[record.id] = Ledger(record.id)
                found.append(record.id)
                if record.status is SessionStatus.ACTIVE:
                    self.dead.append(record.id)
        return found

    # -- the round ------------------------------------------------------

    def play(self, kills: int) -> None:
        target: str | None = None
        for _ in range(kills - 1):
            owned = self.kill_one(target).session_id
            with manager(self.url, self.project) as mgr:
                touched = {*self.check_unnamed_sessions(mgr), *self.dead, owned, target}
                for session_id in touched - {None}:
                    self.check_journal(mgr, self.ledgers[str(session_id)], torn_ok=True)
            self.check_store()
            with manager(self.url, self.project) as mgr:
                if owned is None:
                    continue  # killed before it owned a session: try the same again
                roll = self.rng.random()
                if roll < 0.2:
                    # Leave it: the next writer's start() marks it (and may die doing so).
                    self.dead.append(owned)
                    target = None
                elif roll < 0.35:
                    # The next writer takes the dead session over directly.
                    target = owned
                else:
                    self.check_interrupted_and_recover(mgr, [*self.dead, owned])
                    self.dead = []
                    if self.rng.random() < 0.3:
                        mgr.end(owned)
                        target = None
                    else:
                        target = owned
        self.finish(target)

    def finish(self, target: str | None) -> None:
        """The last kill is found and recovered by real ``continuity`` processes."""
        victim = self.kill_one(target, once_named=True).session_id
        assert victim is not None
        self.server.close()
        with manager(self.url, self.project) as mgr:
            self.check_journal(mgr, self.ledgers[victim], torn_ok=True)
        recovered = run_cli(
            ["--store", self.url, "recover", victim, "--yes", "--json"], self.project
        )
        assert recovered.code == 0, recovered
        result = recovered.json()
        assert result["sessionId"] == victim
        assert result["status"] != "failed", result["warnings"]
        assert result["outcome"] == "restored", result
        with manager(self.url, self.project) as mgr:
            assert mgr.get(victim).status is SessionStatus.ACTIVE
            found = [
                entry
                for entry in mgr.store.read_recovery_log()
                if entry["event"] == "interruption" and entry["sessionId"] == victim
            ]
            assert found and found[-1]["cause"] == "lease-expired", found
            self.check_unnamed_sessions(mgr)
            self.dead = [s for s in self.dead if s != victim]
            self.check_interrupted_and_recover(mgr, self.dead)
            for ledger in self.ledgers.values():
                self.check_journal(mgr, ledger)
        self.check_store(run_cli)
        self.check_repair()
        FIGURES["killed sessions found interrupted and recovered"] += 1
        FIGURES["distinct acknowledged events, all found at the end"] += sum(
            len(ledger.acks) + len(ledger.decisions) + len(ledger.steps)
            for ledger in self.ledgers.values()
        )

    def check_repair(self) -> None:
        """``verify --repair`` (a real process) leaves a store that verifies clean.

        Each number an append torn by a kill used up now holds a tombstone that
        names the quarantine file keeping the torn bytes; every acknowledged
        event is still there, unchanged.
        """
        repaired = run_cli(["--store", self.url, "verify", "--repair", "--json"], self.project)
        assert repaired.code == 0, repaired
        clean = run_cli(["--store", self.url, "verify", "--json"], self.project)
        assert clean.code == 0 and clean.json()["damage"] == [], clean
        with manager(self.url, self.project) as mgr:
            for ledger in self.ledgers.values():
                self.check_journal(mgr, ledger)
                read = mgr.store.read_events(ledger.session_id)
                assert not read.damage, read.damage
                assert [e.seq for e in read.events] == list(range(1, len(read.events) + 1))
                stones = [lost for e in read.events if (lost := lost_of(e)) is not None]
                assert len(stones) <= len(self.torn.get(ledger.session_id, ())), stones
                for lost in stones:
                    assert lost["reason"] == "torn", lost
                    assert lost["quarantine"] in repaired.json()["quarantined"], lost
                    assert Path(lost["quarantine"]).stat().st_size > 0
                FIGURES["numbers torn by a kill, closed by a tombstone on repair"] += len(stones)
        FIGURES["verify passes after repair"] += 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "round_"),
    [
        (kind, round_)
        for kind in SHARED_KINDS
        for round_ in range(SERVER_ROUNDS if kind == "postgres" else ROUNDS)
    ],
)
def test_sigkill_never_loses_an_acknowledged_event(kind: str, round_: int, tmp_path: Path) -> None:
    kills = min(PER_ROUND, KILLS - round_ * PER_ROUND)
    torture = Torture(kind, tmp_path, seed=zlib.crc32(f"{kind}-{round_}".encode()))
    try:
        torture.play(kills)
    finally:
        if torture.server.proc.poll() is None:
            torture.server.proc.kill()
            torture.server.proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("length", ["first", "full"])
@pytest.mark.parametrize(("kind", "level"), [("files", "os"), ("sqlite", "store")])
def test_a_kill_at_every_step_of_a_session_leaves_a_sound_store(
    kind: str, level: str, length: str, tmp_path: Path
) -> None:
    """Deterministic: one run per step, each killed just before that step.

    A step is a durable file operation of the files store (a write, fsync,
    rename...) or, for SQLite, whose own I/O is out of reach, a write the store
    is asked for. ``first``: the first session of a store that does not exist
    yet. ``full``: a store where a writer died; the script marks its session
    interrupted, then starts, writes to and ends a session of its own.
    """
    base = Torture(kind, tmp_path / "base", seed=zlib.crc32(kind.encode()))
    try:
        if length == "full":
            assert base.kill_one(None, once_named=True).session_id is not None
        dead = list(base.ledgers)
        dry = base.copy(tmp_path / "dry").run_script(level, 0, length)
        assert dry.exit_status == 0 and dry.done is not None, dry
        for kill_at in range(1, dry.done + 1):
            twin = base.copy(tmp_path / f"kill-{kill_at}")
            run = twin.run_script(level, kill_at, length)
            if run.exit_status == 0:
                # Timing can spare a write (a registry entry that did not change),
                # so a run may finish in fewer steps than the dry run made.
                assert run.done is not None and run.done < kill_at, (kill_at, run)
            else:
                assert run.exit_status == -signal.SIGKILL, (kill_at, run)
                FIGURES["scripted kills, one per step"] += 1
            with manager(twin.url, twin.project) as mgr:
                twin.check_unnamed_sessions(mgr)
                for ledger in twin.ledgers.values():
                    twin.check_journal(mgr, ledger)
            twin.check_store()
            with manager(twin.url, twin.project) as mgr:
                mgr.detect_interruptions()
                records = {r.id: r for r in mgr.sessions()}
                assert all(records[s].status is SessionStatus.INTERRUPTED for s in dead)
                left = [r.id for r in records.values() if r.status is not SessionStatus.COMPLETED]
                twin.check_interrupted_and_recover(mgr, left)
            shutil.rmtree(twin.project.parent)
    finally:
        base.server.close()
