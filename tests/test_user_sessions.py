"""Below the HTTP layer: one user's view of the sessions, browser leases, and the users file.

The service answers every request through :class:`UserSessions`; these tests
check, without any HTTP, that the view cannot read or change another user's
session (so a route that forgets a check still cannot leak one), that a web
page's session is interrupted with ``heartbeat-lost`` when its heartbeats
stop, and that users' tokens are kept only as hashes. Time is injected.
"""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent_continuity import Config, SessionManager, UserRegistry, UserSessions
from agent_continuity.errors import InvalidInput, LeaseHeld, NoActiveSession, SessionNotFound


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 's.db'}"


def view(url: str, user: str, clock: Clock, tmp_path: Path, ttl: float = 30.0) -> UserSessions:
    config = Config(store=url, user=user, browser_lease_ttl=ttl)
    mgr = SessionManager(
        store=url,
        project_dir=tmp_path,
        user_id=user,
        config=config,
        clock=clock,
        observer=False,
    )
    return UserSessions(mgr)


def test_another_users_session_is_missing_for_every_operation(
    url: str, clock: Clock, tmp_path: Path
) -> None:
    alice = view(url, "alice", clock, tmp_path)
    bob = view(url, "bob", clock, tmp_path)
    sid = alice.start(task="read-aries")["id"]
    alice.message(sid, "user", "alice's secret plan")
    before = alice.details(sid)
    missing = "SESSION-261206-099"

    with pytest.raises(SessionNotFound) as absent:
        bob.details(missing)
    operations = {
        "details": lambda s: bob.details(s),
        "conversation": lambda s: bob.conversation(s),
        "message": lambda s: bob.message(s, "user", "bob writes"),
        "update": lambda s: bob.update(s, decisions=["bob decides"]),
        "heartbeat": lambda s: bob.heartbeat(s),
        "save": lambda s: bob.save(s),
        "end": lambda s: bob.end(s),
        "recover": lambda s: bob.recover(s, answer=True),
        "reply": lambda s: bob.reply(s, lambda conversation, session: "bob answers", 100),
    }
    for name, operation in operations.items():
        with pytest.raises(SessionNotFound) as theirs:
            operation(sid)
        # Word for word what a missing session gets: nobody can tell the two apart.
        assert str(theirs.value) == str(absent.value).replace(missing, sid), name
    assert [s["id"] for s in bob.sessions()["sessions"]] == []
    after = alice.details(sid)
    assert after["session"]["lastSeq"] == before["session"]["lastSeq"]
    assert after["conversation"] == before["conversation"]


def test_the_assistant_answers_the_conversation_and_its_answer_is_recorded(
    url: str, clock: Clock, tmp_path: Path
) -> None:
    alice = view(url, "alice", clock, tmp_path)
    sid = alice.start(task="read-aries")["id"]
    alice.message(sid, "user", "summarise chapter one")
    heard: list[str] = []

    def respond(conversation: list[dict[str, object]], session: dict[str, object]) -> str:
        heard.extend(str(m["text"]) for m in conversation)
        return "  Chapter one sets the scene at length  "

    answered = alice.reply(sid, respond, 20)
    assert heard == ["summarise chapter one"]  # the responder saw the conversation
    assert answered["role"] == "assistant" and answered["text"] == "  Chapter one sets t"
    last = alice.details(sid)["conversation"][-1]
    assert (last["role"], last["text"]) == ("assistant", "Chapter one sets t")


def test_recovery_offers_only_the_users_own_interrupted_session(
    url: str, clock: Clock, tmp_path: Path
) -> None:
    alice = view(url, "alice", clock, tmp_path, ttl=5)
    bob = view(url, "bob", clock, tmp_path, ttl=5)
    sid = alice.start(task="read-aries")["id"]
    alice.message(sid, "user", "where were we")
    clock.advance(6)
    assert bob.recovery() is None  # alice's interrupted session is not bob's to resume
    with pytest.raises(NoActiveSession):
        bob.recover(answer=True)
    offered = alice.recovery()
    assert offered is not None and offered["sessionId"] == sid


