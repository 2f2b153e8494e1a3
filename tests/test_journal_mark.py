"""Journal marks: a point vouches for the journal lines it covers, and only for intact ones.

A files-store recovery point carries the CRC-32 of the journal bytes it
covers when its writer knew them intact. A reader whose bytes match skips
checking those lines one by one; anything else must read exactly as it
would without the mark: same events, same damage, same end.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import pytest

from agent_continuity import SessionManager, ids
from agent_continuity.storage.files import FileStore
from agent_continuity.storage.journal_file import JournalMark, read_journal
from journal_support import session_with_point


def _manager(tmp_path: Path) -> SessionManager:
    return SessionManager(store="files:store", project_dir=tmp_path, user_id="u", observer=False)


def _files(mgr: SessionManager) -> FileStore:
    assert isinstance(mgr.store, FileStore)
    return mgr.store


def _mark_of(mgr: SessionManager, point_id: str) -> dict[str, int] | None:
    session_id = ids.session_of_recovery_id(point_id)
    info = next(p for p in mgr.store.list_points(session_id) if p.id == point_id)
    doc = json.loads(gzip.decompress(Path(info.location).read_bytes()))
    mark: dict[str, int] | None = doc.get("journalMark")
    return mark


def test_a_point_carries_the_crc_of_the_journal_it_covers(tmp_path: Path) -> None:
    mgr = _manager(tmp_path)
    session = mgr.start(type="test", auto_save=False)
    for number in range(12):
        session.add_message("user", f"message {number}")
    point = session.checkpoint()
    journal = _files(mgr).layout.journal(session.id).read_bytes()

    mark = _mark_of(mgr, point)

    assert mark == {"seq": session.view.seq, "bytes": len(journal), "crc32": zlib.crc32(journal)}
    session.end()
    mgr.close()


def test_damage_before_a_marked_point_is_still_reported_by_recovery(tmp_path: Path) -> None:
    session_id, point = session_with_point(_manager(tmp_path))
    mgr = _manager(tmp_path)
    assert _mark_of(mgr, point) is not None
    path = _files(mgr).layout.journal(session_id)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[9] = lines[9].replace(b"message", b"massage")  # event 10, before the point
    path.write_bytes(b"".join(lines))

    result = mgr.analyse(session_id)

    assert any("event 11 follows event 9" in warning for warning in result.warnings)
    assert result.view is not None
    assert result.view.message_count == 35  # the ten before the damage are counted by the point
    assert [m["text"] for m in result.view.recent_messages][-5:] == [f"reply {n}" for n in range(5)]
    mgr.close()


def test_a_writer_that_found_damage_does_not_vouch_for_it(tmp_path: Path) -> None:
    session_id, _ = session_with_point(_manager(tmp_path))
    mgr = _manager(tmp_path)
    path = _files(mgr).layout.journal(session_id)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b"message", b"massage")
    path.write_bytes(b"".join(lines))

    mgr.recover(session_id, answer=True)  # resumes, and saves a point
    session = mgr.attach(session_id)
    session.add_message("user", "after the damage")
    point = session.checkpoint()

    assert _mark_of(mgr, point) is None
    session.end()
    mgr.close()
    reader = _manager(tmp_path)
    read = reader.store.read_events(session_id, after_seq=session.view.seq - 1)
    assert [d.kind for d in read.damage] == ["checksum", "gap"]
    reader.close()


def test_a_resumed_writer_marks_its_points_after_a_clean_read(tmp_path: Path) -> None:
    session_id, _ = session_with_point(_manager(tmp_path))
    mgr = _manager(tmp_path)
    mgr.recover(session_id, answer=True)
    session = mgr.attach(session_id)
    session.add_message("user", "resumed")
    point = session.checkpoint()
    journal = _files(mgr).layout.journal(session_id).read_bytes()

    assert _mark_of(mgr, point) == {
        "seq": session.view.seq,
        "bytes": len(journal),
        "crc32": zlib.crc32(journal),
    }
    session.end()
    mgr.close()


def _journal(tmp_path: Path, messages: int = 20) -> tuple[Path, JournalMark]:
    """A clean journal and the true mark of its first 12 events."""
    mgr = _manager(tmp_path)
    session = mgr.start(type="test", auto_save=False)
    for number in range(messages):
        session.add_message("user", f"message {number}")
    path = _files(mgr).layout.journal(session.id)
    session.end()
    mgr.close()
    data = path.read_bytes()
    size = sum(len(line) for line in data.splitlines(keepends=True)[:12])
    return path, JournalMark(seq=12, size=size, crc=zlib.crc32(data[:size]))


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1 :]


_DAMAGE = {
    "none": lambda data, size: data,
    "prefix byte flipped": lambda data, size: _flip(data, size // 2),
    "last covered byte flipped": lambda data, size: _flip(data, size - 3),
    "tail byte flipped": lambda data, size: _flip(data, size + 40),
    "torn tail": lambda data, size: data[:-15],
    "cut inside the covered part": lambda data, size: data[: size - 30],
    "cut at the mark": lambda data, size: data[:size],
    "covered line removed": lambda data, size: b"".join(
        data.splitlines(keepends=True)[:3] + data.splitlines(keepends=True)[4:]
    ),
    "empty line inserted": lambda data, size: data[:size] + b"\n" + data[size:],
}


@pytest.mark.parametrize("damage", sorted(_DAMAGE))
@pytest.mark.parametrize("wrong", ["true mark", "crc", "size", "not a line end", "later seq"])
def test_a_read_with_a_mark_equals_the_read_without(
    tmp_path: Path, damage: str, wrong: str
) -> None:
    path, mark = _journal(tmp_path)
    data = path.read_bytes()
    mark = {
        "true mark": mark,
        "crc": JournalMark(mark.seq, mark.size, mark.crc ^ 1),
        "size": JournalMark(mark.seq, mark.size + 1, mark.crc),
        "not a line end": JournalMark(mark.seq, mark.size - 1, zlib.crc32(data[: mark.size - 1])),
        "later seq": JournalMark(mark.seq + 1, mark.size, mark.crc),
    }[wrong]
    path.write_bytes(_DAMAGE[damage](data, mark.size))

    for after in (0, 5, 11, 12, 15, 25):  # before the mark too: a point's message window
        plain, plain_damaged, _ = read_journal(path, after)
        marked, marked_damaged, _ = read_journal(path, after, mark)
        assert marked.events == plain.events
        assert marked.damage == plain.damage
        assert marked.end_seq == plain.end_seq
        assert marked_damaged == plain_damaged
    if wrong == "true mark" and damage in ("none", "tail byte flipped", "torn tail"):
        assert mark.holds(path.read_bytes())  # the mark was used, not just ignored
