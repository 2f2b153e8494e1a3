"""``SessionManager.search`` over 10,000 sessions and a million events: query times.

Builds (once; cached under ``~/.cache/agent-continuity/bench-search/``) an
SQLite store and a files store holding the same N sessions (default 10,000)
of E events each (default 100: a million in all), a mix of messages (60%),
tool calls (15%), decisions, notes and task updates, their words drawn from a
20,000-word vocabulary with Zipf frequencies (as natural text has), five users.
Then, on each store, it builds the search index (the first query; reported
apart, like the corpus), runs a mix of queries (a very common word, a common
one, rare ones, two and three words, one user's sessions) and prints query
p50 and p95, each query including the catch-up check of every journal's
high-water mark; then appends to one session and times the query that
catches up with it::

    python benchmarks/search.py                              # 10,000 x 100
    python benchmarks/search.py --sessions 50 --events 20    # the smoke test

The SQLite store is built through the store API (batched durability). The
files store's journals are written directly in its own journal format
(``codec.encode_event``, the lines the SQLite store returned), since creating
sessions through the files store API rewrites its registry each time
(quadratic: see benchmarks/analytics.py); the index reads only the journals.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent_continuity import SessionManager
from agent_continuity.model import EventDraft, EventKind, SessionRecord
from agent_continuity.storage import open_store
from agent_continuity.storage.base import LeaseRequest
from agent_continuity.storage.codec import encode_event

#: What one query must take at 10,000 sessions and a million events.
TARGET_MS = 100.0
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "agent-continuity"
CORPUS_VERSION = "1"
VOCABULARY = 20_000
_SYLLABLES = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"] + ["an", "el", "or", "us"]


def vocabulary(rng: random.Random) -> list[str]:
    """Made-up words, most frequent first (distinct, 2 to 4 syllables)."""
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < VOCABULARY:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def drafts(rng: random.Random, words: list[str], count: int, start: datetime) -> list[EventDraft]:
    """``count`` events of a session: prose of Zipf-distributed words."""
    weights = [1 / (rank + 1) ** 1.05 for rank in range(len(words))]
    cumulative: list[float] = []
    total = 0.0
    for w in weights:
        total += w
        cumulative.append(total)
    text = rng.choices(words, cum_weights=cumulative, k=count * 12)
    out: list[EventDraft] = []
    for n in range(count):
        sentence = " ".join(text[n * 12 : n * 12 + rng.randint(6, 12)])
        roll = rng.random()
        at = start + timedelta(seconds=n * 30)
        if roll < 0.6:
            kind, payload = (
                EventKind.MESSAGE,
                {"role": rng.choice(("user", "assistant")), "text": sentence},
            )
        elif roll < 0.75:
            kind, payload = (
                EventKind.TOOL_CALL,
                {"callId": f"c{n}", "name": "shell", "arguments": {"cmd": sentence}},
            )
        elif roll < 0.85:
            kind, payload = EventKind.DECISION, {"text": sentence}
        elif roll < 0.95:
            kind, payload = EventKind.NOTE, {"text": sentence}
        else:
            kind, payload = EventKind.TASK, {"id": f"TASK-{n}", "title": sentence}
        out.append(EventDraft(kind=kind, at=at, payload=payload))
    return out


def build(folder: Path, sessions: int, events: int, seed: int = 11) -> tuple[str, str, list[str]]:
    """The two stores' URLs (built if not cached) and the vocabulary, most frequent first."""
    rng = random.Random(seed)
    words = vocabulary(rng)
    sqlite_url = f"sqlite:///{folder / 's.db'}"
    files_url = f"files:{folder / 'tracking'}"
    done = folder / "built"
    if done.exists():
        return sqlite_url, files_url, words
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    store = open_store(sqlite_url, durability="batched")
    files = open_store(files_url)
    files.close()
    journals = folder / "tracking" / "snapshots" / "conversation-history"
    base = datetime(2026, 9, 1, tzinfo=UTC)
    try:
        for n in range(sessions):
            created = base + timedelta(minutes=13 * n)
            draft = SessionRecord(
                id="SESSION-000101-001",
                created=created,
                last_activity=created,
                user_id=f"user{n % 5}",
                project_dir="/bench",
            )
            lease_request = LeaseRequest("bench@host", None, "host", timedelta(hours=1), created)
            record, lease = store.create_session(draft, lease_request)
            store.append(lease, drafts(rng, words, events - 1, created))
            read = store.read_events(record.id)
            (journals / f"{record.id}.jsonl").write_bytes(
                b"".join(encode_event(e) for e in read.events)
            )
    finally:
        store.close()
    done.write_text(f"{sessions} {events}\n")
    return sqlite_url, files_url, words


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))]


