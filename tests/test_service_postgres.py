"""``continuity serve --store postgresql://... --workers 2``: a team's service, for real.

One server with two uvicorn workers (each its own pool and lease sweeper) on a
database of its own on the test session's PostgreSQL; every request opens a
new connection, so requests land on both workers. Users are kept in the
database, so a user added while the server runs logs in on every worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from postgres_support import server
from service_support import Served

TTL = 1


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    url = server().new_database()
    served = Served(
        tmp_path_factory.mktemp("pgserve") / "project",
        {"CONTINUITY_BROWSER_LEASE_TTL": str(TTL), "CONTINUITY_BROWSER_LEAVE_GRACE": "1"},
        store=url,
    )
    served.start("--workers", "2")
    try:
        yield served
    finally:
        served.stop()


def fresh(served: Served, token: str) -> httpx.Client:
    """A client that opens a new connection for every request (so they reach both workers)."""
    return httpx.Client(
        base_url=served.url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


def workers_of(pid: int) -> list[int]:
    """The live child processes of ``pid`` (uvicorn's workers), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def wait_for(check: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_two_workers_share_users_sessions_and_leases(team: Served) -> None:
    assert team.process is not None
    # uvicorn's supervisor and its workers (and multiprocessing's resource tracker).
    assert len(workers_of(team.process.pid)) >= 2, team.log.read_text()
    # Added while the server runs, by another process: every worker knows them at once,
    # and nothing is kept in a file on this host.
    alice, bob = team.add_user("alice"), team.add_user("bob")
    assert not list(team.root.rglob("users.json")) and not list(team.root.rglob("*.users.json"))
    with fresh(team, alice) as client:
        for _ in range(6):
            assert client.get("/api/me").json()["user"] == "alice"
        sid = client.post("/api/sessions", json={"task": "Survey"}).json()["id"]
        claimed = client.post(f"/api/sessions/{sid}/heartbeat", json={"claim": True})
        assert claimed.status_code == 200

        # Many writes at once to one session, through both workers: none lost, none doubled.
        def say(n: int) -> int:
            answer = client.post(
                f"/api/sessions/{sid}/messages", json={"role": "user", "text": f"note {n}"}
            )
            assert answer.status_code == 200, answer.text
            return int(answer.json()["seq"])

        def task(n: int) -> int:
            body = {"tasks": [{"id": f"T{n}", "title": f"Task {n}", "status": "open"}]}
            answer = client.post(f"/api/sessions/{sid}/update", json=body)
            assert answer.status_code == 200, answer.text
            return len(answer.json()["seqs"])

        with ThreadPoolExecutor(8) as pool:
            seqs = list(pool.map(say, range(40)))
            assert sum(pool.map(task, range(8))) == 8
        assert len(set(seqs)) == 40

        # Concurrent changes of the phase through both workers: the registry entry
        # (what the sessions list shows) ends as the journal does, never older.
        def phase(n: int) -> None:
            answer = client.post(f"/api/sessions/{sid}/update", json={"phase": f"phase-{n}"})
            assert answer.status_code == 200, answer.text

        for _ in range(3):
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(phase, range(16)))
            journal = client.get(f"/api/sessions/{sid}").json()["session"]
            listed = client.get("/api/sessions").json()["sessions"]
            assert [r["context"] for r in listed if r["id"] == sid] == [journal["context"]]
        shown = client.get(f"/api/sessions/{sid}").json()
        assert sorted(m["text"] for m in shown["conversation"]) == sorted(
            f"note {n}" for n in range(40)
        )
        assert {t["id"] for t in shown["tasks"]} == {"Survey"} | {f"T{n}" for n in range(8)}
        assert shown["session"]["status"] == "active"

        # Bob sees none of it, on either worker: 404, exactly as a missing session.
        with fresh(team, bob) as other:
            for _ in range(4):
                assert other.get(f"/api/sessions/{sid}").status_code == 404
                sent = {"role": "user", "text": "x"}
                assert other.post(f"/api/sessions/{sid}/messages", json=sent).status_code == 404
                assert other.get("/api/sessions").json()["sessions"] == []

        # The page's heartbeats stop: both workers' sweepers see the lease run out;
        # the session is interrupted once, cause heartbeat-lost.
        record = wait_for(
            lambda: (
                (r := client.get(f"/api/sessions/{sid}").json()["session"])["status"]
                == "interrupted"
                and r
            )
        )
        assert record["interruption"]["cause"] == "heartbeat-lost"
        time.sleep(2 * TTL)  # every sweeper has looked again since
        log = client.get("/api/recovery/log").json()["entries"]
        lost = [e for e in log if e.get("sessionId") == sid and e.get("event") == "interruption"]
        assert len(lost) == 1, log
        events = _rows(team.store, "SELECT count(*) FROM events")
        late = client.post(f"/api/sessions/{sid}/heartbeat")
        assert late.status_code == 409 and late.json()["error"]["code"] == "no-active-session"
        assert _rows(team.store, "SELECT count(*) FROM events") == events
        offered = client.get("/api/recovery").json()
        assert offered["sessionId"] == sid
        resumed = client.post("/api/recovery", json={"sessionId": sid, "answer": True}).json()
        assert resumed["outcome"] == "restored"
        again = client.get(f"/api/sessions/{sid}").json()
        assert len(again["conversation"]) == 40
        assert {t["id"] for t in again["tasks"]} == {"Survey"} | {f"T{n}" for n in range(8)}

        # A secret posted over HTTP reaches the database redacted, on either worker.
        key = "AKIA" + "Q3EGRX7W2ZK5N4TB"
        for _ in range(2):
            sent = {"role": "user", "text": f"the key is {key}"}
            assert client.post(f"/api/sessions/{sid}/messages", json=sent).status_code == 200
            noted = client.post(f"/api/sessions/{sid}/update", json={"notes": [f"key {key}"]})
            assert noted.status_code == 200
        assert client.post(f"/api/sessions/{sid}/save", json={}).status_code == 200
        assert key not in client.get(f"/api/sessions/{sid}").text
        stored = b"".join(
            bytes(row[0])
            for table, column in _DOCUMENTS
            for row in _rows(team.store, f"SELECT {column} FROM {table}")
        )
        assert b"[REDACTED:aws-access-key]" in stored and key.encode() not in stored


