"""Identifiers are made and parsed exactly as the specification writes them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_continuity import ids
from agent_continuity.errors import InvalidIdentifier


def test_session_ids_follow_the_specification() -> None:
    assert ids.make_session_id(date(2024, 1, 24), 1) == "SESSION-240124-001"
    assert ids.make_session_id(date(2024, 1, 24), 42) == "SESSION-240124-042"
    assert ids.make_session_id(date(2024, 1, 24), 1000) == "SESSION-240124-1000"
    key = ids.parse_session_id("SESSION-240124-002")
    assert (key.day, key.number, key.short) == (date(2024, 1, 24), 2, "240124-002")


def test_continuation_and_recovery_ids_embed_the_session() -> None:
    assert (
        ids.make_continuation_id("SESSION-240124-001", "admin interface")
        == "CONTINUATION-240124-001-ADMIN-INTERFACE"
    )
    assert ids.parse_continuation_id("CONTINUATION-240124-001-STEP-003")[1] == "STEP-003"
    at = datetime(2024, 1, 24, 10, 30, tzinfo=UTC)
    assert ids.make_recovery_id("SESSION-240124-001", at=at) == "RECOVERY-240124-001-103000"
    assert (
        ids.make_recovery_id("SESSION-240124-001", auto_save=15)
        == "RECOVERY-240124-001-AUTO-SAVE-15"
    )
    assert ids.session_of_recovery_id("RECOVERY-240124-001-AUTO-SAVE-15") == "SESSION-240124-001"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "../../etc/passwd",
        "SESSION-2411-1",
        "SESSION-241124-1",
        "SESSION-241124-000",
        "SESSION-241324-001",
        "SESSION-241124-0001",
        "session-241124-001",
        "SESSION-241124-001/..",
        " SESSION-241124-001",
        "SESSION-241124-001\n",
        "SESSION-\uff1241124-001",
        None,
        7,
    ],
)
def test_anything_else_is_refused(bad: object) -> None:
    with pytest.raises(InvalidIdentifier):
        ids.parse_session_id(bad)


@pytest.mark.parametrize(
    "bad",
    [
        "RECOVERY-241124-001-246000",
        "RECOVERY-241124-001-AUTO-SAVE-0",
        "RECOVERY-241124-001",
        "RECOVERY-241124-001-../x",
        "CONTINUATION-241124-001-STEP-003",
    ],
)
def test_malformed_recovery_ids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidIdentifier):
        ids.parse_recovery_id(bad)


@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
    st.integers(min_value=1, max_value=10**6),
)
def test_session_ids_round_trip(day: date, number: int) -> None:
    key = ids.parse_session_id(ids.make_session_id(day, number))
    assert (key.day, key.number) == (day, number)


@given(st.text(max_size=40))
def test_arbitrary_text_is_a_valid_id_or_refused_cleanly(text: str) -> None:
    try:
        key = ids.parse_session_id(text)
    except InvalidIdentifier:
        return
    assert str(key) == text and "/" not in text and ".." not in text
