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

from agent_continuity.errors import StoreError
from agent_continuity.storage import Store
from agent_continuity.storage.base import WRITE_METHODS

WRITES = WRITE_METHODS
DISK_BYTES = 256 * 1024
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
