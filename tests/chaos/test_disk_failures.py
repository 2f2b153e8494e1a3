"""A full disk and a read-only store: a write that fails raises one clear error and
leaves the store exactly as it was before that write.

The disk is real when this process may mount a small tmpfs (root in a
container or CI runner): ENOSPC and EROFS then come from the kernel. Where it
may not, the same tests run on an ordinary folder with the failures injected
into the few system calls the stores write through (``os.write``,
``os.replace``...; SQLite by its page limit), so nothing is skipped
(``CONTINUITY_CHAOS_SIMULATE_DISK=1`` forces that mode).
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import sqlite3
import subprocess
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from chaos_support import (
    FIGURES,
    STORE_KINDS,
    assert_one_clear_error_line,
    cli_in_process,
    manager,
    store_url,
)

from agent_continuity import LiveSession
from agent_continuity.errors import IncompleteWrite, NoActiveSession, StoreError
from agent_continuity.storage import Store
from agent_continuity.storage.base import WRITE_METHODS

WRITES = WRITE_METHODS
# Room for a finished session (its final point now writes a context snapshot too)
# and for starting another one, with a long phase, when nothing else is there.
DISK_BYTES = 512 * 1024
TRIALS = int(os.environ.get("CONTINUITY_CHAOS_DISK_TRIALS") or 12)


@dataclass
class Disk:
    """A folder that fills up (and can be made read-only), really or by injection."""

    path: Path
    real: bool
    fill: Callable[[int], None]  # leave about this many bytes free
    make_read_only: Callable[[], None]
    make_writable: Callable[[], None]


def _mount(path: Path, options: str) -> bool:
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@pytest.fixture
def disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Disk]:
    path = tmp_path / "disk"
    path.mkdir()
    simulate = bool(os.environ.get("CONTINUITY_CHAOS_SIMULATE_DISK"))
    if not simulate and os.geteuid() == 0 and _mount(path, f"size={DISK_BYTES}"):
        filler = path / "filler"

        def fill(leftover: int) -> None:
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            try:
                while True:
                    os.write(fd, b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
            finally:
                os.close(fd)
            os.truncate(filler, max(0, filler.stat().st_size - leftover))

        def remount(mode: str) -> None:
            subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)

        try:
            yield Disk(path, True, fill, lambda: remount("ro"), lambda: remount("rw"))
        finally:
            subprocess.run(["umount", "-l", str(path)], check=False)
        return

    failing: dict[str, int] = {}
    real_write, real_replace, real_open = os.write, os.replace, os.open

    def under(target: Any) -> bool:
        return str(target).startswith(str(path))

    def due() -> bool:
        # A full disk is simulated as "the next writes fail after this many bytes".
        return "code" in failing and failing.setdefault("left", 0) <= 0

    def write(fd: int, data: Any) -> int:
        if "code" in failing and fd > 2:
            if due():
                raise OSError(failing["code"], os.strerror(failing["code"]))
            failing["left"] -= len(data)
        return real_write(fd, data)

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        if due() and under(dst):
            raise OSError(failing["code"], os.strerror(failing["code"]), str(dst))
        real_replace(src, dst, **kwargs)

    def open_(file: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        writing = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        if failing.get("code") == errno.EROFS and writing and under(file):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(file))
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "open", open_)
    real_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn: sqlite3.Connection = real_connect(*args, **kwargs)
        if "code" in failing and under(args[0]):
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages}")
            if failing["code"] == errno.EROFS:
                conn.execute("PRAGMA query_only = ON")
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect)
    yield Disk(
        path,
        False,
        lambda leftover: failing.update(code=errno.ENOSPC, left=leftover),
        lambda: failing.update(code=errno.EROFS, left=0),
        lambda: failing.clear(),
    )


# -- what "as it was" means -------------------------------------------------------


def state(kind: str, base: Path) -> dict[str, Any]:
    """Every byte of a files store; every row of an SQLite one."""
    if kind == "files":
        root = base / "tracking"
        return {
            str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.endswith(".lock")
        }
    uri = f"file:{base / 'continuity.db'}?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in tables}
    finally:
        conn.close()


def without_leases(found: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in found.items() if "leases" not in k}


class WriteRecorder:
    """Checks, for every store write that fails, that the store is as it was before it."""

    def __init__(self, kind: str, base: Path, store: Store, monkeypatch: pytest.MonkeyPatch):
        self.failures: list[tuple[str, StoreError]] = []
        for name in WRITES:
            monkeypatch.setattr(store, name, self._wrap(kind, base, name, getattr(store, name)))

    def _wrap(self, kind: str, base: Path, name: str, method: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            before = state(kind, base)
            try:
                return method(*args, **kwargs)
            except StoreError as exc:
                assert state(kind, base) == before, f"a failed {name} changed the store"
                self.failures.append((name, exc))
                FIGURES["failed writes that left the store as it was"] += 1
                raise

        return wrapper


@pytest.mark.slow
@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_full_disk_refuses_cleanly_and_loses_nothing(
    kind: str, disk: Disk, tmp_path: Path
) -> None:
    """Many trials, each leaving a different amount of space, so that the write that
    runs out is sometimes an append, sometimes a backup, a point or the registry."""
    project = tmp_path / "project"
    project.mkdir()
    rng = random.Random(zlib.crc32(kind.encode()))
    failed_calls: set[str] = set()
    for trial in range(TRIALS):
        base = disk.path / f"trial-{trial}"
        with pytest.MonkeyPatch.context() as monkeypatch:
            failed_calls.add(full_disk_trial(kind, disk, base, project, rng, monkeypatch))
        disk.make_writable()
        shutil.rmtree(base)
        (disk.path / "filler").unlink(missing_ok=True)
    FIGURES["different store writes seen failing on a full disk"] += len(failed_calls)


def full_disk_trial(
    kind: str,
    disk: Disk,
    base: Path,
    project: Path,
    rng: random.Random,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    url = store_url(kind, base)
    acked: list[tuple[int, str]] = []
    with manager(url, project) as mgr:
        session = mgr.start(task="TASK-1", owned_by_process=False, auto_save=False)
        recorder = WriteRecorder(kind, base, mgr.store, monkeypatch)
        leftover = rng.randrange(1024, 48 * 1024)
        disk.fill(leftover)
        if not disk.real and kind == "sqlite":
            # Simulated: SQLite's own I/O is out of reach, so cap its pages instead.
            conn = mgr.store._connection()  # type: ignore[attr-defined]
            pages = conn.execute("PRAGMA page_count").fetchone()[0] + leftover // 4096
            conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StoreError) as refused:
            for n in range(100_000):
                text = f"message {n} " + "x" * rng.randrange(10, 3000)
                roll = rng.random()
                if roll < 0.15:
                    session.decide(text)  # the backup, then a point and the registry
                elif roll < 0.2:
                    session.checkpoint(observe=False)
                else:
                    acked.append((session.add_message("user", text), text))
        message = str(refused.value)
        assert "disk is full" in message or "no space left" in message, message
        assert recorder.failures, "the refusal did not come from a store write"
        if isinstance(refused.value, IncompleteWrite) and refused.value.kept_seq is not None:
            # The decision was appended before the write after it failed: it is there.
            kept = mgr.store.read_events(session.id).events[-1]
            assert (kept.seq, kept.payload["text"]) == (refused.value.kept_seq, text)
            FIGURES["events kept and said so when the disk filled up after them"] += 1
        elif isinstance(refused.value, IncompleteWrite):
            # A point was saved, and a write after it (the context snapshot) failed.
            kept_point = refused.value.kept_point
            assert kept_point is not None, message
            assert mgr.store.load_point(kept_point).session_id == session.id
            FIGURES["recovery points kept and said so when the disk filled up after them"] += 1

        # Everything acknowledged before the disk filled up is there, in order.
        events = {e.seq: e for e in mgr.store.read_events(session.id).events}
        assert all(events[seq].payload["text"] == text for seq, text in acked)
        FIGURES["acknowledged events checked"] += len(acked)

        # The command line says so in one line, and writes nothing but the lease
        # renewal that attaching to the session does first (a write that succeeded).
        before = without_leases(state(kind, base))
        said = cli_in_process(
            ["--store", url, "message", "--session", session.id, "--role", "user", "x" * 60_000],
            project,
        )
        assert_one_clear_error_line(said)
        assert "disk is full" in said.stderr or "no space left" in said.stderr, said.stderr
        assert without_leases(state(kind, base)) == before

    # Space again: the session goes on where it stopped, without a gap.
    disk.make_writable()
    (disk.path / "filler").unlink(missing_ok=True)
    with manager(url, project) as mgr:
        seq = mgr.attach(session.id).add_message("user", "after the disk was emptied")
        read = mgr.store.read_events(session.id)
        assert read.damage == []
        assert [e.seq for e in read.events] == list(range(1, seq + 1))
        assert mgr.verify()["ok"], mgr.verify()["damage"]
    return recorder.failures[0][0]


# What each compound operation writes after its event is durable.
AFTER_THE_EVENT: dict[str, Callable[[LiveSession, str], object]] = {
    "decide": lambda s, text: s.decide(text),  # the emergency backup, then a point
    "complete_step": lambda s, text: s.complete_step(text),  # the same
    "set_task": lambda s, text: s.set_task("TASK-2", title=text, status="done"),  # + registry
    "touch_file": lambda s, text: s.touch_file(text),  # a point only
    "interrupt": lambda s, text: s.interrupt(text),  # backup, registry, final point, log
}


@pytest.mark.slow
@pytest.mark.parametrize("operation", list(AFTER_THE_EVENT))
@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_disk_that_fills_up_after_the_event_is_durable_says_the_event_was_kept(
    kind: str, operation: str, disk: Disk, tmp_path: Path
) -> None:
    """``s.decide(...)`` appends the decision, then writes what its trigger asks
    for. A disk that fills up in between must not look like a lost decision (the
    user would record it twice): the error says it was kept, as which event, and
    what was not written; ``continuity save`` then writes what is missing."""
    project = tmp_path / "project"
    project.mkdir()
    rng = random.Random(zlib.crc32(f"{kind}/{operation}".encode()))
    outcomes: list[str] = []
    for leftover in range(1024, 128 * 1024, 1024):
        base = disk.path / f"trial-{leftover}"
        with pytest.MonkeyPatch.context() as monkeypatch:
            outcome = fill_up_during(
                kind, operation, disk, base, project, leftover, rng, monkeypatch
            )
        outcomes.append(outcome)
        disk.make_writable()
        shutil.rmtree(base)
        (disk.path / "filler").unlink(missing_ok=True)
        if outcome == "done":
            break
    assert "kept" in outcomes, f"the disk never filled up right after the event: {outcomes}"
    FIGURES["events kept and said so when the disk filled up after them"] += outcomes.count("kept")


def fill_up_during(
    kind: str,
    operation: str,
    disk: Disk,
    base: Path,
    project: Path,
    leftover: int,
    rng: random.Random,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    url = store_url(kind, base)
    # Small enough that SQLite's log still fits the real 256 KiB disk once it is emptied;
    # when simulated, SQLite is capped in whole pages, so the text spans several.
    size = 2500 if disk.real else 9000
    text = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(size))
    with manager(url, project) as mgr:
        session = mgr.start(task="TASK-1", owned_by_process=False, auto_save=False)
        before = len(mgr.store.read_events(session.id).events)
        recorder = WriteRecorder(kind, base, mgr.store, monkeypatch)
        disk.fill(leftover)
        if not disk.real and kind == "sqlite":
            conn = mgr.store._connection()  # type: ignore[attr-defined]
            pages = conn.execute("PRAGMA page_count").fetchone()[0] + leftover // 4096
            conn.execute(f"PRAGMA max_page_count = {pages}")
        try:
            AFTER_THE_EVENT[operation](session, text)
        except IncompleteWrite as exc:
            kept = exc
        except StoreError as exc:
            message = str(exc)
            assert "disk is full" in message or "no space left" in message, message
            # Refused before anything was kept: the event is not there, so doing it again is right.
            events = mgr.store.read_events(session.id).events
            assert len(events) == before, [e.kind.value for e in events[before:]]
            return "refused"
        else:
            return "done"
        message = str(kept)
        assert "disk is full" in message or "no space left" in message, message
        assert f"recorded as event {kept.kept_seq}" in message, message
        assert "do not record it again" in message, message
        assert kept.missing and all(name in message for name in kept.missing), message
        assert recorder.failures, "the refusal did not come from a store write"
        events = mgr.store.read_events(session.id).events
        assert [e.seq for e in events] == list(range(1, before + 2))  # exactly one event added
        assert events[-1].seq == kept.kept_seq
        assert text in str(events[-1].payload)

    # Space again: the next recovery point writes what was missing, and the event
    # is in the session once.
    disk.make_writable()
    (disk.path / "filler").unlink(missing_ok=True)
    with manager(url, project) as mgr:
        try:
            mgr.save(session.id)
        except NoActiveSession:
            # The interruption's lease was given back before the disk filled: this
            # command found the session closed in its journal and said so.
            assert operation == "interrupt"
        events = mgr.events(session.id)
        assert sum(text in str(e.payload) for e in events) == 1
        assert mgr.verify()["ok"], mgr.verify()["damage"]
        journal_says = mgr.load(session.id).view.record
        assert mgr.get(session.id).status is journal_says.status
        backup = mgr.store.load_emergency(session.id)
        assert backup is not None and backup.status is journal_says.status
    return "kept"


@pytest.mark.slow
@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_disk_that_fills_up_while_a_session_starts_says_the_session_exists(
    kind: str, disk: Disk, tmp_path: Path
) -> None:
    """``start`` creates the session, then records its task: when the disk fills up
    in between, the error names the session, so the user does not start another."""
    project = tmp_path / "project"
    project.mkdir()
    # A long phase: each record of the start needs pages of its own, also in SQLite.
    phase = "phase-" + "".join(random.Random(7).choice("abcdefgh") for _ in range(3000))
    outcomes: list[str] = []
    for leftover in range(0, 128 * 1024, 1024):
        base = disk.path / f"trial-{leftover}"
        url = store_url(kind, base)
        with pytest.MonkeyPatch.context() as monkeypatch, manager(url, project) as mgr:
            mgr.start(task="TASK-0", owned_by_process=False, auto_save=False).end()
            WriteRecorder(kind, base, mgr.store, monkeypatch)
            disk.fill(leftover)
            if not disk.real and kind == "sqlite":
                conn = mgr.store._connection()  # type: ignore[attr-defined]
                pages = conn.execute("PRAGMA page_count").fetchone()[0] + leftover // 4096
                conn.execute(f"PRAGMA max_page_count = {pages}")
            try:
                mgr.start(task="TASK-1", phase=phase, owned_by_process=False, auto_save=False)
            except IncompleteWrite as exc:
                message = str(exc)
                (started,) = mgr.store.list_sessions()[1:]
                assert message.startswith(f"session {started.id} created"), message
                assert "disk is full" in message or "no space left" in message, message
                assert "do not start another" in message or "do not record it" in message
                outcomes.append("kept")
            except StoreError as exc:
                assert "disk is full" in str(exc) or "no space left" in str(exc), exc
                assert len(mgr.store.list_sessions()) == 1  # nothing was created
                outcomes.append("refused")
            else:
                outcomes.append("done")
        disk.make_writable()
        shutil.rmtree(base)
        (disk.path / "filler").unlink(missing_ok=True)
        if outcomes[-1] == "done":
            break
    assert "kept" in outcomes, f"the disk never filled up right after the session: {outcomes}"
    FIGURES["sessions kept and said so when the disk filled up as they started"] += outcomes.count(
        "kept"
    )


@pytest.mark.slow
@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_read_only_store_refuses_writes_in_one_line_and_keeps_every_byte(
    kind: str, disk: Disk, tmp_path: Path
) -> None:
    url = store_url(kind, disk.path)
    project = tmp_path / "project"
    project.mkdir()
    with manager(url, project) as mgr:
        session = mgr.start(task="TASK-1", owned_by_process=False, auto_save=False)
        seq = session.add_message("user", "before the store became read-only")
        session.checkpoint(observe=False)
    before = state(kind, disk.path)
    disk.make_read_only()
    try:
        for args in (
            ["message", "--session", session.id, "--role", "user", "lost?"],
            ["update", "--session", session.id, "--decision", "lost?"],
            ["save", "--session", session.id],
            ["start", "--task", "TASK-2"],
        ):
            said = cli_in_process(["--store", url, *args], project)
            assert_one_clear_error_line(said)
            assert any(
                word in said.stderr for word in ("read-only", "readonly", "permission", "write")
            ), said.stderr
            FIGURES["writes refused by a read-only store"] += 1
        assert state(kind, disk.path) == before
    finally:
        disk.make_writable()
    with manager(url, project) as mgr:
        assert mgr.events(session.id)[seq - 1].payload["text"] == (
            "before the store became read-only"
        )
        assert mgr.verify()["ok"]


@pytest.mark.parametrize("call", ["add_message", "checkpoint", "decide", "start"])
def test_permission_denied_on_any_write_is_clear_and_changes_nothing(
    call: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EACCES (root ignores file modes, so it is injected) on the files store's writes."""
    url = store_url("files", tmp_path)
    with manager(url, tmp_path) as mgr:
        session = mgr.start(task="TASK-1", owned_by_process=False, auto_save=False)
        session.add_message("user", "kept")
        root = tmp_path / "tracking"
        before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
        real_open, real_replace = os.open, os.replace

        def denied(*args: Any, **kwargs: Any) -> Any:
            raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(args[0]))

        def open_(file: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and ".lock" not in str(file):
                denied(file)
            return real_open(file, flags, *args, **kwargs)

        with monkeypatch.context() as patch:
            patch.setattr(os, "open", open_)
            patch.setattr(os, "replace", denied)
            patch.setattr(os, "write", lambda fd, data: denied(fd))
            with pytest.raises(StoreError, match="permission denied"):
                if call == "add_message":
                    session.add_message("user", "lost?")
                elif call == "checkpoint":
                    session.checkpoint(observe=False)
                elif call == "decide":
                    session.decide("lost?")
                else:
                    mgr.start(task="TASK-2", owned_by_process=False, auto_save=False)
        assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
        del real_replace
