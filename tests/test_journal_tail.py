"""Reading a journal after a recovery point: the tail is decoded, the rest is still checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_continuity import SessionManager
from agent_continuity.errors import CorruptRecord
from agent_continuity.model import Event, EventKind, utc_now
from agent_continuity.storage import codec
from agent_continuity.storage.files import FileStore


def _long_session(tmp_path: Path, messages: int) -> tuple[FileStore, str]:
    mgr = SessionManager(store="files:store", project_dir=tmp_path, user_id="u", observer=False)
    session = mgr.start(type="test", auto_save=False)
    for number in range(messages):
        session.add_message("user", f"message {number}")
    mgr.close()
    store = mgr.store
    assert isinstance(store, FileStore)
    return store, session.id


def test_damage_before_the_tail_is_still_reported(tmp_path: Path) -> None:
    store, session_id = _long_session(tmp_path, 40)
    path = store.layout.journal(session_id)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[9] = lines[9].replace(b"message", b"massage")  # event 10 fails its checksum
    path.write_bytes(b"".join(lines))

    read = store.read_events(session_id, after_seq=30)

    assert [e.seq for e in read.events] == list(range(31, 42))
    assert [d.kind for d in read.damage] == ["checksum", "gap"]
    assert "event 11 follows event 9" in read.damage[1].detail


def test_event_seq_agrees_with_decoding() -> None:
    event = Event(seq=1234, kind=EventKind.NOTE, at=utc_now(), payload={"text": '{"seq":9,'})
    line = codec.encode_event(event)

    assert codec.event_seq(line) == codec.decode_event(line).seq == 1234
    assert codec.event_seq(line.rstrip(b"\n")) == 1234
    with pytest.raises(CorruptRecord):
        codec.event_seq(line[:-5])
    with pytest.raises(CorruptRecord):
        codec.event_seq(line.replace(b"1234", b"1235"))


def test_whole_and_damaged_journals_read_the_same_events(tmp_path: Path) -> None:
    store, session_id = _long_session(tmp_path, 30)
    whole = store.read_events(session_id, after_seq=20)
    path = store.layout.journal(session_id)
    path.write_bytes(path.read_bytes() + b'{"seq":32,"kind":"message"')  # a torn tail

    torn = store.read_events(session_id, after_seq=20)

    assert whole.damage == []
    assert [e.seq for e in whole.events] == [e.seq for e in torn.events] == list(range(21, 32))
    assert whole.events == torn.events
    assert [d.kind for d in torn.damage] == ["torn-tail"]


@pytest.mark.parametrize("url", ["files:store", "sqlite:///s.db", "memory:"])
def test_a_read_after_the_last_event_still_knows_where_the_journal_ends(
    tmp_path: Path, url: str
) -> None:
    mgr = SessionManager(store=url, project_dir=tmp_path, user_id="u", observer=False)
    session = mgr.start(type="test", auto_save=False)
    for number in range(5):
        session.add_message("user", f"message {number}")

    read = mgr.store.read_events(session.id, after_seq=session.view.seq)

    assert read.events == []
    assert read.damage == []
    assert read.end_seq == session.view.seq
    assert mgr.store.read_events(session.id, after_seq=2).end_seq == session.view.seq
    session.end()
    mgr.close()
