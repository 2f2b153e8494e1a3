"""Scenario 9: the ``postgresql://`` store on a throwaway server of its own.

Durable append against one raw commit on the same server, per-turn cost over
the turns of scenario 1 (and LangGraph's ``PostgresSaver`` beside it, when
installed), and the bytes the store's tables hold against the raw transcript.
The server is started like the tests' (``agent_continuity.testing.postgres``),
with ``fsync`` on, and stopped by its pid at the end.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from contenders import EchoGraph
from report import Row, duration, median, percentile, size
from workload import Sizes, conversation, transcript_bytes

from agent_continuity import SessionManager

TABLES = (
    "sessions",
    "journals",
    "events",
    "leases",
    "points",
    "file_states",
    "snapshots",
    "emergency",
    "recovery_log",
    "quarantine",
    "continuity_schema",
)


def _judge(sizes: Sizes, ok: bool) -> bool | None:
    return ok if sizes.thresholds else None


def _relations_bytes(url: str, tables: list[str], *, compact: bool = False) -> int:
    """What the tables take on the server: heap, indexes, TOAST, free-space maps.

    With ``compact``, after ``VACUUM FULL``: the live rows only, without the space
    deleted and updated rows leave until (auto)vacuum makes it reusable.
    """
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        if compact:
            conn.execute("VACUUM FULL")
        conn.execute("CHECKPOINT")
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname = ANY(%s)",
            (tables,),
        ).fetchone()
        return int(row[0]) if row else 0


def _raw_commit(url: str, lines: list[bytes]) -> tuple[Any, Any]:
    """One autocommit INSERT of a journal line into a table like ours: the server's floor."""
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    conn.execute(
        "CREATE TABLE raw_events (journal BIGINT NOT NULL, seq BIGINT NOT NULL,"
        " line BYTEA NOT NULL, PRIMARY KEY (journal, seq))"
    )
    counter = iter(range(1, 10**9))

    def once() -> None:
        seq = next(counter)
        conn.execute(
            "INSERT INTO raw_events (journal, seq, line) VALUES (1, %s, %s)",
            (seq, lines[seq % len(lines)]),
        )

    return once, conn.close


class _LangGraphPostgres(EchoGraph):
    """LangGraph ``StateGraph(MessagesState)`` checkpointed by ``PostgresSaver``."""

    name = "LangGraph PostgresSaver"

    def __init__(self, url: str) -> None:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row

        graph = self._echo_graph()
        self.conn = psycopg.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row)
        saver = PostgresSaver(self.conn)  # type: ignore[arg-type]
        saver.setup()
        self.app = graph.compile(checkpointer=saver)

    def close(self) -> None:
        self.conn.close()


def postgres_rows(sizes: Sizes, workdir: Path) -> tuple[list[Row], list[str]]:
    """Scenario 9 on a server of its own."""
    from agent_continuity.testing.postgres import PostgresServer

    server = PostgresServer(durable=True)
    try:
        return _measure(server, sizes, workdir)
    finally:
        server.stop()


