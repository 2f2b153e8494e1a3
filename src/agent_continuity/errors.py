"""One exception hierarchy for the whole package.

Every error carries a stable ``code`` (for scripts and JSON output) and a
message that says what happened *and what to do about it*. Front ends print
``str(error)`` as one line and exit 1; they never show a traceback.
"""

from __future__ import annotations


class ContinuityError(Exception):
    """Base class of every error raised by agent-continuity.

    Attributes:
        code: A stable, machine-readable identifier of the failure.
    """

    code = "continuity-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidIdentifier(ContinuityError):
    """A string given where a SESSION-, CONTINUATION- or RECOVERY- id was expected."""

    code = "invalid-identifier"


class SessionNotFound(ContinuityError):
    """No session with that id exists in the store."""

    code = "session-not-found"


class NoActiveSession(ContinuityError):
    """A command needed a session but none was given and none is active."""

    code = "no-active-session"


class SessionStillActive(ContinuityError):
    """The session is still active (its owner is alive), so it cannot be copied or taken over."""

    code = "session-still-active"


class RecoveryPointNotFound(ContinuityError):
    """No recovery point with that id exists."""

    code = "recovery-point-not-found"


class CorruptRecord(ContinuityError):
    """A stored record failed its checksum or could not be decoded.

    Attributes:
        location: The file (or table and key) that holds the damaged record.
    """

    code = "corrupt-record"

    def __init__(self, message: str, location: str = "") -> None:
        super().__init__(message)
        self.location = location


class LeaseHeld(ContinuityError):
    """Another writer holds the session's lease, so this one may not append.

    Attributes:
        holder: Who holds the lease (``pid@host`` or ``cli``).
    """

    code = "lease-held"

    def __init__(self, message: str, holder: str = "") -> None:
        super().__init__(message)
        self.holder = holder


class StoreError(ContinuityError):
    """The store could not be opened, read or written (disk full, permissions, driver)."""

    code = "store-error"


class DuplicateRecord(StoreError):
    """A record with that id already exists; stores never overwrite one."""

    code = "duplicate-record"


class IncompleteWrite(StoreError):
    """A write failed after an earlier part of the same operation was made durable.

    ``s.decide(...)`` appends the decision, then writes the emergency backup and
    the recovery point its trigger asks for. When one of those later writes
    fails, the decision is still in the journal: this error says so, and
    recording it again would record it twice. What is missing is derived from
    the journal, so the next recovery point (``continuity save``) writes it.

    Attributes:
        kept_seq: The sequence number of the last event the operation recorded
            durably, or None when it recorded none (a recovery point alone).
        kept_point: The id of the recovery point it saved, if it saved one.
        missing: What was not written, e.g. ``["the major-decision recovery point"]``.
        cause: The error that stopped it (also its ``__cause__``).
    """

    code = "incomplete-write"

    def __init__(
        self,
        message: str,
        *,
        kept_seq: int | None = None,
        kept_point: str | None = None,
        missing: tuple[str, ...] = (),
        cause: ContinuityError | None = None,
    ) -> None:
        super().__init__(message)
        self.kept_seq = kept_seq
        self.kept_point = kept_point
        self.missing = missing
        self.cause = cause


class StoreUnavailable(StoreError):
    """The store URL names a backend whose driver is not installed or cannot connect."""

    code = "store-unavailable"


class ConfigError(ContinuityError):
    """A configuration value is missing or malformed."""

    code = "config-error"


class InvalidInput(ContinuityError):
    """A value given by the caller cannot be stored (wrong type, out of range)."""

    code = "invalid-input"


class CommandNotStarted(InvalidInput):
    """``continuity run`` could not start its command (not found, not executable)."""

    code = "command-not-started"


class JournalMissing(CorruptRecord):
    """A session the store knows (registry entry, recovery points) has lost its journal.

    Reads report it as damage and recovery falls back on the newest valid
    recovery point and the emergency backup; writes to that session are
    refused until ``continuity verify --repair`` rebuilds the journal.
    """

    code = "journal-missing"


class StoreNotFound(ContinuityError):
    """A command that only reads was pointed at a store that does not exist yet.

    Reading never creates a store; only commands that write (``start``...) do.
    """

    code = "no-store"


class ChartUnavailable(ContinuityError):
    """A chart format needs an optional dependency that is not installed."""

    code = "chart-unavailable"


class KeyUnavailable(ContinuityError):
    """The store is encrypted and the key its records need is not configured.

    Raised instead of ever returning an empty history or plaintext: point
    ``CONTINUITY_KEY_FILE`` (or ``CONTINUITY_KEY``) at the key the store was
    encrypted with.
    """

    code = "key-unavailable"


class WrongKey(ContinuityError):
    """A configured key has the id the store names but is not the key the store was sealed with."""

    code = "wrong-key"


class KeyFileError(ContinuityError):
    """The key file is unreadable, malformed, or readable by other users."""

    code = "key-file"
