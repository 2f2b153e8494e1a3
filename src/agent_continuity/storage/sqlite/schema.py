"""The SQLite store's schema, its migrations, and the making of a new database file.

The statements every SQL dialect shares are in :mod:`..sql.statements`.

Schema (version 4; ``PRAGMA user_version`` holds the version, ``MIGRATIONS[v]``
upgrades a database from version ``v`` to ``v + 1``; a new file runs them all)::

    sessions(id PK, day, number, doc)          registry entries; UNIQUE(day, number)
    journals(id PK, session_id UNIQUE)         each journal's small key, so events need no text
    events(journal, seq, line)                 journals; PK(journal, seq), WITHOUT ROWID
    leases(session_id PK, token, doc)          fencing token, and the lease as a document
    points(id PK, session_id, seq, created, trigger, body)    id begins with the session's part
    file_states(session_id, hash, body)        file-state chunks of points' code contexts,
                                               by SHA-256 (see file_states); PK(session_id, hash)
    snapshots(session_id PK, doc)              latest context snapshot
    emergency(session_id PK, doc)              emergency backups
    recovery_log(id PK, doc)
    quarantine(id PK, source, key, found, reason, data)   damaged rows moved by repair
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path

from agent_continuity.errors import StoreError

from ..atomic import FILE_MODE, ensure_folder, make_private
from .flusher import fsync_path

MIGRATIONS: list[tuple[str, ...]] = [
    (
        "CREATE TABLE sessions (id TEXT PRIMARY KEY, day TEXT NOT NULL, number INTEGER NOT NULL,"
        " doc BLOB NOT NULL, UNIQUE (day, number))",
        # Most events are a few hundred bytes, where a clustered key is the
        # cheapest layout for both the append and the in-order read.
        "CREATE TABLE events (session_id TEXT NOT NULL, seq INTEGER NOT NULL, line BLOB NOT NULL,"
        " PRIMARY KEY (session_id, seq)) WITHOUT ROWID",
        "CREATE TABLE leases (session_id TEXT PRIMARY KEY, token INTEGER NOT NULL,"
        " doc BLOB NOT NULL)",
        "CREATE TABLE points (id TEXT PRIMARY KEY, session_id TEXT NOT NULL, seq INTEGER NOT NULL,"
        " created TEXT NOT NULL, trigger TEXT NOT NULL, body BLOB NOT NULL)",
        "CREATE INDEX points_by_session ON points (session_id)",
        "CREATE TABLE snapshots (session_id TEXT PRIMARY KEY, doc BLOB NOT NULL)",
        "CREATE TABLE emergency (session_id TEXT PRIMARY KEY, doc BLOB NOT NULL)",
        "CREATE TABLE recovery_log (id INTEGER PRIMARY KEY, doc BLOB NOT NULL)",
        "CREATE TABLE quarantine (id INTEGER PRIMARY KEY, source TEXT NOT NULL, key TEXT NOT NULL,"
        " found TEXT NOT NULL, reason TEXT NOT NULL, data BLOB)",
    ),
    (
        # Version 2: every event row repeated its session's 22-byte text id in its
        # key; a small integer instead takes the file from x1.53 to under x1.5 of
        # the transcript. The keys are handed out in id order, oldest first.
        "CREATE TABLE journals (id INTEGER PRIMARY KEY, session_id TEXT NOT NULL UNIQUE)",
        "INSERT INTO journals (session_id) SELECT DISTINCT session_id FROM events ORDER BY 1",
        "CREATE TABLE events_v2 (journal INTEGER NOT NULL REFERENCES journals (id),"
        " seq INTEGER NOT NULL, line BLOB NOT NULL, PRIMARY KEY (journal, seq)) WITHOUT ROWID",
        "INSERT INTO events_v2 (journal, seq, line) SELECT journals.id, events.seq, events.line"
        " FROM events JOIN journals USING (session_id) ORDER BY 1, 2",
        "DROP TABLE events",
        "ALTER TABLE events_v2 RENAME TO events",
    ),
    (
        # Version 3: a session's points are listed by the range of their ids, which
        # all begin with the session's part; the index by session cost a page and
        # a write on every save and prune.
        "DROP INDEX points_by_session",
    ),
    (
        # Version 4: a large code context is stored once per session in chunks by
        # hash, which points refer to, instead of a full copy in every point.
        "CREATE TABLE file_states (session_id TEXT NOT NULL, hash TEXT NOT NULL,"
        " body BLOB NOT NULL, PRIMARY KEY (session_id, hash)) WITHOUT ROWID",
    ),
]


def create_database(path: Path) -> None:
    """Create the database whole under a temporary name, then link it in place.

    A store file therefore never exists half-made, so an empty one can
    only be a damaged one, and two processes creating it at once both end
    up with the same complete file.
    """
    folder = path.parent
    ensure_folder(folder)  # the folders it makes are private (0700)
    tmp = folder / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.new"
    try:
        # Made 0600 before SQLite opens it (an empty file is a new database):
        # SQLite gives its -wal, -shm and -journal files the database's mode,
        # so they are private too, whatever the umask.
        os.close(os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE))
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            migrate(conn, tmp)
        finally:
            conn.close()  # checkpoints the WAL into the file
        fsync_path(tmp)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first; its file is as good as ours
        except OSError:
            # No hard links here (some network or FAT file systems).
            if not path.exists():
                os.replace(tmp, path)
        fsync_path(folder, directory=True)
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{tmp}{suffix}").unlink(missing_ok=True)


def make_database_private(path: Path) -> None:
    """Narrow a database made before stores were private by default to 0600.

    The database first: SQLite gives the -wal, -shm and -journal files it
    creates the database's mode; those already there are narrowed as well.
    """
    for suffix in ("", "-wal", "-shm", "-journal"):
        make_private(Path(f"{path}{suffix}"), FILE_MODE)


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the database of ``conn`` to the current schema version, in one transaction."""
    target = len(MIGRATIONS)
    if conn.execute("PRAGMA user_version").fetchone()[0] == target:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > target:
            raise StoreError(
                f"{path} has schema version {version}, newer than this agent-continuity "
                f"understands ({target}); upgrade agent-continuity"
            )
        for step in MIGRATIONS[version:]:
            for statement in step:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {target}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