def _measure(server: Any, sizes: Sizes, workdir: Path) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    texts = [text for pair in conversation(200, seed=3) for text in pair]

    # -- durable append against one raw commit, interleaved
    url = server.new_database(empty=True)
    raw_once, raw_close = _raw_commit(url, [t.encode() + b"\n" for t in texts])
    mgr = SessionManager(
        store=url, project_dir=_folder(workdir / "postgres-append"), user_id="bench", observer=False
    )
    session = mgr.start(type="benchmark", auto_save=False)
    counter = iter(range(10**9))

    def add() -> None:
        session.add_message("user", texts[next(counter) % len(texts)])

    calls = [("raw", raw_once), ("ours", add)]
    samples: dict[str, list[float]] = {"raw": [], "ours": []}
    for _ in range(3):
        for _label, call in calls:
            call()
    for number in range(sizes.append_events):
        for label, call in calls[number % 2 :] + calls[: number % 2]:
            started = time.perf_counter()
            call()
            samples[label].append(time.perf_counter() - started)
    session.end()
    mgr.close()
    raw_close()
    floor, ours = median(samples["raw"]), median(samples["ours"])
    rows.append(
        Row(
            9,
            "one autocommit INSERT of a journal line, synchronous_commit=on (the server's floor)",
            "raw psycopg INSERT",
            f"median {duration(floor)}, p99 {duration(percentile(samples['raw'], 0.99))}",
        )
    )
    rows.append(
        Row(
            9,
            "durable append (add_message, sync)",
            "agent-continuity postgresql",
            f"median {duration(ours)} (x{ours / floor:.2f} floor), "
            f"p99 {duration(percentile(samples['ours'], 0.99))}",
            "median ≤ 1.5x floor",
            _judge(sizes, ours <= 1.5 * floor),
        )
    )

    # -- per-turn cost over the turns of scenario 1, and the bytes it leaves
    pairs = list(conversation(sizes.turns))
    url = server.new_database(empty=True)
    mgr = SessionManager(
        store=url, project_dir=_folder(workdir / "postgres-turns"), user_id="bench", observer=False
    )
    session = mgr.start(type="benchmark", auto_save=False)
    contenders: list[tuple[str, Any]] = []

    def ours_turn(user: str, assistant: str) -> None:
        session.add_message("user", user)
        session.add_message("assistant", assistant)
        session.checkpoint(trigger="auto")

    contenders.append(("agent-continuity postgresql", ours_turn))
    notes_missing = []
    langgraph_url = server.new_database(empty=True)
    langgraph: _LangGraphPostgres | None = None
    try:
        langgraph = _LangGraphPostgres(langgraph_url)
        contenders.append((langgraph.name, langgraph.turn))
    except ImportError as exc:
        notes_missing.append(
            f"LangGraph PostgresSaver not run ({exc.name} is not installed: "
            "pip install langgraph langgraph-checkpoint-postgres)."
        )
    times: dict[str, list[float]] = {name: [] for name, _ in contenders}
    # One system after the other, not interleaved: on one server, LangGraph's growing
    # writes (megabytes a turn by the end) would land in the next system's commits.
    for name, turn in contenders:
        _settle(url)
        for user, assistant in pairs:
            started = time.perf_counter()
            turn(user, assistant)
            times[name].append(time.perf_counter() - started)
    session.end()
    mgr.close()
    if langgraph is not None:
        langgraph.close()
    w = sizes.window
    label = f"median per turn, turns 1-{w} → {sizes.turns - w + 1}-{sizes.turns}"
    for name, spent in times.items():
        early, late = median(spent[:w]), median(spent[-w:])
        ratio = late / early
        ours_row = name.startswith("agent-continuity")
        rows.append(
            Row(
                9,
                label,
                name,
                f"{duration(early)} → {duration(late)} (x{ratio:.2f})",
                "flat: ratio ≤ 1.2" if ours_row else "",
                _judge(sizes, ratio <= 1.2) if ours_row else None,
            )
        )
    raw = transcript_bytes(pairs)
    stored = _relations_bytes(url, list(TABLES))
    rows.append(Row(9, "raw JSON-lines transcript", "(reference)", size(raw)))
    live = _relations_bytes(url, list(TABLES), compact=True)
    result = (
        f"{size(stored)} (x{stored / raw:.2f} raw; "
        f"{size(live)}, x{live / raw:.2f}, after VACUUM FULL)"
    )
    if langgraph is not None:
        theirs = _relations_bytes(
            langgraph_url,
            ["checkpoints", "checkpoint_blobs", "checkpoint_writes", "checkpoint_migrations"],
        )
        result += f"; LangGraph PostgresSaver {size(theirs)} (÷ this = {theirs / stored:,.0f})"
    rows.append(
        Row(
            9,
            "bytes in the server's tables after the turns (heap, indexes, TOAST, free-space maps)",
            "agent-continuity postgresql",
            result,
            "reference: a table's fixed pages weigh on a small store",
        )
    )
    notes = [
        "Scenario 9: a throwaway PostgreSQL 15 server (initdb, fsync on, synchronous_commit "
        "on, loopback TCP), started and stopped by the benchmark. Floor: an autocommit "
        "`INSERT` of the same journal line into a table shaped like our events table, over "
        f"one psycopg connection; {sizes.append_events:,} samples each, interleaved with "
        '`add_message` on an open session (`durability="sync"`). Turns: the conversation of '
        "scenario 1, two `add_message` calls and an automatic point per turn (as scenario "
        "1's `agent-continuity` rows), then LangGraph's one-node graph with `PostgresSaver` "
        "over the same turns in a database of its own (one system after the other, a "
        "`CHECKPOINT` between them: on one server, LangGraph's growing writes would land in "
        "our commits). Bytes: `pg_total_relation_size` of every table of the "
        "store after a `CHECKPOINT`, as left, then after `VACUUM FULL` (the space of pruned "
        "points and rewritten registry rows is reusable only once vacuumed).",
        *notes_missing,
    ]
    return rows, notes


def _settle(url: str) -> None:
    """Write out what earlier work left in the server's buffers and the kernel's cache."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    os.sync()


def _folder(path: Path) -> Path:
    path.mkdir(parents=True)
    return path
