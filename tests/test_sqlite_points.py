"""The SQLite store's recovery points: damage, pruning's checks, and their ids."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_continuity import SessionManager, ids
from agent_continuity.errors import CorruptRecord, DuplicateRecord, InvalidInput
from agent_continuity.model import RecoveryPointInfo, Trigger
from agent_continuity.replay import SessionView
from agent_continuity.storage.sql import points as sqlite_points
from agent_continuity.storage.sqlite import SqliteStore
from sqlite_support import NOW, flip_byte, new_session, note, raw


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def store(db: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(db)
    yield opened
    opened.close()


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


# -- automatic points in sync mode ---------------------------------------------


def test_an_automatic_point_leaves_the_connection_syncing_every_commit(tmp_path: Path) -> None:
    mgr = SessionManager(store="sqlite:///s.db", project_dir=tmp_path, user_id="u", observer=False)
    session = mgr.start(type="test", auto_save=False)
    store = mgr.store
    assert isinstance(store, SqliteStore)
    for trigger in ("auto", "user-request", "auto"):
        session.add_message("user", f"before a {trigger} point")
        session.checkpoint(trigger=trigger)
        level = store._connection().execute("PRAGMA synchronous").fetchone()[0]
        assert level == 2  # FULL: the next append is fsynced, and the point with it
    session.end()
    mgr.close()


def test_every_acknowledged_automatic_point_survives_kill_9(tmp_path: Path) -> None:
    writer = textwrap.dedent(
        f"""
        from agent_continuity import SessionManager
        mgr = SessionManager(store="sqlite:///s.db", project_dir={str(tmp_path)!r},
                             user_id="u", observer=False)
        session = mgr.start(type="test", auto_save=False)
        print(session.id, flush=True)
        n = 0
        while True:
            n += 1
            session.add_message("user", f"message {{n}}")
            print(session.view.seq, session.checkpoint(trigger="auto"), flush=True)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    assert proc.stdout is not None
    session_id = proc.stdout.readline().strip()
    acked = [proc.stdout.readline().split() for _ in range(60)]
    proc.send_signal(signal.SIGKILL)
    acked += [line.split() for line in proc.stdout.read().splitlines() if len(line.split()) == 2]
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    store = SqliteStore(tmp_path / "s.db")
    seq, newest = int(acked[-1][0]), acked[-1][1]
    point = store.load_point(newest)  # the last one acknowledged is there, whole
    assert (point.session_id, point.seq) == (session_id, seq)
    kept = [p.id for p in store.list_points(session_id)]
    assert newest in kept and len(kept) <= 6  # pruned to backupCount (5), plus a kill's leftover
    store.close()


def test_a_connection_that_cannot_sync_again_is_never_used_again(tmp_path: Path) -> None:
    mgr = SessionManager(store="sqlite:///s.db", project_dir=tmp_path, user_id="u", observer=False)
    session = mgr.start(type="test", auto_save=False)
    store = mgr.store
    assert isinstance(store, SqliteStore)
    unsynced = store._connection()

    def refuse_full(action: int, arg1: str | None, arg2: str | None, *_: object) -> int:
        refused = action == sqlite3.SQLITE_PRAGMA and arg1 == "synchronous" and arg2 == "FULL"
        return sqlite3.SQLITE_DENY if refused else sqlite3.SQLITE_OK

    unsynced.set_authorizer(refuse_full)  # SQLite itself refuses to go back to FULL
    point = session.checkpoint(trigger="auto")

    assert store.load_point(point).id == point  # the point was saved
    fresh = store._connection()
    assert fresh is not unsynced
    assert fresh.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: appends fsync again
    session.add_message("user", "after the refused pragma")
    assert mgr.events(session.id)[-1].payload["text"] == "after the refused pragma"
    session.end()
    mgr.close()