def queries(words: list[str]) -> list[tuple[str, str | None]]:
    """The query mix: (query, user)."""
    mix: list[tuple[str, str | None]] = []
    for rank in (0, 3, 10, 30, 100, 300, 1000, 3000, 10000, 19000):
        mix.append((words[rank], None))
    for a, b in ((5, 50), (20, 400), (200, 2000), (1, 7000)):
        mix.append((f"{words[a]} {words[b]}", None))
    mix.append((f"{words[2]} {words[40]} {words[600]}", None))
    mix.append((words[50], "user3"))
    mix.append((f"{words[8]} {words[80]}", "user1"))
    return mix


def run_store(url: str, folder: Path, words: list[str], rounds: int) -> dict[str, float]:
    """Index build, query p50/p95 and the catch-up query on one store."""
    mgr = SessionManager(store=url, project_dir=folder, user_id="user0", observer=False)
    try:
        started = time.perf_counter()
        mgr.search(words[0], rebuild=not (folder / f"indexed-{url.split(':')[0]}").exists())
        built = time.perf_counter() - started
        (folder / f"indexed-{url.split(':')[0]}").write_text("yes\n")
        times: list[float] = []
        found = 0
        for _ in range(rounds):
            for query, user in queries(words):
                begun = time.perf_counter()
                hits = mgr.search(query, user=user, limit=20).hits
                times.append((time.perf_counter() - begun) * 1000)
                found += len(hits)
        assert found, "no query found anything"
        session = mgr.start(auto_save=False)
        session.add_message("user", f"{words[4]} {words[9000]} one more message")
        begun = time.perf_counter()
        caught = mgr.search(words[9000]).hits
        catch_up = (time.perf_counter() - begun) * 1000
        assert any(h.session_id == session.id for h in caught)
        session.end()
        return {
            "build": built,
            "p50": statistics.median(times),
            "p95": percentile(times, 0.95),
            "max": max(times),
            "count": len(times),
            "catch_up": catch_up,
        }
    finally:
        mgr.close()


def main() -> None:
    """Build (or reuse) the corpus, time the queries, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100, help="events per session")
    parser.add_argument("--rounds", type=int, default=5, help="times the query mix runs")
    parser.add_argument(
        "--tmp",
        default=None,
        help="build in a temporary folder here (deleted after), not the cache",
    )
    args = parser.parse_args()
    if args.tmp:
        folder = Path(tempfile.mkdtemp(prefix="continuity-search-", dir=args.tmp))
    else:
        folder = CACHE / f"bench-search-v{CORPUS_VERSION}-{args.sessions}x{args.events}"
    try:
        started = time.perf_counter()
        sqlite_url, files_url, words = build(folder, args.sessions, args.events)
        corpus = time.perf_counter() - started
        rows = []
        for name, url in (("sqlite", sqlite_url), ("files", files_url)):
            rows.append((name, run_store(url, folder, words, args.rounds)))
    finally:
        if args.tmp:
            shutil.rmtree(folder, ignore_errors=True)
    total = args.sessions * args.events
    print(
        f"continuity search: {args.sessions:,} sessions, {total:,} events "
        f"(target < {TARGET_MS:.0f} ms per query; corpus {corpus:.1f} s, in process)"
    )
    print(
        f"{'store':<7}  {'index build':>11}  {'queries':>7}  {'p50':>8}  {'p95':>8}  "
        f"{'max':>8}  {'catch-up':>8}  {'target':>6}"
    )
    for name, r in rows:
        verdict = ("met" if r["p95"] < TARGET_MS else "MISSED") if total >= 1_000_000 else "-"
        print(
            f"{name:<7}  {r['build']:>10.1f}s  {int(r['count']):>7}  {r['p50']:>6.1f}ms  "
            f"{r['p95']:>6.1f}ms  {r['max']:>6.1f}ms  {r['catch_up']:>6.1f}ms  {verdict:>6}"
        )


if __name__ == "__main__":
    main()
