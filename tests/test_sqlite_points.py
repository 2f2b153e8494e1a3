"""The SQLite store's recovery points: damage, pruning's checks, and their ids."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_continuity import ids
from agent_continuity.errors import CorruptRecord, DuplicateRecord, InvalidInput
from agent_continuity.model import RecoveryPointInfo, Trigger
from agent_continuity.replay import SessionView
from agent_continuity.storage import sqlite_points
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
