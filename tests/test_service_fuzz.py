"""A seeded fuzz run against a real ``continuity serve``: no 500, no cross-user read, no change.

Hundreds of requests, each generated from a fixed seed (so a failure names a
request that can be replayed): malformed bodies, wrong types, unknown fields,
hostile ids, odd methods, bad credentials, and well-formed requests by one
user on another user's sessions. Alice's sessions hold a secret; at the end
they must be exactly as they were, and no reply to anyone else may contain
the secret or list her sessions.
"""

from __future__ import annotations

import json
import random
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from service_support import Served

SEED = 20261206
REQUESTS = 600
SECRET = "ALICE-SECRET-7f3a9c"

ROUTES = [
    ("GET", ""),
    ("POST", "/messages"),
    ("POST", "/reply"),
    ("POST", "/update"),
    ("POST", "/heartbeat"),
    ("POST", "/save"),
    ("POST", "/end"),
]
TOP = [("GET", "/api/sessions"), ("POST", "/api/sessions"), ("GET", "/api/recovery")]
TOP += [("POST", "/api/recovery"), ("GET", "/api/analytics"), ("GET", "/api/me")]
TOP += [("GET", "/login?token=ct_x"), ("GET", "/login"), ("POST", "/logout"), ("GET", "/")]
TOP += [("GET", "/static/%2e%2e/%2e%2e/etc/passwd"), ("GET", "/static/..%2Fapp.py")]
# Searches: bob and nobody look for alice's secret; odd queries and limits must be 4xx.
TOP += [("GET", "/api/search?q=" + SECRET), ("GET", "/api/search?q=secret-task&limit=1000")]
TOP += [("GET", "/api/search"), ("GET", "/api/search?q="), ("GET", "/api/search?q=%00")]
TOP += [("GET", "/api/search?q=ALICE&limit=0"), ("GET", "/api/search?q=" + "w" * 600)]
TOP += [("GET", "/api/search?q=SECRET&limit=%C2%B2"), ("GET", "/api/search?q=7f3a9c*")]
HOSTILE_IDS = [
    "",
    "..",
    "../../etc/passwd",
    "SESSION-000000-000",
    "SESSION-991231-999",
    "SESSION-261206-001' OR '1'='1",
    "SESSION-\x00-001",
    "session-261206-001",
    "SESSION-261206-0001",
    "SESSION-261206-1",
    "\u202eSESSION",
    "%",
    "A" * 3000,
    "SESSION-261206-001/../../x",
    "null",
    "{}",
]
WELL_FORMED: dict[str, Any] = {
    "/messages": {"role": "user", "text": "bob"},
    "/update": {"decisions": ["bob"], "tasks": [{"id": "B1", "status": "done"}]},
    "/save": {"trigger": "user-request"},
    "/api/recovery": {"sessionId": None, "answer": True},
}
FIELDS = ["role", "text", "task", "phase", "decisions", "tasks", "progress", "trigger"]
FIELDS += ["sessionId", "answer", "preferences", "notes", "next", "type", "zzz", "__proto__"]


