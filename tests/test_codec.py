"""The byte formats of the codec: journal lines and compressed records, readable and checked."""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_continuity.errors import CorruptRecord, InvalidInput
from agent_continuity.model import Event, EventKind, format_time
from agent_continuity.storage import codec

# Keys deliberately out of order, nested, and with text beyond ASCII.
DOC: dict[str, Any] = {
    "sessionId": "SESSION-241124-001",
    "seq": 12,
    "recentMessages": [{"text": "naïve café — 東京", "role": "user", "seq": 11}],
    "codeContext": {"vcs": "git", "files": {"b.py": 2, "a.py": 1}},
    "ratio": 0.25,
}


def canonical_checksum(doc: dict[str, Any]) -> str:
    """The documented rule: SHA-256 of the canonical JSON (sorted keys, compact) of the rest."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_a_point_is_gzip_json_that_verifies_by_the_documented_rule() -> None:
    stored = json.loads(gzip.decompress(codec.dump_compressed(DOC)))  # what zcat | jq sees
    checksum = stored.pop("checksum")
    assert stored == DOC
    assert checksum == canonical_checksum(DOC)
    assert codec.load_compressed(codec.dump_compressed(DOC)) == DOC


def test_a_point_written_by_an_earlier_version_still_loads() -> None:
    # Earlier versions stored the keys in insertion order, not sorted.
    old = json.dumps({**DOC, "checksum": canonical_checksum(DOC)}, ensure_ascii=False)
    assert codec.load_compressed(gzip.compress(old.encode(), 6, mtime=0)) == DOC


@pytest.mark.parametrize("where", ["body", "checksum"])
def test_a_changed_byte_in_a_point_is_caught(where: str) -> None:
    raw = bytearray(gzip.decompress(codec.dump_compressed(DOC)))
    at = raw.index(b"caf") if where == "body" else len(raw) - 10
    raw[at] = ord("d") if raw[at] != ord("d") else ord("e")
    with pytest.raises(CorruptRecord, match="fails its checksum"):
        codec.load_compressed(gzip.compress(bytes(raw)), "point.json.gz")


def test_a_point_cut_short_is_caught() -> None:
    data = codec.dump_compressed(DOC)
    with pytest.raises(CorruptRecord, match="damaged"):
        codec.load_compressed(data[: len(data) - 12], "point.json.gz")


def test_a_document_may_not_bring_its_own_checksum() -> None:
    with pytest.raises(InvalidInput, match="checksum"):
        codec.dump_compressed({**DOC, "checksum": "sha256:0"})


# -- journal lines ----------------------------------------------------------------


@given(
    at=st.datetimes(
        min_value=datetime(1, 1, 2),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7, minutes=-30)), None]),
    ),
    kind=st.sampled_from(list(EventKind)),
    seq=st.integers(min_value=1, max_value=10**12),
)
def test_a_journal_line_is_the_events_json_with_its_checksum(
    at: datetime, kind: EventKind, seq: int
) -> None:
    event = Event(seq=seq, kind=kind, at=at, payload={"text": "x", "args": {"n": [1, {"k": None}]}})
    line = codec.encode_event(event)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    fields = json.loads(line)
    crc = fields.pop("crc")
    assert fields == {
        "seq": seq,
        "kind": kind.value,
        "at": format_time(event.at),  # milliseconds, UTC, "Z"
        "payload": event.payload,
    }
    compact = json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()
    assert crc == f"{zlib.crc32(compact):08x}"
    assert codec.decode_event(line).at == datetime.fromisoformat(format_time(event.at))


@given(at=st.datetimes(min_value=datetime(1, 1, 2), timezones=st.just(UTC)))
def test_a_time_read_back_is_written_back_the_same(at: datetime) -> None:
    written = format_time(at)
    assert format_time(datetime.fromisoformat(written)) == written
    assert not written.endswith(".000Z")


@pytest.mark.parametrize("payload", [{1: "x"}, {"ok": [{"deep": {(1, 2): "x"}}]}])
def test_a_payload_key_that_is_not_text_is_refused(payload: dict[Any, Any]) -> None:
    event = Event.model_construct(
        seq=1, kind=EventKind.NOTE, at=datetime(2026, 1, 1, tzinfo=UTC), payload=payload
    )
    with pytest.raises(InvalidInput, match="keys must be text"):
        codec.encode_event(event)
