"""The PostgreSQL store's search index: a ``tsvector`` column with a GIN index, in its database.

It implements :class:`agent_continuity.search.index.SearchIndex` over two
tables of the store's schema (:mod:`.schema`, version 3): ``search_events``
(one row per indexed event: session, sequence number, kind, user, its text
and the text's ``tsvector``) and ``search_marks`` (how far each session is
indexed). A session's rows and its mark are written in one transaction, under
a lock on the mark's row, so two processes catching up the same session never
index an event twice, and every client of the database shares one index.

Words. PostgreSQL's parser reads ``https://api.example.com/pricing`` or
``src/app/main.py`` as one token, which a search for ``pricing`` or ``main``
would never find; SQLite's FTS5 index splits them into words. So the text is
indexed with every character that is not a letter or a digit replaced by a
space (:func:`spaced`: same length, same words), stemmed as English with no
stop words (the ``continuity_search`` configuration), and a query's words are
spaced the same way. Snippets are ``ts_headline`` over the spaced text, put
back onto the event's own text character for character (:func:`_restore`).

Ranking is ``ts_rank_cd``, over the newest :data:`~agent_continuity.search.index.RANK_WINDOW`
matches of a query, as on SQLite: ranking every event holding a common word
would take seconds at a million events.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from agent_continuity.search.index import RANK_WINDOW, IndexedEvent, Mark, SearchHit

from .schema import SEARCH_CONFIG

if TYPE_CHECKING:
    import psycopg

    from .store import PostgresStore

_NOT_A_WORD = re.compile(r"[\W_]", re.UNICODE)
# ts_headline's marks: never in a spaced text, which holds only letters, digits and spaces.
_START, _STOP = "[", "]"
_HEADLINE = f"StartSel={_START}, StopSel={_STOP}, MaxWords=24, MinWords=12, ShortWord=0"
_ELLIPSIS = "…"


def clean(text: str) -> str:
    """``text`` as PostgreSQL can hold it: no NUL, no lone surrogate (each becomes one char)."""
    text = text.replace("\x00", " ")
    return text.encode("utf-8", "replace").decode("utf-8") if not text.isascii() else text


def spaced(text: str) -> str:
    """``text`` with every character that is not a letter or a digit made a space (same length)."""
    return _NOT_A_WORD.sub(" ", text)


def _restore(headline: str, plain: str, body: str) -> str:
    """The snippet ``headline`` (marked on ``plain``, the spaced ``body``) on ``body`` itself."""
    unmarked = headline.replace(_START, "").replace(_STOP, "")
    at = plain.find(unmarked)
    if at < 0:
        return headline.strip()
    out: list[str] = [_ELLIPSIS] if plain[:at].strip() else []
    i = at
    for char in headline:
        if char in (_START, _STOP):
            out.append(char)
        else:
            out.append(body[i])
            i += 1
    if plain[i:].strip():
        out.append(_ELLIPSIS)
    return "".join(out).strip()


class PostgresSearchIndex:
    """A :class:`~agent_continuity.search.index.SearchIndex` in the store's own database.

    Args:
        store: The (plaintext) PostgreSQL store; the index uses its connections.
    """

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        # The server's transaction snapshot when a comparison last found nothing moved.
        self._still: str | None = None

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        """The store's connection for one call, driver errors in the package's terms."""
        store = self.store
        with store._scope:
            try:
                yield store._connection().raw
            except store.driver_errors as exc:
                raise store._translate(exc) from exc

    def marks(self) -> dict[str, Mark]:
        """Every indexed session's mark (one query: every client's catch-ups are seen)."""
        with self._conn() as conn:
            rows = conn.execute("SELECT session_id, seq, head, user_id FROM search_marks")
            return {str(sid): Mark(int(seq), int(head), str(user)) for sid, seq, head, user in rows}

    def moved(self) -> tuple[list[tuple[str, int | None]], dict[str, Mark], list[str]]:
        """What the catalog must catch up: the sessions whose journal moved, their marks,
        and the sessions whose journal is gone.

        The journals' heads are compared with the marks by the server, so only
        the sessions that moved cross the wire. Even so that is one probe of
        every journal; it is skipped while the server's transaction snapshot
        (``pg_current_snapshot()``: the next transaction id and those in
        progress) is what it was when a comparison last found nothing moved,
        since then no transaction has written anything, on any database of
        the server (as SQLite's ``data_version`` tells the SQLite store).
        """
        with self._conn() as conn:
            (snapshot,) = conn.execute("SELECT pg_current_snapshot()::text").fetchall()
            now = str(snapshot[0])
            if now == self._still:
                return [], {}, []
            rows = conn.execute(
                "WITH heads AS (SELECT j.session_id, coalesce("
                "(SELECT max(e.seq) FROM events AS e WHERE e.journal = j.id), 0) AS head"
                " FROM journals AS j)"
                " SELECT coalesce(h.session_id, m.session_id), h.head, m.seq, m.head, m.user_id"
                " FROM heads AS h FULL JOIN search_marks AS m ON m.session_id = h.session_id"
                " WHERE h.session_id IS NULL OR m.session_id IS NULL OR m.head <> h.head"
            ).fetchall()
        todo: list[tuple[str, int | None]] = []
        marks: dict[str, Mark] = {}
        gone: list[str] = []
        for sid, head, seq, mark_head, user in rows:
            if head is None:
                gone.append(str(sid))
                continue
            todo.append((str(sid), int(head)))
            if seq is not None:
                marks[str(sid)] = Mark(int(seq), int(mark_head), str(user))
        # Catching up writes (a new snapshot): the next query compares once more.
        self._still = None if rows else now
        return todo, marks, gone

    def add(
        self,
        session_id: str,
        events: Sequence[IndexedEvent],
        mark: Mark,
        *,
        restart: bool = False,
    ) -> None:
        """See :meth:`SearchIndex.add`: the rows and the mark in one transaction."""
        texts = [clean(e.text) for e in events]
        with self._conn() as conn, conn.transaction():
            if restart:
                conn.execute("DELETE FROM search_events WHERE session_id = %s", (session_id,))
                conn.execute("DELETE FROM search_marks WHERE session_id = %s", (session_id,))
            conn.execute(
                "INSERT INTO search_marks (session_id, seq, head, user_id) VALUES (%s, 0, 0, %s)"
                " ON CONFLICT (session_id) DO NOTHING",
                (session_id, mark.user),
            )
            # Held until commit: another process catching up this session waits, then
            # sees this one's mark and skips what it indexed.
            row = conn.execute(
                "SELECT seq FROM search_marks WHERE session_id = %s FOR UPDATE", (session_id,)
            ).fetchone()
            done = int(row[0]) if row else 0
            fresh = [(e, t) for e, t in zip(events, texts, strict=True) if e.seq > done]
            if fresh:
                conn.execute(
                    "INSERT INTO search_events (session_id, seq, kind, user_id, body, words)"
                    f" SELECT %s, s, k, %s, b, to_tsvector('{SEARCH_CONFIG}', w)"
                    " FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[])"
                    " AS u(s, k, b, w)",
                    (
                        session_id,
                        mark.user,
                        [e.seq for e, _ in fresh],
                        [e.kind for e, _ in fresh],
                        [t for _, t in fresh],
                        [spaced(t) for _, t in fresh],
                    ),
                )
            conn.execute(
                "UPDATE search_marks SET seq = %s, head = %s, user_id = %s WHERE session_id = %s",
                (max(done, mark.seq), mark.head, mark.user, session_id),
            )

    def forget(self, session_ids: Sequence[str]) -> None:
        """See :meth:`SearchIndex.forget`."""
        ids = list(session_ids)
        with self._conn() as conn, conn.transaction():
            conn.execute("DELETE FROM search_events WHERE session_id = ANY(%s)", (ids,))
            conn.execute("DELETE FROM search_marks WHERE session_id = ANY(%s)", (ids,))

    def query(self, words: Sequence[str], user: str | None, limit: int) -> list[SearchHit]:
        """See :meth:`SearchIndex.query`."""
        terms = [t for t in (spaced(w).strip() for w in words) if t]
        if not terms:
            return []
        hits = self._match(terms, " && ", user, limit)
        if not hits and len(terms) > 1:
            hits = self._match(terms, " || ", user, limit)
        return hits

    def _match(self, terms: list[str], join: str, user: str | None, limit: int) -> list[SearchHit]:
        # One word of a query is a phrase when spacing split it ("foo_bar": foo, then bar).
        tsquery = "(" + join.join([f"phraseto_tsquery('{SEARCH_CONFIG}', %s)"] * len(terms)) + ")"
        owner = " AND e.user_id = %s" if user is not None else ""
        params: list[object] = [*terms, *terms]
        if user is not None:
            params.append(user)
        params += [RANK_WINDOW, limit]
        with self._conn() as conn:
            # The newest RANK_WINDOW matches are ranked (see the module docstring). The
            # query's words are in the statement, never a prepared plan's parameters: the
            # planner must see them to choose between the GIN index (a rare word) and
            # the newest rows first (a word in half the events).
            rows = conn.execute(
                f"SELECT n.session_id, n.seq, n.kind, n.body, ts_rank_cd(n.words, {tsquery})"
                " AS rank FROM (SELECT e.id, e.session_id, e.seq, e.kind, e.body, e.words"
                f" FROM search_events AS e WHERE e.words @@ {tsquery}{owner}"
                " ORDER BY e.id DESC LIMIT %s) AS n ORDER BY rank DESC, n.id DESC LIMIT %s",
                params,
                prepare=False,
            ).fetchall()
            if not rows:
                return []
            # Snippets only for the results: ts_headline parses each text again.
            plains = [spaced(str(row[3])) for row in rows]
            headlines = conn.execute(
                f"SELECT ts_headline('{SEARCH_CONFIG}', u.t, {tsquery}, %s)"
                " FROM unnest(%s::text[]) WITH ORDINALITY AS u(t, n) ORDER BY u.n",
                [*terms, _HEADLINE, plains],
            ).fetchall()
        return [
            SearchHit(
                str(sid),
                int(seq),
                str(kind),
                _restore(str(headline), plain, str(body)),
                round(float(rank), 6),
            )
            for (sid, seq, kind, body, rank), plain, (headline,) in zip(
                rows, plains, headlines, strict=True
            )
        ]

    def clear(self) -> None:
        """See :meth:`SearchIndex.clear`."""
        with self._conn() as conn, conn.transaction():
            conn.execute("TRUNCATE search_events, search_marks")

    def is_empty(self) -> bool:
        """Whether nothing is indexed (an encrypted store's must be: see the catalog)."""
        with self._conn() as conn:
            return conn.execute("SELECT 1 FROM search_marks LIMIT 1").fetchone() is None

    def close(self) -> None:
        """Nothing to release: the connections are the store's."""
