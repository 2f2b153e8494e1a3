"""SQLite journal marks: a point vouches for the rows it covers, and only for intact ones.

A SQLite recovery point carries the CRC-32 of its journal's rows 1..seq
joined (the bytes a files journal would hold) when its writer knew them
intact. A reader whose rows match, one line per row, skips checking them one
by one; anything else must read exactly as it would without the mark: same
events, same damage, same end.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent_continuity import SessionManager, ids
from agent_continuity.config import Config
from agent_continuity.model import Trigger
from agent_continuity.replay import SessionView
from agent_continuity.storage.journal_file import JournalMark
from agent_continuity.storage.sql import journal as sqlite_journal
from agent_continuity.storage.sqlite import SqliteStore
from journal_support import session_with_point
from sqlite_support import JOURNAL_OF, NOW, flip_byte, new_session, note, raw, request

_ROW = f"journal = {JOURNAL_OF} AND seq = ?"


def _manager(tmp_path: Path, durability: str = "sync") -> SessionManager:
    config = Config(durability=durability, user="u")
    return SessionManager(
        store="sqlite:///store.db", project_dir=tmp_path, config=config, observer=False
    )


def _sqlite(mgr: SessionManager) -> SqliteStore:
    assert isinstance(mgr.store, SqliteStore)
    return mgr.store


def _mark_of(db: Path, point_id: str) -> dict[str, int] | None:
    with raw(db) as conn:
        body = conn.execute("SELECT body FROM points WHERE id = ?", (point_id,)).fetchone()[0]
    mark: dict[str, int] | None = json.loads(gzip.decompress(body)).get("journalMark")
    return mark


def _lines(db: Path, session_id: str) -> list[bytes]:
    with raw(db) as conn:
        rows = conn.execute(
            f"SELECT line FROM events WHERE journal = {JOURNAL_OF} ORDER BY seq", (session_id,)
        ).fetchall()
    return [bytes(row[0]) for row in rows]


def _true_mark(db: Path, session_id: str, seq: int) -> dict[str, int]:
    data = b"".join(_lines(db, session_id)[:seq])
    return {"seq": seq, "bytes": len(data), "crc32": zlib.crc32(data)}


@pytest.mark.parametrize("durability", ["sync", "batched"])
def test_a_point_carries_the_crc_of_the_rows_it_covers(tmp_path: Path, durability: str) -> None:
    mgr = _manager(tmp_path, durability)
    session = mgr.start(type="test", auto_save=False)
    for number in range(12):
        session.add_message("user", f"message {number}")
    first = session.checkpoint()
    session.add_message("user", "one more")
    second = session.checkpoint()
    session.end()
    mgr.close()

    db = tmp_path / "store.db"
    seqs = {p.id: p.seq for p in SqliteStore(db).list_points(session.id)}
    assert _mark_of(db, first) == _true_mark(db, session.id, seqs[first])
    assert _mark_of(db, second) == _true_mark(db, session.id, seqs[second])
    assert seqs[second] > seqs[first] > 12


def test_the_loaded_point_does_not_hold_the_mark(tmp_path: Path) -> None:
    session_id, point_id = session_with_point(_manager(tmp_path))
    store = SqliteStore(tmp_path / "store.db")
    assert _mark_of(tmp_path / "store.db", point_id) is not None

    point = store.load_point(point_id)

    assert "journalMark" not in point.to_wire()
    assert store._marks.for_read(session_id, point.seq) is not None  # remembered instead
    store.close()


def test_damage_before_a_marked_point_is_still_reported_by_recovery(tmp_path: Path) -> None:
    session_id, point = session_with_point(_manager(tmp_path))
    db = tmp_path / "store.db"
    assert _mark_of(db, point) is not None
    flip_byte(db, "events", "line", _ROW, (session_id, 10))  # before the point
    mgr = _manager(tmp_path)

    result = mgr.analyse(session_id)

    assert _sqlite(mgr)._marks.for_read(session_id, 10_000) is not None  # the mark was offered
    assert any(
        f"events/{session_id}/10" in warning and "checksum" in warning
        for warning in result.warnings
    )
    assert result.view is not None
    assert result.view.message_count == 35
    assert [m["text"] for m in result.view.recent_messages][-5:] == [f"reply {n}" for n in range(5)]
    mgr.close()


def test_a_writer_that_found_damage_does_not_vouch_for_it(tmp_path: Path) -> None:
    session_id, _ = session_with_point(_manager(tmp_path))
    db = tmp_path / "store.db"
    flip_byte(db, "events", "line", _ROW, (session_id, 4))
    mgr = _manager(tmp_path)

    mgr.recover(session_id, answer=True)  # resumes, and reads the damaged journal
    session = mgr.attach(session_id)
    session.add_message("user", "after the damage")
    point = session.checkpoint()

    assert _mark_of(db, point) is None
    session.end()
    mgr.close()
    reader = _manager(tmp_path)
    read = reader.store.read_events(session_id, after_seq=session.view.seq - 1)
    assert [d.location.rsplit("/", 1)[1] for d in read.damage] == ["4"]
    assert [d.kind for d in read.damage] == ["checksum"]
    reader.close()


def test_a_resumed_writer_marks_its_points_after_a_clean_read(tmp_path: Path) -> None:
    session_id, _ = session_with_point(_manager(tmp_path))
    db = tmp_path / "store.db"
    mgr = _manager(tmp_path)
    mgr.recover(session_id, answer=True)
    session = mgr.attach(session_id)
    session.add_message("user", "resumed")
    point = session.checkpoint()

    assert _mark_of(db, point) == _true_mark(db, session_id, session.view.seq)
    assert session.view.seq == len(_lines(db, session_id))
    session.end()
    mgr.close()


def _checkpoint(store: SqliteStore, session_id: str, number: int) -> str:
    view = SessionView.replay(store.read_events(session_id).events)
    point = view.to_point(ids.make_recovery_id(session_id, auto_save=number), NOW, Trigger.AUTO)
    store.save_point(point)
    return point.id


def test_a_writer_whose_journal_moved_does_not_vouch_until_it_reads_it_clean(
    tmp_path: Path,
) -> None:
    db = tmp_path / "store.db"
    writer, other = SqliteStore(db), SqliteStore(db)
    record, lease = new_session(writer)
    writer.append(lease, [note("one")])
    other.append(lease, [note("from another handle")])  # the journal moves under the writer
    writer.append(lease, [note("two")])  # not in one statement: the journal moved
    assert writer._marks.running(record.id) is None

    view = SessionView.replay(other.read_events(record.id).events)  # not the writer's read
    point = view.to_point(ids.make_recovery_id(record.id, auto_save=1), NOW, Trigger.AUTO)
    writer.save_point(point)
    assert _mark_of(db, point.id) is None

    marked = _checkpoint(writer, record.id, 2)  # the writer reads its journal clean first
    assert _mark_of(db, marked) == _true_mark(db, record.id, 4)
    writer.close()
    other.close()


def test_repair_and_giving_up_the_lease_forget_what_the_writer_knew(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    store = SqliteStore(db)
    record, lease = new_session(store)
    store.append(lease, [note("one")])
    assert store._marks.running(record.id) == JournalMark(**_renamed(_true_mark(db, record.id, 2)))

    store.verify(repair=True)
    assert store._marks.running(record.id) is None
    store.read_events(record.id)  # a clean read of the whole journal: known again
    assert store._marks.running(record.id) is not None

    store.release_lease(lease)
    assert store._marks.running(record.id) is None
    store.read_events(record.id)
    assert store._marks.running(record.id) is not None

    store.acquire_lease(record.id, request("222@beta"))  # appends its lease event
    assert store._marks.running(record.id) is None
    store.close()


def test_a_point_before_the_writers_last_event_carries_no_mark(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    store = SqliteStore(db)
    record, lease = new_session(store)
    store.append(lease, [note("one")])
    view = SessionView.replay(store.read_events(record.id).events)
    store.append(lease, [note("two")])  # the writer knows events 1..3 now, not 1..2

    point = view.to_point(ids.make_recovery_id(record.id, auto_save=1), NOW, Trigger.AUTO)
    store.save_point(point)

    assert point.seq == 2
    assert _mark_of(db, point.id) is None
    assert _mark_of(db, _checkpoint(store, record.id, 2)) == _true_mark(db, record.id, 3)
    store.close()


def _renamed(mark: dict[str, int]) -> dict[str, int]:
    return {"seq": mark["seq"], "size": mark["bytes"], "crc": mark["crc32"]}


# -- a read with a mark equals the read without --------------------------------

_COVERED = 12  # the true mark covers events 1..12 of a 20-event journal


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    db = tmp_path / "store.db"
    store = SqliteStore(db)
    record, lease = new_session(store)
    for number in range(19):
        store.append(lease, [note(f"note {number}")])
    store.close()
    yield db, record.id


def _set(conn: sqlite3.Connection, sid: str, seq: int, line: bytes) -> None:
    conn.execute(f"UPDATE events SET line = ? WHERE {_ROW}", (line, sid, seq))


def _delete_after(conn: sqlite3.Connection, sid: str, seq: int) -> None:
    conn.execute(f"DELETE FROM events WHERE journal = {JOURNAL_OF} AND seq > ?", (sid, seq))


def _insert_copy(conn: sqlite3.Connection, sid: str, lines: list[bytes]) -> None:
    # Renumber events 7.. to 8.. (in two steps: the key is unique), then put a copy of 6 at 7.
    for shift in (1000, -999):
        conn.execute(
            f"UPDATE events SET seq = seq + ? WHERE journal = {JOURNAL_OF} AND seq >= ?",
            (shift, sid, 7 if shift > 0 else 1000),
        )
    conn.execute(
        f"INSERT INTO events (journal, seq, line) SELECT {JOURNAL_OF}, 7, ?", (sid, lines[5])
    )


def _split(conn: sqlite3.Connection, sid: str, lines: list[bytes], seq: int, at: int) -> None:
    """Move the row boundary between events ``seq`` and ``seq + 1``: the same bytes joined."""
    joined = lines[seq - 1] + lines[seq]
    cut = len(lines[seq - 1]) + at
    _set(conn, sid, seq, joined[:cut])
    _set(conn, sid, seq + 1, joined[cut:])


_Damage = Callable[[sqlite3.Connection, str, list[bytes]], None]
_DAMAGE: dict[str, _Damage] = {
    "none": lambda conn, sid, lines: None,
    "covered row flipped": lambda conn, sid, lines: _set(
        conn, sid, 5, lines[4].replace(b"note", b"nOte")
    ),
    "last covered row flipped": lambda conn, sid, lines: _set(
        conn, sid, 12, lines[11].replace(b"note", b"nOte")
    ),
    "row after the mark flipped": lambda conn, sid, lines: _set(
        conn, sid, 15, lines[14].replace(b"note", b"nOte")
    ),
    "covered row deleted": lambda conn, sid, lines: conn.execute(
        f"DELETE FROM events WHERE {_ROW}", (sid, 4)
    ),
    "covered row inserted": lambda conn, sid, lines: _insert_copy(conn, sid, lines),
    "covered row renumbered": lambda conn, sid, lines: conn.execute(
        f"UPDATE events SET seq = 21 WHERE {_ROW}", (sid, 12)
    ),
    "line split across covered rows": lambda conn, sid, lines: _split(conn, sid, lines, 5, 10),
    "covered newline moved to the next row": lambda conn, sid, lines: _split(
        conn, sid, lines, 12, -1
    ),
    "a line added to the last covered row": lambda conn, sid, lines: _set(
        conn, sid, 12, lines[11] + lines[12]
    ),
    "covered row emptied": lambda conn, sid, lines: _split(conn, sid, lines, 6, -len(lines[5])),
    "torn tail": lambda conn, sid, lines: _set(conn, sid, 20, lines[19][:-15]),
    "cut at the mark": lambda conn, sid, lines: _delete_after(conn, sid, 12),
    "cut inside the covered part": lambda conn, sid, lines: _delete_after(conn, sid, 8),
}
# Damage that leaves rows 1..12 exactly as the true mark saw them.
_COVERED_INTACT = {"none", "row after the mark flipped", "torn tail", "cut at the mark"}


@pytest.mark.parametrize("damage", sorted(_DAMAGE))
@pytest.mark.parametrize("wrong", ["true mark", "crc", "size", "later seq", "earlier seq"])
def test_a_read_with_a_mark_equals_the_read_without(
    journal: tuple[Path, str], damage: str, wrong: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, session_id = journal
    lines = _lines(db, session_id)
    assert len(lines) == 20
    true = JournalMark(**_renamed(_true_mark(db, session_id, _COVERED)))
    mark = {
        "true mark": true,
        "crc": JournalMark(true.seq, true.size, true.crc ^ 1),
        "size": JournalMark(true.seq, true.size + 1, true.crc),
        "later seq": JournalMark(true.seq + 1, true.size, true.crc),
        "earlier seq": JournalMark(true.seq - 1, true.size, true.crc),
    }[wrong]
    with raw(db) as conn:
        _DAMAGE[damage](conn, session_id, lines)
    plain, marked = SqliteStore(db), SqliteStore(db)
    marked._marks.remember(session_id, mark)
    accepted: list[JournalMark] = []
    covered = sqlite_journal._covered

    def spy(lines: list[bytes], offered: JournalMark) -> JournalMark | None:
        found = covered(lines, offered)
        if found is not None:
            accepted.append(found)
        return found

    monkeypatch.setattr(sqlite_journal, "_covered", spy)

    for after in (0, 11, 12, 15, 25):
        expected = plain.read_events(session_id, after)
        accepted.clear()
        read = marked.read_events(session_id, after)
        assert read.events == expected.events
        assert read.damage == expected.damage
        assert read.end_seq == expected.end_seq
        # Taken (its rows not checked one by one) exactly when it still holds, also
        # by a read from before it (a point's message window lies before the point).
        holds = wrong == "true mark" and damage in _COVERED_INTACT
        assert (accepted == [true]) == holds
    plain.close()
    marked.close()


def test_a_row_whose_newline_was_damaged_is_reported_before_the_point_too(
    tmp_path: Path,
) -> None:
    # The checksum covers the event's JSON, not the newline after it: a row that
    # lost its newline must still read as damage, wherever it is.
    session_id, _ = session_with_point(_manager(tmp_path))
    db = tmp_path / "store.db"
    with raw(db) as conn:
        line = bytes(
            conn.execute(f"SELECT line FROM events WHERE {_ROW}", (session_id, 5)).fetchone()[0]
        )
        conn.execute(f"UPDATE events SET line = ? WHERE {_ROW}", (line[:-1] + b" ", session_id, 5))
    mgr = _manager(tmp_path)

    result = mgr.analyse(session_id)

    assert any(f"events/{session_id}/5" in warning for warning in result.warnings)
    mgr.recover(session_id, answer=True)
    session = mgr.attach(session_id)
    session.add_message("user", "resumed over the damage")
    assert _mark_of(db, session.checkpoint()) is None  # nobody vouches for the damaged row
    session.end()
    mgr.close()
