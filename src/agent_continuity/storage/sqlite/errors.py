"""SQLite's failures in the package's terms: each error says what happened and what to do."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent_continuity.errors import ContinuityError, CorruptRecord, StoreError

# What to do about each SQLite result code that is not damage.
_ADVICE = (
    (
        {sqlite3.SQLITE_FULL},
        "no space left for {where} ({exc}); nothing was written. "
        "Free disk space and run the command again",
    ),
    (
        {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED},
        "{where} stayed locked by another process for {timeout:g} s ({exc}); "
        "run the command again, or stop the process holding it",
    ),
    (
        {sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_CANTOPEN},
        "cannot write {where} ({exc}); check that the file and its folder exist and are "
        "writable by this user, or choose another --store",
    ),
    ({sqlite3.SQLITE_IOERR}, "I/O error on {where} ({exc}); check the disk, then run again"),
)


def translate(exc: sqlite3.Error, path: Path, busy_timeout: float) -> ContinuityError:
    """The package's error for a driver error on the store ``path``: what happened, what to do."""
    where = str(path)
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary result code
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return CorruptRecord(
            f"{where} is damaged ({exc}); restore the file from a backup, or salvage what "
            f"is readable with `sqlite3 {where} .recover`",
            where,
        )
    advice = next((a for codes, a in _ADVICE if code in codes), "SQLite failed on {where} ({exc})")
    return StoreError(advice.format(where=where, exc=exc, timeout=busy_timeout))
