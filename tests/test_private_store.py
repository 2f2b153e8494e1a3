"""Private by default (issue 17): folders 0700 and files 0600 whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_continuity import SessionManager


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _loose(root: Path) -> list[str]:
    """Every path under ``root`` (itself included) that group or others may use."""
    found = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        wanted = 0o700 if path.is_dir() else 0o600
        if mode != wanted:
            found.append(f"{path.relative_to(root.parent)} {oct(mode)}")
    return found


def _work(mgr: SessionManager) -> None:
    with mgr.start(task="T-1") as session:
        session.add_message("user", "hello")
        session.decide("use sqlite")
        session.save_context_snapshot()


def test_files_store_creates_only_private_files_and_folders(
    tmp_path: Path, umask_022: None
) -> None:
    root = tmp_path / "projectDocs" / "tracking"
    with SessionManager(f"files:{root}", tmp_path, "alice", observer=False) as mgr:
        _work(mgr)
    assert any(root.rglob("*.jsonl")), "the walk must see the journals"
    assert _loose(root) == []


def test_sqlite_store_and_its_companions_are_private(tmp_path: Path, umask_022: None) -> None:
    db = tmp_path / "state" / "continuity.db"
    with SessionManager(f"sqlite:///{db}", tmp_path, "alice", observer=False) as mgr:
        _work(mgr)
        # While a connection is open, the write-ahead log and shared memory exist.
        companions = [Path(f"{db}{s}") for s in ("-wal", "-shm")]
        assert all(p.exists() for p in companions)
        assert _loose(db.parent) == []
    assert _loose(db.parent) == []


def test_an_existing_loose_store_is_narrowed_when_opened(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with SessionManager(f"files:{root}", tmp_path, "alice", observer=False) as mgr:
        _work(mgr)
    root.chmod(0o755)
    db = tmp_path / "continuity.db"
    with SessionManager(f"sqlite:///{db}", tmp_path, "alice", observer=False) as mgr:
        _work(mgr)
    db.chmod(0o644)

    SessionManager(f"files:{root}", tmp_path, "alice", observer=False).close()
    with SessionManager(f"sqlite:///{db}", tmp_path, "alice", observer=False) as mgr:
        assert len(mgr.sessions()) == 1
        for suffix in ("", "-wal", "-shm"):
            assert stat.S_IMODE(Path(f"{db}{suffix}").stat().st_mode) == 0o600
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


def test_verify_repair_narrows_every_file_and_folder_of_an_old_files_store(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with SessionManager(f"files:{root}", tmp_path, "alice", observer=False) as mgr:
        _work(mgr)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    with SessionManager(f"files:{root}", tmp_path, "alice", observer=False) as mgr:
        assert mgr.verify()["ok"]
        report = mgr.verify(repair=True)
    assert any("narrowed" in line for line in report["repaired"]), report
    assert _loose(root) == []