def test_a_page_whose_heartbeats_stop_is_interrupted_with_heartbeat_lost(
    url: str, clock: Clock, tmp_path: Path
) -> None:
    alice = view(url, "alice", clock, tmp_path, ttl=10)
    sid = alice.start()["id"]
    alice.message(sid, "user", "first")
    for _ in range(5):  # 40 s of life, a heartbeat every 8 s: never lost
        clock.advance(8)
        alice.heartbeat(sid)
    assert alice.details(sid)["session"]["status"] == "active"
    heard = clock.now
    clock.advance(11)
    offered = alice.recovery()
    record = alice.details(sid)["session"]
    assert record["status"] == "interrupted"
    assert record["interruption"]["cause"] == "heartbeat-lost"
    # It stopped when the page was last heard from, not when that was noticed.
    assert record["interruption"]["at"] == heard.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert offered is not None and offered["sessionId"] == sid
    with pytest.raises(NoActiveSession):
        alice.heartbeat(sid)  # a page that comes back late is not silently revived


def test_a_message_does_not_keep_a_dead_page_alive(url: str, clock: Clock, tmp_path: Path) -> None:
    alice = view(url, "alice", clock, tmp_path, ttl=10)
    sid = alice.start()["id"]
    for _ in range(2):  # writes, but no heartbeat: only the heartbeat says the page lives
        clock.advance(4)
        alice.message(sid, "user", "typing")
    clock.advance(3)
    with pytest.raises(NoActiveSession):  # nor is a write accepted after the lease ran out
        alice.message(sid, "user", "too late")
    assert alice.recovery() is not None
    assert alice.details(sid)["session"]["interruption"]["cause"] == "heartbeat-lost"


def test_closing_the_page_ends_the_session_and_is_not_a_crash(
    url: str, clock: Clock, tmp_path: Path
) -> None:
    alice = view(url, "alice", clock, tmp_path, ttl=10)
    sid = alice.start()["id"]
    alice.message(sid, "user", "done for today")
    assert alice.end(sid) == {"sessionId": sid, "status": "completed"}
    assert alice.end(sid) == {"sessionId": sid, "status": "completed"}  # a beacon after end
    clock.advance(3600)
    assert alice.recovery() is None
    assert alice.details(sid)["session"]["status"] == "completed"


def test_accepting_restores_the_conversation_and_tasks_and_the_page_takes_it_back(
    url: str, clock: Clock, tmp_path: Path
) -> None:
    alice = view(url, "alice", clock, tmp_path, ttl=10)
    sid = alice.start()["id"]
    alice.message(sid, "user", "survey crash recovery")
    alice.update(sid, tasks=[{"id": "T1", "title": "Read ARIES", "status": "in-progress"}])
    before = alice.details(sid)
    clock.advance(20)
    result = alice.recover(sid, answer=True)
    assert result["outcome"] == "restored"
    alice.heartbeat(sid)  # the page adopts the restored session
    after = alice.details(sid)
    assert after["session"]["status"] == "active"
    assert after["conversation"] == before["conversation"]
    assert after["tasks"] == before["tasks"]
    alice.message(sid, "user", "carry on")


def test_an_update_is_one_group_checked_before_anything_is_written(
    url: str, clock: Clock, tmp_path: Path
) -> None:
    alice = view(url, "alice", clock, tmp_path)
    sid = alice.start()["id"]
    before = alice.details(sid)["session"]["lastSeq"]
    for bad in (
        {"tasks": [{"id": "A"}, {"id": "B", "status": "maybe"}]},
        {"tasks": [{"id": "A"}], "decisions": [" "]},
        {"tasks": [{"id": "A"}], "notes": [""]},
        {"tasks": [{"id": ""}]},
    ):
        with pytest.raises(InvalidInput):
            alice.update(sid, **bad)
    assert alice.details(sid)["session"]["lastSeq"] == before
    done = alice.update(
        sid,
        tasks=[{"id": "A", "title": "Read", "status": "done"}, {"id": "B"}],
        notes=["n"],
        decisions=["d"],
    )
    assert len(done["seqs"]) == 4
    shown = alice.details(sid)
    assert {t["id"]: t["status"] for t in shown["tasks"]} == {"A": "done", "B": "open"}
    assert shown["recoveryPoints"][-1]["trigger"] == "task-completion"


def test_declining_archives_and_starts_afresh(url: str, clock: Clock, tmp_path: Path) -> None:
    alice = view(url, "alice", clock, tmp_path, ttl=10)
    sid = alice.start()["id"]
    alice.message(sid, "user", "an old thread")
    clock.advance(20)
    result = alice.recover(sid, answer=False)
    assert result["outcome"] == "new-session"
    assert alice.details(sid)["session"]["status"] == "archived"
    fresh = result["newSessionId"]
    alice.heartbeat(fresh)
    assert alice.details(fresh)["conversation"] == []
    assert alice.recovery() is None


