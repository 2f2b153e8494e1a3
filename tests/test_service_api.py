"""``continuity serve`` over real HTTP: users, login, the routes of DESIGN §6, browser leases.

One server per module (SQLite, the default store) on a free port, stopped by
its pid; a second one with a one-second browser lease for the heartbeat tests.
"""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service_support import Served

SHOW_KEYS = {
    "session",
    "tasks",
    "pendingOperations",
    "userPreferences",
    "conversationContext",
    "aiAgentState",
    "contextSnapshot",
    "lastAction",
    "messageCount",
    "recentMessages",
    "recoveryPoints",
    "codeContext",
    "damage",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = Served(tmp_path_factory.mktemp("served") / "project")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tokens(served: Served) -> dict[str, str]:
    return {"alice": served.add_user("alice"), "bob": served.add_user("bob")}


@pytest.fixture
def alice(served: Served, tokens: dict[str, str]) -> Iterator[httpx.Client]:
    with served.client(tokens["alice"]) as client:
        yield client


@pytest.fixture
def bob(served: Served, tokens: dict[str, str]) -> Iterator[httpx.Client]:
    with served.client(tokens["bob"]) as client:
        yield client


def start(client: httpx.Client, **body: Any) -> str:
    answer = client.post("/api/sessions", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def test_users_add_shows_the_token_once_and_keeps_its_hash(
    served: Served, tokens: dict[str, str]
) -> None:
    users_file = served.root / "projectDocs" / "tracking" / "service.db.users.json"
    kept = users_file.read_text()
    assert tokens["alice"] not in kept and tokens["bob"] not in kept
    assert set(json.loads(kept)["users"]) >= {"alice", "bob"}
    assert stat.S_IMODE(users_file.stat().st_mode) == 0o600
    assert httpx.get(served.url + "/api/me").status_code == 401
    wrong = httpx.get(served.url + "/api/me", headers={"Authorization": "Bearer ct_nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"


def test_the_printed_login_url_sets_a_strict_httponly_cookie(served: Served) -> None:
    url = served.login_url()
    assert url.startswith(served.url + "/login?token=")
    answer = httpx.get(url, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=" in cookie
    # The first user, made by `serve` itself since there was none: the login name.
    with httpx.Client(base_url=served.url, cookies=answer.cookies) as browser:
        assert browser.get("/api/me").json()["user"] == "owner"
        assert browser.get("/").status_code == 200
    assert httpx.get(served.url + "/login?token=ct_wrong").status_code == 401


def test_cookie_writes_must_come_from_the_page_itself(
    served: Served, tokens: dict[str, str], alice: httpx.Client
) -> None:
    login = httpx.get(f"{served.url}/login?token={tokens['alice']}")
    jar = login.history[0].cookies if login.history else login.cookies
    before = len(alice.get("/api/sessions").json()["sessions"])
    with httpx.Client(base_url=served.url, cookies=jar) as browser:
        evil = browser.post("/api/sessions", json={}, headers={"Origin": "https://evil.example"})
        assert evil.status_code == 403 and evil.json()["error"]["code"] == "csrf"
        bare = browser.post("/api/sessions", json={})
        assert bare.status_code == 403
        assert len(alice.get("/api/sessions").json()["sessions"]) == before  # nothing made
        own = browser.post("/api/sessions", json={}, headers={"Origin": served.url})
        assert own.status_code == 201
        marked = browser.post("/api/sessions", json={}, headers={"X-Continuity": "1"})
        assert marked.status_code == 201
        assert browser.get("/api/sessions").status_code == 200  # reads need neither
    for sid in (own.json()["id"], marked.json()["id"]):
        assert alice.post(f"/api/sessions/{sid}/end").status_code == 200


def test_a_research_session_through_every_route(alice: httpx.Client) -> None:
    sid = start(alice, task="survey", phase="reading")
    said = alice.post(f"/api/sessions/{sid}/messages", json={"role": "user", "text": "ARIES?"})
    assert said.status_code == 200 and said.json() == {"sessionId": sid, "seq": said.json()["seq"]}
    answered = alice.post(f"/api/sessions/{sid}/reply").json()
    assert answered["role"] == "assistant" and "ARIES?" in answered["text"]
    assert answered["seq"] == said.json()["seq"] + 1 and answered["responder"] == "offline"
    updated = alice.post(
        f"/api/sessions/{sid}/update",
        json={
            "tasks": [{"id": "T1", "title": "Read ARIES", "status": "in-progress"}],
            "decisions": ["Focus on write-ahead logging"],
            "next": "compare with shadow paging",
            "notes": ["ARIES: Mohan et al., 1992"],
            "progress": 20,
        },
    )
    assert updated.status_code == 200, updated.text
    assert set(updated.json()) == {"sessionId", "seqs", "session"}
    assert alice.post(f"/api/sessions/{sid}/heartbeat").json()["status"] == "active"
    saved = alice.post(f"/api/sessions/{sid}/save", json={"trigger": "user-request"}).json()
    assert saved["recoveryPointId"].startswith("RECOVERY-")
    shown = alice.get(f"/api/sessions/{sid}").json()
    assert SHOW_KEYS <= set(shown)
    assert [m["text"] for m in shown["conversation"]] == ["ARIES?", answered["text"]]
    assert {t["id"]: t["status"] for t in shown["tasks"]}["T1"] == "in-progress"
    assert shown["session"]["context"]["keyDecisions"]
    assert shown["session"]["state"]["progress"] == "20%"
    listed = alice.get("/api/sessions", params={"status": "active"}).json()["sessions"]
    assert sid in [s["id"] for s in listed]
    assert alice.post(f"/api/sessions/{sid}/end").json() == {
        "sessionId": sid,
        "status": "completed",
    }
    assert alice.get("/api/recovery").status_code == 204  # an end is not a crash
    figures = alice.get("/api/analytics").json()
    assert figures["sessions"]["completed"] >= 1 and "interruptionsByCause" in figures


def test_search_finds_the_users_own_words_and_never_another_users(
    alice: httpx.Client, bob: httpx.Client
) -> None:
    mine, theirs = start(alice), start(bob)
    alice.post(f"/api/sessions/{mine}/messages", json={"role": "user", "text": "heliotrope fjord"})
    bob.post(f"/api/sessions/{theirs}/messages", json={"role": "user", "text": "heliotrope moor"})
    found = alice.get("/api/search", params={"q": "heliotrope"}).json()
    assert found["query"] == "heliotrope"
    assert [(r["sessionId"], r["kind"]) for r in found["results"]] == [(mine, "message")]
    assert found["results"][0]["snippet"] == "[heliotrope] fjord"
    assert {"seq", "score"} <= set(found["results"][0])
    assert bob.get("/api/search", params={"q": "fjord"}).json()["results"] == []
    both = bob.get("/api/search", params={"q": "heliotrope", "limit": "1"}).json()["results"]
    assert [r["sessionId"] for r in both] == [theirs]
    refused = [
        {},
        {"q": ""},
        {"q": "   "},
        {"q": "?!"},
        {"q": "x" * 501},
        {"q": "fjord", "limit": "0"},
        {"q": "fjord", "limit": "1001"},
        {"q": "fjord", "limit": "-1"},
        {"q": "fjord", "limit": "ten"},
        {"q": "fjord", "limit": "²"},
    ]
    for params in refused:
        answer = alice.get("/api/search", params=params)
        assert answer.status_code == 400, (params, answer.text)
        assert answer.json()["error"]["code"] and answer.json()["error"]["message"]
    assert httpx.get(str(alice.base_url) + "/api/search?q=fjord").status_code == 401


def test_another_users_session_answers_exactly_as_a_missing_one(
    alice: httpx.Client, bob: httpx.Client
) -> None:
    sid = start(alice)
    alice.post(f"/api/sessions/{sid}/messages", json={"role": "user", "text": "ALICE-ONLY"})
    before = alice.get(f"/api/sessions/{sid}").json()
    missing = "SESSION-991231-999"
    requests = [
        ("GET", "", None),
        ("POST", "/messages", {"role": "user", "text": "bob was here"}),
        ("POST", "/reply", {}),
        ("POST", "/update", {"decisions": ["bob decides"]}),
        ("POST", "/heartbeat", None),
        ("POST", "/save", {}),
        ("POST", "/end", None),
    ]
    for method, suffix, body in requests:
        theirs = bob.request(method, f"/api/sessions/{sid}{suffix}", json=body)
        absent = bob.request(method, f"/api/sessions/{missing}{suffix}", json=body)
        assert theirs.status_code == absent.status_code == 404, suffix
        assert theirs.text == absent.text.replace(missing, sid), suffix
    taken = bob.post("/api/recovery", json={"sessionId": sid, "answer": True})
    assert taken.status_code == 404
    assert sid not in bob.get("/api/sessions").text and "ALICE-ONLY" not in bob.get("/").text
    after = alice.get(f"/api/sessions/{sid}").json()
    assert after["session"] == before["session"] and after["conversation"] == before["conversation"]
    alice.post(f"/api/sessions/{sid}/end")


@pytest.mark.parametrize(
    ("method", "path", "content", "status", "code"),
    [
        ("POST", "/messages", b"{not json", 400, "invalid-json"),
        ("POST", "/messages", b"[1, 2]", 400, "invalid-json"),
        ("POST", "/messages", b"", 400, "invalid-json"),
        ("POST", "/messages", b'{"role": "user"}', 400, "invalid-input"),
        ("POST", "/messages", b'{"role": "user", "text": 5}', 400, "invalid-input"),
        ("POST", "/messages", b'{"role": "wizard", "text": "hi"}', 400, "invalid-input"),
        ("POST", "/messages", b'{"role": "user", "text": "hi", "x": 1}', 400, "invalid-input"),
        ("POST", "/messages", b'{"role": "user", "text": "' + b"a" * 300_000 + b'"}', 413, None),
        ("POST", "/messages", b"\xff\xfe\x00", 400, "invalid-json"),
        ("POST", "/messages", b"[" * 150_000 + b"]" * 150_000, 413, "too-large"),
        ("POST", "/messages", b"[" * 50_000 + b"]" * 50_000, 400, "invalid-json"),
        ("POST", "/update", b"{}", 400, "invalid-input"),
        ("POST", "/update", b'{"progress": "lots"}', 400, "invalid-input"),
        ("POST", "/update", b'{"progress": true}', 400, "invalid-input"),
        ("POST", "/update", b'{"progress": 101}', 400, "invalid-input"),
        ("POST", "/update", b'{"decisions": [1]}', 400, "invalid-input"),
        ("POST", "/update", b'{"tasks": [{"id": "T", "status": "maybe"}]}', 400, "invalid-input"),
        ("POST", "/update", b'{"tasks": "T1"}', 400, "invalid-input"),
        # The good task is not kept when the next one is refused: one group or nothing.
        (
            "POST",
            "/update",
            b'{"tasks": [{"id": "A"}, {"id": "B", "status": "maybe"}]}',
            400,
            "invalid-input",
        ),
        ("POST", "/update", b'{"tasks": [{"id": "A"}], "decisions": [" "]}', 400, None),
        ("POST", "/update", b'{"decisions": ["' + b'x", "' * 200 + b'y"]}', 413, "too-large"),
        ("POST", "/save", b'{"trigger": "whenever"}', 400, "invalid-input"),
        ("POST", "/save", b'{"trigger": 3}', 400, "invalid-input"),
        ("DELETE", "", b"", 405, "method-not-allowed"),
        ("GET", "/nothing-here", b"", 404, "not-found"),
    ],
)
def test_bad_input_gets_a_json_4xx_and_changes_nothing(
    alice: httpx.Client,
    method: str,
    path: str,
    content: bytes,
    status: int,
    code: str | None,
) -> None:
    sid = start(alice)
    before = alice.get(f"/api/sessions/{sid}").json()["session"]
    headers = {"Content-Type": "application/json"}
    answer = alice.request(method, f"/api/sessions/{sid}{path}", content=content, headers=headers)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["message"] and (code is None or error["code"] == code)
    after = alice.get(f"/api/sessions/{sid}").json()["session"]
    assert after["lastSeq"] == before["lastSeq"]
    alice.post(f"/api/sessions/{sid}/end")


@pytest.mark.parametrize(
    "hostile",
    [
        "..%2F..%2Fetc%2Fpasswd",
        "SESSION-261206-001%00",
        "SESSION-' OR 1=1 --",
        "%E2%80%AE",
        "A" * 4000,
    ],
)
def test_hostile_session_ids_are_refused(alice: httpx.Client, hostile: str) -> None:
    for suffix in ("", "/heartbeat", "/end"):
        method = "GET" if not suffix else "POST"
        answer = alice.request(method, f"/api/sessions/{hostile}{suffix}")
        assert 400 <= answer.status_code < 500 and answer.json()["error"]["code"]


def test_more_workers_than_one_are_refused_on_sqlite(served: Served) -> None:
    done = served.cli("serve", "--port", "1", "--workers", "2")
    assert done.returncode == 1
    assert "PostgreSQL" in done.stderr and "Traceback" not in done.stderr


# -- browser leases, on a server whose leases last one second -------------------


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, httpx.Client]]:
    server = Served(
        tmp_path_factory.mktemp("quick") / "project",
        {"CONTINUITY_BROWSER_LEASE_TTL": "1", "CONTINUITY_BROWSER_LEAVE_GRACE": "1"},
    )
    token = server.add_user("carol")
    server.start()
    try:
        with server.client(token) as client:
            yield server, client
    finally:
        server.stop()


def wait_for(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_heartbeats_keep_the_page_s_session_and_their_loss_interrupts_it(
    quick: tuple[Served, httpx.Client],
) -> None:
    _, carol = quick
    sid = start(carol)
    carol.post(f"/api/sessions/{sid}/messages", json={"role": "user", "text": "reading"})
    carol.post(f"/api/sessions/{sid}/update", json={"tasks": [{"id": "T1", "title": "Read"}]})
    for _ in range(8):  # 2 s, four times the lease, alive all along
        assert carol.post(f"/api/sessions/{sid}/heartbeat").status_code == 200
        time.sleep(0.25)
    assert carol.get(f"/api/sessions/{sid}").json()["session"]["status"] == "active"
    # The heartbeats stop (the browser crashed): the server notices on its own.
    record = wait_for(
        lambda: (
            (r := carol.get(f"/api/sessions/{sid}").json()["session"])["status"] == "interrupted"
            and r
        )
    )
    assert record["interruption"]["cause"] == "heartbeat-lost"
    late = carol.post(f"/api/sessions/{sid}/heartbeat")
    assert late.status_code == 409 and late.json()["error"]["code"] == "no-active-session"
    offered = carol.get("/api/recovery")
    assert offered.status_code == 200 and offered.json()["sessionId"] == sid
    assert carol.get(f"/api/sessions/{sid}").json()["session"]["status"] == "interrupted"
    assert set(offered.json()) >= {"decision", "confidence", "contextSummary", "prompt"}
    resumed = carol.post("/api/recovery", json={"sessionId": sid, "answer": True}).json()
    assert resumed["outcome"] == "restored"
    assert carol.post(f"/api/sessions/{sid}/heartbeat").status_code == 200
    shown = carol.get(f"/api/sessions/{sid}").json()
    assert [m["text"] for m in shown["conversation"]] == ["reading"]
    assert [t["id"] for t in shown["tasks"]] == ["T1"]
    assert carol.post(f"/api/sessions/{sid}/end").status_code == 200


def test_a_page_closed_normally_is_not_interrupted(quick: tuple[Served, httpx.Client]) -> None:
    _, carol = quick
    sid = start(carol)
    # What navigator.sendBeacon sends: text/plain, any body.
    beacon = carol.post(
        f"/api/sessions/{sid}/end", content=b"bye", headers={"Content-Type": "text/plain"}
    )
    assert beacon.status_code == 200
    time.sleep(1.5)
    assert carol.get(f"/api/sessions/{sid}").json()["session"]["status"] == "completed"
    assert carol.get("/api/recovery").status_code == 204


def test_a_reload_s_claim_keeps_the_session_and_an_unclaimed_deferred_end_completes_it(
    quick: tuple[Served, httpx.Client],
) -> None:
    _, carol = quick
    sid = start(carol)
    beat, end = f"/api/sessions/{sid}/heartbeat", f"/api/sessions/{sid}/end"
    lease = carol.post(beat, json={"claim": True}).json()["lease"]
    for bad in ({"deferred": "yes"}, {"deferred": True, "lease": "1"}, {"lease": -1}):
        refused = carol.post(end, json=bad)
        assert refused.status_code == 400, bad
    assert carol.post(beat, json={"claim": 1}).status_code == 400
    assert carol.get(f"/api/sessions/{sid}").json()["session"]["status"] == "active"
    # The page reloads: its beacon defers the end, the new page claims the session.
    left = carol.post(end, json={"deferred": True, "lease": lease}).json()
    assert left["status"] == "active" and "endsAt" in left
    lease = carol.post(beat, json={"claim": True}).json()["lease"]
    for _ in range(8):  # 2 s: twice the grace, the new page heartbeating
        assert carol.post(beat).status_code == 200
        time.sleep(0.25)
    assert carol.get(f"/api/sessions/{sid}").json()["session"]["status"] == "active"
    log = carol.get("/api/recovery/log").json()["entries"]
    assert [e for e in log if e.get("sessionId") == sid] == []
    # The tab closes: nobody claims it, and it completes; not a crash.
    carol.post(end, json={"deferred": True, "lease": lease})
    wait_for(lambda: carol.get(f"/api/sessions/{sid}").json()["session"]["status"] == "completed")
    assert carol.get("/api/recovery").status_code == 204
    log = carol.get("/api/recovery/log").json()["entries"]
    assert [e for e in log if e.get("sessionId") == sid] == []


def test_declining_archives_and_starts_a_new_session(quick: tuple[Served, httpx.Client]) -> None:
    _, carol = quick
    sid = start(carol)
    carol.post(f"/api/sessions/{sid}/messages", json={"role": "user", "text": "old thread"})
    wait_for(lambda: carol.get("/api/recovery").status_code == 200)
    declined = carol.post("/api/recovery", json={"sessionId": sid, "answer": False}).json()
    assert declined["outcome"] == "new-session"
    fresh = declined["newSessionId"]
    assert carol.get(f"/api/sessions/{sid}").json()["session"]["status"] == "archived"
    assert carol.post(f"/api/sessions/{fresh}/heartbeat").status_code == 200
    assert carol.get(f"/api/sessions/{fresh}").json()["conversation"] == []
    assert carol.post(f"/api/sessions/{fresh}/end").status_code == 200


def test_the_first_user_is_named_after_the_login_made_fit_for_a_user_name(
    tmp_path: Path,
) -> None:
    from agent_continuity import Config
    from agent_continuity.service.server import login_banner
    from agent_continuity.service.state import Service

    (tmp_path / ".git").mkdir()
    service = Service(tmp_path, config=Config(user="Jane Doe@corp"))
    banner = login_banner(service, "127.0.0.1", 8765)
    assert "log in as Jane-Doe-corp: http://127.0.0.1:8765/login?token=ct_" in banner
    token = banner.split("login?token=")[1].split()[0]
    assert service.users.authenticate(token) == "Jane-Doe-corp"
    again = login_banner(service, "::1", 8765)  # each start: a fresh link, the old one retired
    assert "http://[::1]:8765/login?token=" in again
    assert service.users.authenticate(token) is None


@pytest.mark.parametrize(
    "path", ["/static/..%2Fapp.py", "/static/%2e%2e/app.py", "/static/../app.py", "/static/"]
)
def test_the_static_files_stay_in_their_folder(served: Served, path: str) -> None:
    answer = httpx.get(served.url + path)
    assert answer.status_code == 404 and "build_app" not in answer.text


def test_a_secret_posted_over_http_is_stored_redacted(served: Served, alice: httpx.Client) -> None:
    key = "AKIA" + "Q3EGRX7W2ZK5N4TB"
    sid = start(alice)
    said = alice.post(
        f"/api/sessions/{sid}/messages",
        json={"role": "user", "text": f"deploy with aws_access_key_id={key} please"},
    )
    assert said.status_code == 200, said.text
    updated = alice.post(
        f"/api/sessions/{sid}/update",
        json={
            "decisions": [f"use the key {key} for staging"],
            "notes": [f"key: {key}"],
            "tasks": [{"id": "T9", "title": f"rotate {key}"}],
        },
    )
    assert updated.status_code == 200, updated.text
    assert alice.post(f"/api/sessions/{sid}/save", json={}).status_code == 200
    shown = alice.get(f"/api/sessions/{sid}")
    assert key not in shown.text and key not in updated.text
    assert "[REDACTED:aws-access-key]" in shown.json()["conversation"][0]["text"]
    assert "[REDACTED:aws-access-key]" in json.dumps(shown.json()["tasks"])
    stored = b"".join(
        path.read_bytes() for path in (served.root / "projectDocs" / "tracking").glob("service.db*")
    )
    assert b"[REDACTED:aws-access-key]" in stored
    assert key.encode() not in stored
