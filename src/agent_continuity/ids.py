"""Identifier formats of the continuity framework: make, parse, validate.

* ``SESSION-{YYMMDD}-{NNN}``: NNN is the 1-based count of that day's sessions,
  zero-padded to three digits and wider (without padding) past 999.
* ``CONTINUATION-{YYMMDD-NNN}-{STEP}``: STEP is upper-case words joined by ``-``.
* ``RECOVERY-{YYMMDD-NNN}-{HHMMSS}`` and ``RECOVERY-{YYMMDD-NNN}-AUTO-SAVE-{N}``.

Every id reaches a store only after passing through these functions, so a
path-like string (``../../etc/passwd``) can never become a file name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from agent_continuity.errors import InvalidIdentifier

_DAY = r"(?P<day>\d{6})"
_NNN = r"(?P<nnn>\d{3,9})"
_SESSION_RE = re.compile(rf"SESSION-{_DAY}-{_NNN}")
_STEP = r"(?P<step>[A-Z0-9]+(?:-[A-Z0-9]+)*)"
_CONTINUATION_RE = re.compile(rf"CONTINUATION-{_DAY}-{_NNN}-{_STEP}")
_RECOVERY_RE = re.compile(
    rf"RECOVERY-{_DAY}-{_NNN}-(?:(?P<time>\d{{6}})|AUTO-SAVE-(?P<auto>[1-9]\d{{0,9}}))"
)


@dataclass(frozen=True, slots=True)
class SessionKey:
    """The parts of a session id: the day it was created and its number that day."""

    day: date
    number: int

    def __str__(self) -> str:
        return make_session_id(self.day, self.number)

    @property
    def short(self) -> str:
        """``YYMMDD-NNN``, the form embedded in continuation and recovery ids."""
        return str(self)[len("SESSION-") :]


@dataclass(frozen=True, slots=True)
class RecoveryKey:
    """The parts of a recovery point id."""

    session: SessionKey
    time: str | None
    auto_save: int | None


def _day(text: str, whole: str) -> date:
    # Always 20YY: strptime's %y would read 69..99 as the 1900s.
    try:
        return date(2000 + int(text[:2]), int(text[2:4]), int(text[4:]))
    except ValueError:
        raise InvalidIdentifier(
            f"{whole!r} names no real date ({text!r} is not YYMMDD); "
            "use an id such as SESSION-241124-001"
        ) from None


def _number(text: str, whole: str) -> int:
    number = int(text)
    # Exactly one spelling per number: three digits with zero padding, or the
    # plain number once it needs more than three.
    if number < 1 or (len(text) > 3 and text.startswith("0")):
        raise InvalidIdentifier(
            f"{whole!r} has a malformed session number {text!r}; "
            "numbers start at 001 and are padded to three digits"
        )
    return number


def _format_number(number: int) -> str:
    return f"{number:03d}"


def day_code(day: date) -> str:
    """``YYMMDD`` of a date."""
    return day.strftime("%y%m%d")


def make_session_id(day: date, number: int) -> str:
    """Build ``SESSION-{YYMMDD}-{NNN}``.

    Args:
        day: The (UTC) day the session is created.
        number: The 1-based count of that day's sessions.

    Raises:
        InvalidIdentifier: If ``number`` is not positive.
    """
    if number < 1:
        raise InvalidIdentifier(f"session numbers start at 1, not {number}")
    return f"SESSION-{day_code(day)}-{_format_number(number)}"


def parse_session_id(value: object) -> SessionKey:
    """Parse and validate a session id.

    Raises:
        InvalidIdentifier: If ``value`` is not exactly a well-formed session id.
    """
    text = _require_text(value, "session id", "SESSION-241124-001")
    match = _SESSION_RE.fullmatch(text)
    if match is None:
        raise InvalidIdentifier(
            f"{text!r} is not a session id; expected SESSION-YYMMDD-NNN, e.g. SESSION-241124-001"
        )
    return SessionKey(_day(match["day"], text), _number(match["nnn"], text))


def validate_session_id(value: object) -> str:
    """Return ``value`` unchanged if it is a valid session id, else raise InvalidIdentifier."""
    parse_session_id(value)
    assert isinstance(value, str)
    return value


def step_code(step: str) -> str:
    """Turn a free-form step name into the STEP part of a continuation id.

    ``"admin-interface integration"`` becomes ``ADMIN-INTERFACE-INTEGRATION``.
    """
    words = re.findall(r"[A-Za-z0-9]+", step)
    if not words:
        raise InvalidIdentifier(
            f"step {step!r} has no letters or digits to build a continuation id from"
        )
    return "-".join(word.upper() for word in words)[:80].rstrip("-")


def make_continuation_id(session_id: str, step: str) -> str:
    """Build ``CONTINUATION-{YYMMDD-NNN}-{STEP}`` for a session and a step name."""
    key = parse_session_id(session_id)
    return f"CONTINUATION-{key.short}-{step_code(step)}"


def parse_continuation_id(value: object) -> tuple[SessionKey, str]:
    """Parse a continuation id into its session and step.

    Raises:
        InvalidIdentifier: If ``value`` is not a well-formed continuation id.
    """
    text = _require_text(value, "continuation id", "CONTINUATION-241124-001-STEP-003")
    match = _CONTINUATION_RE.fullmatch(text)
    if match is None:
        raise InvalidIdentifier(
            f"{text!r} is not a continuation id; expected CONTINUATION-YYMMDD-NNN-STEP, "
            "e.g. CONTINUATION-241124-001-STEP-003"
        )
    key = SessionKey(_day(match["day"], text), _number(match["nnn"], text))
    return key, match["step"]


def make_recovery_id(
    session_id: str, *, at: datetime | None = None, auto_save: int | None = None
) -> str:
    """Build a recovery point id: by time of day (``HHMMSS``) or by auto-save number.

    Exactly one of ``at`` and ``auto_save`` must be given.
    """
    key = parse_session_id(session_id)
    if (at is None) == (auto_save is None):
        raise InvalidIdentifier("a recovery id needs either a time or an auto-save number")
    if auto_save is not None:
        if auto_save < 1:
            raise InvalidIdentifier(f"auto-save numbers start at 1, not {auto_save}")
        return f"RECOVERY-{key.short}-AUTO-SAVE-{auto_save}"
    assert at is not None
    return f"RECOVERY-{key.short}-{at.strftime('%H%M%S')}"


def parse_recovery_id(value: object) -> RecoveryKey:
    """Parse and validate a recovery point id.

    Raises:
        InvalidIdentifier: If ``value`` is not a well-formed recovery point id.
    """
    text = _require_text(value, "recovery point id", "RECOVERY-241124-001-103000")
    match = _RECOVERY_RE.fullmatch(text)
    if match is None:
        raise InvalidIdentifier(
            f"{text!r} is not a recovery point id; expected RECOVERY-YYMMDD-NNN-HHMMSS or "
            "RECOVERY-YYMMDD-NNN-AUTO-SAVE-N"
        )
    session = SessionKey(_day(match["day"], text), _number(match["nnn"], text))
    time = match["time"]
    if time is not None:
        hh, mm, ss = int(time[:2]), int(time[2:4]), int(time[4:])
        if hh > 23 or mm > 59 or ss > 59:
            raise InvalidIdentifier(f"{text!r} names no real time of day ({time!r})")
    auto = match["auto"]
    return RecoveryKey(session, time, int(auto) if auto is not None else None)


def validate_recovery_id(value: object) -> str:
    """Return ``value`` unchanged if it is a valid recovery point id."""
    parse_recovery_id(value)
    assert isinstance(value, str)
    return value


def session_of_recovery_id(point_id: str) -> str:
    """The session id a recovery point id belongs to."""
    return str(parse_recovery_id(point_id).session)


def _require_text(value: object, what: str, example: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidIdentifier(f"a {what} is required (for example {example}), got {value!r}")
    if not value.isascii():
        raise InvalidIdentifier(f"{value!r} is not a {what}; ids are ASCII, e.g. {example}")
    return value