def junk(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value of a random type."""
    kinds = ["int", "float", "str", "bool", "null", "list", "dict", "huge"]
    kind = rng.choice(kinds if depth < 3 else kinds[:5])
    if kind == "int":
        return rng.choice([0, -1, 101, 2**63, -(2**70)])
    if kind == "float":
        return rng.choice([0.5, -1e308, 1e308])
    if kind == "str":
        return rng.choice(["", " ", "user", "done", "x" * 20_000, "\u0000", "🙂", "<script>"])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "list":
        return [junk(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if kind == "huge":
        return ["x"] * 150
    return {rng.choice(FIELDS): junk(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def malformed_body(rng: random.Random, path: str) -> bytes:
    """A body that no route may accept: every one of these must be refused."""
    choice = rng.randrange(8)
    if choice == 0:
        return rng.choice([b"{", b"{'a': 1}", b"\xff\xfe", b"nul", b"[" * 3000, b"{}}"])
    if choice == 1:  # JSON, but not an object
        return json.dumps(rng.choice([[junk(rng)], 7, "text", None, True])).encode()
    if choice == 2:
        return b'{"text": "' + b"y" * 300_000 + b'"}'
    if choice == 3:
        return json.dumps({"zzz": junk(rng)}).encode()  # an unknown field
    if path == "/messages":
        wrong = rng.choice(
            [
                {"role": "user"},
                {"text": "hi"},
                {"role": 1, "text": "hi"},
                {"role": "god", "text": "x"},
            ]
        )
        return json.dumps(wrong).encode()
    if path == "/update":
        field = rng.choice(["progress", "decisions", "tasks", "preferences", "task"])
        wrong_value = {"progress": "x", "decisions": [1], "tasks": [5], "preferences": [1]}
        return json.dumps({field: wrong_value.get(field, 7)}).encode()
    if path == "/save":
        return json.dumps({"trigger": rng.choice(["nope", 1, [], ""])}).encode()
    return json.dumps({"answer": "yes", "sessionId": 5}).encode()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # Leases that outlast the run: alice's sessions must not change on their own.
    server = Served(
        tmp_path_factory.mktemp("fuzz") / "project", {"CONTINUITY_BROWSER_LEASE_TTL": "1h"}
    )
    try:
        yield server.start()
    finally:
        server.stop()


def snapshot(client: httpx.Client, ids: list[str]) -> dict[str, Any]:
    """Alice's sessions as she sees them: registry entries and conversations."""
    shown = {sid: client.get(f"/api/sessions/{sid}").json() for sid in ids}
    return {
        sid: (data["session"], data["conversation"], data["tasks"]) for sid, data in shown.items()
    }


def test_fuzzed_requests_find_no_500_and_no_cross_user_read(served: Served) -> None:
    alice_token, bob_token = served.add_user("alice"), served.add_user("bob")
    alice = served.client(alice_token)
    bob = served.client(bob_token)
    anyone = served.client()
    mine: list[str] = []
    for _ in range(3):
        sid = alice.post("/api/sessions", json={"task": "secret-task"}).json()["id"]
        alice.post(f"/api/sessions/{sid}/messages", json={"role": "user", "text": SECRET})
        alice.post(f"/api/sessions/{sid}/update", json={"decisions": [SECRET]})
        mine.append(sid)
    bob.post("/api/sessions", json={})  # bob has a session of his own too
    before = snapshot(alice, mine)
    rng = random.Random(SEED)
    failures: list[str] = []
    seen: dict[int, int] = {}
    for number in range(REQUESTS):
        who = rng.choice(["alice", "bob", "bob", "nobody", "forged"])
        if rng.random() < 0.6:
            method, suffix = rng.choice(ROUTES)
            if who == "bob":
                target = rng.choice(mine)  # alice's session, well-formed ids
            else:
                target = rng.choice([*HOSTILE_IDS, rng.choice(mine)])
            path = "/api/sessions/" + urllib.parse.quote(target, safe="") + suffix
        else:
            method, path = rng.choice(TOP)
            suffix = path
        if rng.random() < 0.15:
            method = rng.choice(["PUT", "DELETE", "PATCH"])
        if who == "alice" and method == "POST" and path.startswith(f"/api/sessions/{mine[0][:8]}"):
            # Alice's own sessions get only requests that must be refused.
            content = malformed_body(rng, suffix)
            if suffix in ("/heartbeat", "/end", "/reply"):
                path = "/api/sessions/SESSION-991231-998" + suffix
        elif who == "alice" and path in ("/api/sessions", "/api/recovery") and method == "POST":
            content = malformed_body(rng, path)
        elif who == "bob" and rng.random() < 0.5:
            content = json.dumps(WELL_FORMED.get(suffix, {})).encode()
        else:
            content = malformed_body(rng, suffix) if rng.random() < 0.7 else b""
        client = {"alice": alice, "bob": bob, "nobody": anyone}.get(who, anyone)
        headers = {"Content-Type": rng.choice(["application/json", "text/plain", "x/y"])}
        if who == "forged":
            headers["Authorization"] = rng.choice(
                ["Bearer", "Bearer ct_forged", "Basic YWxpY2U6eA==", "Bearer " + "x" * 5000]
            )
        try:
            answer = client.request(method, path, content=content, headers=headers)
        except httpx.HTTPError as exc:
            failures.append(f"#{number} {who} {method} {path[:80]}: {exc}")
            continue
        seen[answer.status_code] = seen.get(answer.status_code, 0) + 1
        where = f"#{number} {who} {method} {path[:80]} -> {answer.status_code}"
        if answer.status_code >= 500:
            failures.append(f"{where}: {answer.text[:200]}")
        if answer.status_code >= 400:
            error = answer.json().get("error", {})
            if not (error.get("code") and error.get("message")):
                failures.append(f"{where}: not a JSON error: {answer.text[:200]}")
        shown = answer.text
        if path.startswith("/api/search") and answer.status_code == 200:
            shown = json.dumps(answer.json()["results"])  # not the query bob sent, echoed back
        if who != "alice" and SECRET in shown:
            failures.append(f"{where}: alice's secret leaked")
        if who == "bob" and answer.status_code < 300 and path.startswith("/api/search"):
            found = {r["sessionId"] for r in answer.json().get("results", [])}
            if found & set(mine):
                failures.append(f"{where}: alice's sessions found by bob's search")
        if who == "bob" and answer.status_code < 300 and path == "/api/sessions":
            listed = {s["id"] for s in answer.json().get("sessions", [])}
            if listed & set(mine):
                failures.append(f"{where}: alice's sessions listed to bob")
    assert failures == []
    # The run reached every kind of answer, not only the first refusal.
    assert {200, 400, 401, 404, 405, 409, 413} <= set(seen), seen
    assert snapshot(alice, mine) == before  # nothing of alice's changed
    # The server is still well and still serves alice.
    assert alice.get(f"/api/sessions/{mine[0]}").json()["conversation"][0]["text"] == SECRET
