"""The search index contract, and its SQLite FTS5 implementation.

An index holds, for each session, the searchable text of its events and a
**mark**: the journal sequence number it has indexed up to, the store's
high-water mark of that journal when it did (:mod:`.heads`), and the user the
session belongs to. Catching up compares marks with the store's heads and
reads only the journals that moved, after the mark's sequence number.

A PostgreSQL store implements the same contract over a ``tsvector`` column
with a GIN index (``to_tsvector('english', body)``, ranked by ``ts_rank_cd``,
snippets by ``ts_headline``); it can live in the store's own database, where
:meth:`SearchIndex.add` runs in one transaction with its mark.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

#: Bumped when the index's schema or tokenizer changes: an older index is rebuilt.
INDEX_VERSION = "2"
_WORD = re.compile(r"\w+", re.UNICODE)
#: A query matching more events than this ranks the newest this many of them.
RANK_WINDOW = 1000


@dataclass(frozen=True, slots=True)
class Mark:
    """How far one session is indexed.

    Attributes:
        seq: The last journal sequence number indexed.
        head: The store's high-water mark of the journal when it was (see :mod:`.heads`).
        user: The user the session belongs to.
    """

    seq: int
    head: int
    user: str


@dataclass(frozen=True, slots=True)
class IndexedEvent:
    """One event's searchable text."""

    seq: int
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result.

    Attributes:
        session_id: The session the event is in.
        seq: The event's journal sequence number.
        kind: ``message``, ``decision``, ``task``, ``note``, ``tool-call``...
        snippet: The matching text around the query's words, which are in ``[...]``.
        score: Relevance, higher is better (BM25 on SQLite).
    """

    session_id: str
    seq: int
    kind: str
    snippet: str
    score: float

    def to_wire(self) -> dict[str, Any]:
        """The JSON form (``search --json``'s items)."""
        return {
            "sessionId": self.session_id,
            "seq": self.seq,
            "kind": self.kind,
            "snippet": self.snippet,
            "score": self.score,
        }


class SearchIndex(Protocol):
    """What the catalog needs of an index; each method is atomic."""

    def marks(self) -> dict[str, Mark]:
        """Every indexed session's mark."""
        ...

    def add(
        self,
        session_id: str,
        events: Sequence[IndexedEvent],
        mark: Mark,
        *,
        restart: bool = False,
    ) -> None:
        """Index events of a session after its mark, and move the mark, as one transaction.

        Events at or below the session's current mark are skipped, so two
        processes catching up the same session never index an event twice.
        ``restart`` first forgets everything indexed of the session (its
        journal was rewritten by a repair).
        """
        ...

    def forget(self, session_ids: Sequence[str]) -> None:
        """Drop sessions whose journal is gone."""
        ...

    def query(self, words: Sequence[str], user: str | None, limit: int) -> list[SearchHit]:
        """The best ``limit`` events holding every word (or, failing that, any), best first."""
        ...

    def clear(self) -> None:
        """Forget everything (a rebuild follows)."""
        ...

    def close(self) -> None:
        """Release the index."""
        ...


def _owner(user: str) -> str:
    """The token naming a user in the index (any user name becomes one plain word)."""
    return "u" + hashlib.sha256(user.encode("utf-8")).hexdigest()[:24]


def _score(rank: float) -> float:
    """BM25 as a score where higher is better (SQLite's is negative, lower better)."""
    return round(-float(rank), 6)


def query_words(text: str) -> list[str]:
    """The words of a query, as the index matches them (punctuation is not syntax)."""
    return [w.lower() for w in _WORD.findall(text)]


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS marks (session_id TEXT PRIMARY KEY, seq INTEGER NOT NULL,"
    " head INTEGER NOT NULL, user TEXT NOT NULL)",
    # owner: one token naming the user (see _owner), so that one user's events
    # are found through the index rather than by reading every match.
    "CREATE VIRTUAL TABLE IF NOT EXISTS docs USING fts5(body, owner, session_id UNINDEXED,"
    " seq UNINDEXED, kind UNINDEXED, tokenize = 'porter unicode61')",
)


class SqliteSearchIndex:
    """A :class:`SearchIndex` in an SQLite file with FTS5 (or in memory, for ``memory:``).

    Args:
        path: The index file, or ``":memory:"``.

    Raises:
        sqlite3.DatabaseError: If the file is not a readable index (the catalog
            then deletes and rebuilds it: it is derived).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Private like the store it indexes: it holds the same words.
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        self._marks: dict[str, Mark] | None = None
        self._conn = sqlite3.connect(
            self.path, timeout=30, isolation_level=None, check_same_thread=False
        )
        try:
            self._conn.execute("PRAGMA journal_mode = WAL")
            # Derived data: losing the last catch-up to a power cut costs a re-read, no more.
            self._conn.execute("PRAGMA synchronous = NORMAL")
            # An in-memory index (an encrypted store's) must not spill its words to temp files.
            self._conn.execute("PRAGMA temp_store = MEMORY")
            version = self._version()
            if version != INDEX_VERSION:
                if version is not None:
                    self._drop()
                with self._transaction() as conn:
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    conn.execute(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES ('version', ?)",
                        (INDEX_VERSION,),
                    )
        except BaseException:
            self._conn.close()
            raise

    def _version(self) -> str | None:
        try:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        except sqlite3.OperationalError:
            return None  # a new file: no meta table yet
        return str(row[0]) if row else None

    def _drop(self) -> None:
        with self._transaction() as conn:
            for table in ("docs", "marks", "meta"):
                conn.execute(f"DROP TABLE IF EXISTS {table}")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def marks(self) -> dict[str, Mark]:
        """Every indexed session's mark.

        Read from the file once, then kept up to date by this handle's own
        writes. Another process's newer marks are not seen: that costs at most
        a journal read that indexes nothing (:meth:`add` skips what is indexed).
        """
        if self._marks is None:
            rows = self._conn.execute("SELECT session_id, seq, head, user FROM marks")
            self._marks = {sid: Mark(seq, head, user) for sid, seq, head, user in rows}
        return dict(self._marks)

    def add(
        self,
        session_id: str,
        events: Sequence[IndexedEvent],
        mark: Mark,
        *,
        restart: bool = False,
    ) -> None:
        """See :meth:`SearchIndex.add`."""
        with self._transaction() as conn:
            if restart:
                conn.execute("DELETE FROM docs WHERE session_id = ?", (session_id,))
                conn.execute("DELETE FROM marks WHERE session_id = ?", (session_id,))
            row = conn.execute(
                "SELECT seq FROM marks WHERE session_id = ?", (session_id,)
            ).fetchone()
            done = int(row[0]) if row else 0
            conn.executemany(
                "INSERT INTO docs (body, owner, session_id, seq, kind) VALUES (?, ?, ?, ?, ?)",
                [
                    (e.text, _owner(mark.user), session_id, e.seq, e.kind)
                    for e in events
                    if e.seq > done
                ],
            )
            conn.execute(
                "INSERT OR REPLACE INTO marks (session_id, seq, head, user) VALUES (?, ?, ?, ?)",
                (session_id, max(done, mark.seq), mark.head, mark.user),
            )
        if self._marks is not None:
            self._marks[session_id] = Mark(max(done, mark.seq), mark.head, mark.user)

    def forget(self, session_ids: Sequence[str]) -> None:
        """See :meth:`SearchIndex.forget`."""
        with self._transaction() as conn:
            for sid in session_ids:
                conn.execute("DELETE FROM docs WHERE session_id = ?", (sid,))
                conn.execute("DELETE FROM marks WHERE session_id = ?", (sid,))
        for sid in session_ids:
            if self._marks is not None:
                self._marks.pop(sid, None)

    def query(self, words: Sequence[str], user: str | None, limit: int) -> list[SearchHit]:
        """See :meth:`SearchIndex.query`."""
        if not words:
            return []
        quoted = [f'"{w}"' for w in words]
        hits = self._match(" AND ".join(quoted), user, limit)
        if not hits and len(words) > 1:
            hits = self._match(" OR ".join(quoted), user, limit)
        return hits

    def _match(self, words: str, user: str | None, limit: int) -> list[SearchHit]:
        match = f"body : ({words})"
        if user is not None:
            match += f' AND owner : "{_owner(user)}"'
        # Scoring costs a little per match, and a word in half a million events
        # would take seconds: only the newest RANK_WINDOW matches are ranked
        # (rowids grow as events are indexed, and FTS5 seeks on them).
        floor = self._conn.execute(
            "SELECT rowid FROM docs WHERE docs MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?",
            (match, RANK_WINDOW - 1),
        ).fetchone()
        sql = "SELECT rowid, bm25(docs, 1.0, 0.0) FROM docs WHERE docs MATCH ?"
        params: list[object] = [match]
        if floor is not None:
            sql += " AND rowid >= ?"
            params.append(int(floor[0]))
        best = heapq.nsmallest(limit, self._conn.execute(sql, params), key=lambda r: r[1])
        hits = []
        for rowid, rank in best:
            # Snippets only for the results: each reads and tokenizes its event's text.
            row = self._conn.execute(
                "SELECT session_id, seq, kind, snippet(docs, 0, '[', ']', '…', 16)"
                " FROM docs WHERE docs MATCH ? AND rowid = ?",
                (match, rowid),
            ).fetchone()
            if row is not None:
                sid, seq, kind, snippet = row
                hits.append(SearchHit(str(sid), int(seq), str(kind), str(snippet), _score(rank)))
        return hits

    def clear(self) -> None:
        """See :meth:`SearchIndex.clear`."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM docs")
            conn.execute("DELETE FROM marks")
        self._marks = {}

    def close(self) -> None:
        """Close the connection. Safe to call twice."""
        self._conn.close()