_DOCUMENTS = [
    ("events", "line"),
    ("points", "body"),
    ("sessions", "doc"),
    ("snapshots", "doc"),
    ("emergency", "doc"),
]


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def test_two_workers_writing_one_session_leave_the_newest_registry_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent_continuity import Config, SessionManager, UserSessions
    from agent_continuity.storage.postgres import PostgresStore

    url = server().new_database()
    config = Config(store=url, user="alice", browser_lease_ttl=60.0)
    first, second = PostgresStore(url), PostgresStore(url)  # two workers' stores

    def view(store: PostgresStore) -> UserSessions:
        manager = SessionManager(
            store=store, project_dir=tmp_path, user_id="alice", config=config, observer=False
        )
        return UserSessions(manager)

    slow, fast = view(first), view(second)
    sid = slow.start()["id"]
    slow.heartbeat(sid, claim=True)
    # The first worker is descheduled between its append and its registry write.
    written = first.put_session
    paused = threading.Event()

    def late(record: Any) -> None:
        paused.set()
        time.sleep(0.5)
        written(record)

    monkeypatch.setattr(first, "put_session", late)
    behind = threading.Thread(target=slow.update, args=(sid,), kwargs={"phase": "one"})
    behind.start()
    assert paused.wait(10)
    fast.update(sid, phase="two")  # the page's next change, through the other worker
    behind.join()
    listed = [r for r in fast.sessions()["sessions"] if r["id"] == sid]
    assert listed[0]["context"]["currentPhase"] == "two"
    assert fast.details(sid)["session"]["context"]["currentPhase"] == "two"
    first.close()
    second.close()