def test_users_keep_only_a_hash_of_their_tokens(tmp_path: Path) -> None:
    registry = UserRegistry.for_store(f"sqlite:///{tmp_path / 's.db'}", tmp_path)
    assert registry.path == tmp_path / "s.db.users.json"
    alice = registry.add("alice")
    bob = registry.add("bob")
    text = registry.path.read_text()
    assert alice.token not in text and bob.token not in text
    assert stat.S_IMODE(registry.path.stat().st_mode) == 0o600
    assert registry.authenticate(alice.token) == "alice"
    assert registry.authenticate(bob.token) == "bob"
    assert registry.authenticate(alice.token + "x") is None
    assert registry.authenticate("") is None
    launch = registry.launch_token("alice")
    assert registry.authenticate(launch) == "alice"
    assert registry.authenticate(alice.token) == "alice"  # the token of `add` still works
    again = registry.add("alice")  # a new token replaces the old ones
    assert registry.authenticate(alice.token) is None
    assert registry.authenticate(again.token) == "alice"
    assert json.loads(text)["users"].keys() == {"alice", "bob"}
    for name in ("", "../x", "a b", "x" * 65, "-lead"):
        with pytest.raises(InvalidInput):
            registry.add(name)


def test_search_finds_only_the_users_own_sessions(
    url: str, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = view(url, "alice", clock, tmp_path)
    bob = view(url, "bob", clock, tmp_path)
    mine = alice.start(task="sms")["id"]
    alice.message(mine, "user", "alice picks Twilio for the reminder texts")
    theirs = bob.start()["id"]
    bob.message(theirs, "user", "bob also thinks about Twilio pricing")
    found = alice.search("twilio")
    assert found["query"] == "twilio"
    assert [(r["sessionId"], r["kind"]) for r in found["results"]] == [(mine, "message")]
    assert "[Twilio]" in found["results"][0]["snippet"]
    assert {r["sessionId"] for r in bob.search("Twilio")["results"]} == {theirs}
    assert bob.search("reminder texts")["results"] == []
    # Below the index too: an index that forgot its user filter still leaks nothing.
    from agent_continuity.search.index import SqliteSearchIndex

    unfiltered = SqliteSearchIndex.query
    monkeypatch.setattr(
        SqliteSearchIndex,
        "query",
        lambda self, words, user, limit: unfiltered(self, words, None, limit),
    )
    assert {r["sessionId"] for r in bob.search("twilio")["results"]} == {theirs}
    assert bob.search("reminder")["results"] == []
    for bad in ("", "   ", "?!", 5):
        with pytest.raises(InvalidInput):
            alice.search(bad)  # type: ignore[arg-type]
    for limit in (0, 1001):
        with pytest.raises(InvalidInput):
            alice.search("twilio", limit)


# -- a reload is not a recovery: the page's end is deferred for a grace ---------


def leaving_view(url: str, clock: Clock, tmp_path: Path) -> UserSessions:
    """Alice's view with a 10 s browser lease and a 3 s grace for a page that left."""
    config = Config(store=url, user="alice", browser_lease_ttl=10, browser_leave_grace=3)
    mgr = SessionManager(
        store=url, project_dir=tmp_path, user_id="alice", config=config, clock=clock, observer=False
    )
    return UserSessions(mgr)


def logged_about(mine: UserSessions, sid: str) -> list[dict[str, object]]:
    return [e for e in mine.recovery_log()["entries"] if e.get("sessionId") == sid]


def test_a_reload_within_the_grace_keeps_the_same_session_and_logs_no_recovery(
    url: str, clock: Clock, tmp_path: Path
) -> None:
    alice = leaving_view(url, clock, tmp_path)
    sid = alice.start()["id"]
    lease = alice.heartbeat(sid, claim=True)["lease"]  # the page opens the session
    alice.message(sid, "user", "a thought worth keeping")
    # The reload: the old page's unload asks for a deferred end...
    left = alice.end(sid, deferred=True, lease=lease)
    assert left["status"] == "active" and "endsAt" in left
    clock.advance(1)
    # ...and the new page of the same tab claims the session back.
    claimed = alice.heartbeat(sid, claim=True)
    assert claimed["sessionId"] == sid and claimed["lease"] != lease
    alice.message(sid, "user", "and another")
    for _ in range(4):  # long past the grace, the page heartbeating: still the same session
        clock.advance(4)
        assert alice.recovery() is None
        alice.heartbeat(sid)
    record = alice.details(sid)
    assert record["session"]["status"] == "active"
    assert [m["text"] for m in record["conversation"]] == ["a thought worth keeping", "and another"]
    assert logged_about(alice, sid) == []  # no interruption, no recovery
    assert alice.analytics()["recoveries"]["total"] == 0
    # A reloaded page that then crashes is still a crash: heartbeat-lost, the question.
    clock.advance(11)
    offered = alice.recovery()
    assert offered is not None and offered["sessionId"] == sid
    assert alice.details(sid)["session"]["interruption"]["cause"] == "heartbeat-lost"
    assert [e["event"] for e in logged_about(alice, sid)] == ["interruption"]


def test_a_closed_page_that_nobody_claims_is_completed_after_the_grace(
    url: str, clock: Clock, tmp_path: Path
) -> None:
    alice = leaving_view(url, clock, tmp_path)
    sid = alice.start()["id"]
    lease = alice.heartbeat(sid, claim=True)["lease"]
    alice.message(sid, "user", "done for today")
    alice.end(sid, deferred=True, lease=lease)
    clock.advance(2)
    assert alice.details(sid)["session"]["status"] == "active"  # within the grace
    with pytest.raises(LeaseHeld):  # the leaving page's own last beat, arriving late
        alice.heartbeat(sid, lease=lease)
    clock.advance(1.5)
    assert alice.recovery() is None  # looking settles it: a normal close, nothing to resume
    record = alice.details(sid)["session"]
    assert record["status"] == "completed"
    assert record.get("interruption") is None
    assert logged_about(alice, sid) == []
    with pytest.raises(NoActiveSession):
        alice.heartbeat(sid, claim=True)  # a page back after the grace does not revive it
    clock.advance(3600)
    assert alice.recovery() is None
    assert alice.details(sid)["session"]["status"] == "completed"


def test_a_late_end_of_the_old_page_does_not_end_the_new_pages_session(
    url: str, clock: Clock, tmp_path: Path
) -> None:
    alice = leaving_view(url, clock, tmp_path)
    sid = alice.start()["id"]
    old = alice.heartbeat(sid, claim=True)["lease"]
    alice.heartbeat(sid, claim=True)  # the reload's page claims first...
    stale = alice.end(sid, deferred=True, lease=old)  # ...then the old page's beacon lands
    assert stale == {"sessionId": sid, "status": "active"}
    clock.advance(8)  # past the grace, within the lease
    assert alice.recovery() is None
    assert alice.details(sid)["session"]["status"] == "active"
    alice.heartbeat(sid)
    assert logged_about(alice, sid) == []


def test_a_deferred_end_survives_a_restart_of_the_service(
    url: str, clock: Clock, tmp_path: Path
) -> None:
    from agent_continuity.service.state import Service

    config = Config(store=url, user="alice", browser_lease_ttl=10, browser_leave_grace=3)
    before = Service(tmp_path, url, config=config, clock=clock)
    alice = before.sessions_of("alice")
    sid = alice.start()["id"]
    lease = alice.heartbeat(sid, claim=True)["lease"]
    alice.end(sid, deferred=True, lease=lease)
    before.close()  # the service stops during the grace
    clock.advance(4)
    after = Service(tmp_path, url, config=config, clock=clock)
    try:
        assert after.sweep() == 0  # nothing interrupted...
        record = after.sessions_of("alice").details(sid)["session"]
        assert record["status"] == "completed"  # ...the close completed
        assert logged_about(after.sessions_of("alice"), sid) == []
    finally:
        after.close()


def test_a_deferred_end_after_the_heartbeats_stopped_is_still_a_crash(
    url: str, clock: Clock, tmp_path: Path
) -> None:
    alice = leaving_view(url, clock, tmp_path)
    sid = alice.start()["id"]
    lease = alice.heartbeat(sid, claim=True)["lease"]
    clock.advance(11)  # the laptop slept: the lease ran out before the page said goodbye
    assert alice.end(sid, deferred=True, lease=lease)["status"] == "interrupted"
    assert alice.details(sid)["session"]["interruption"]["cause"] == "heartbeat-lost"
