"""``continuity search`` and ``SessionManager.search`` on the files and SQLite stores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_continuity import SessionManager
from cli_support import cli, git_project

STORES = ["files", "sqlite"]


def store_url(kind: str, tmp_path: Path) -> str:
    if kind == "postgres":
        from postgres_support import server

        return server().new_database()
    return f"files:{tmp_path / 'tracking'}" if kind == "files" else f"sqlite:///{tmp_path / 's.db'}"


@pytest.fixture(params=STORES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request.param, tmp_path)


def manager(tmp_path: Path, url: str, user: str = "alice") -> SessionManager:
    return SessionManager(store=url, project_dir=tmp_path, user_id=user, observer=False)


@pytest.fixture
def history(tmp_path: Path, url: str) -> Iterator[tuple[SessionManager, dict[str, str]]]:
    """Two users' sessions recording every searchable kind."""
    sids: dict[str, str] = {}
    with manager(tmp_path, url, "bob") as mgr:
        s = mgr.start(task="TASK-2", auto_save=False)
        s.add_message("user", "migrate the bookings table to PostgreSQL")
        s.note("the staging database is read-only on Fridays")
        sids["bob"] = s.id
        s.end()
    with manager(tmp_path, url) as mgr:
        s = mgr.start(task="TASK-1", auto_save=False)
        s.add_message("user", "Add SMS reminders to bookings")
        s.decide("Twilio is the SMS provider for reminders")
        s.set_task("TASK-7", title="Send reminder texts an hour before", status="in-progress")
        s.record_tool_call("http_get", {"url": "https://api.twilio.com/pricing"})
        s.add_message("assistant", "SMS SMS SMS: three reminder SMS variants drafted")
        sids["alice"] = s.id
        s.interrupt("terminal closed")
        yield mgr, sids


def test_finds_every_kind_ranked_with_snippets(
    history: tuple[SessionManager, dict[str, str]],
) -> None:
    mgr, sids = history
    found = mgr.search("sms").to_wire()["results"]
    assert {r["sessionId"] for r in found} == {sids["alice"]}
    # The message saying SMS four times ranks above those saying it once.
    assert found[0]["snippet"].count("[SMS]") == 4
    assert [r["score"] for r in found] == sorted((r["score"] for r in found), reverse=True)
    kinds = {mgr.search(q).hits[0].kind for q in ("provider", "hour before", "pricing", "Fridays")}
    assert kinds == {"decision", "task", "tool-call", "note"}
    (note,) = mgr.search("staging read-only").hits
    assert (note.session_id, note.kind, note.seq) == (sids["bob"], "note", 4)
    assert note.snippet == "the [staging] database is [read]-[only] on Fridays"


def test_user_limit_and_words_every_one_of_which_must_match(
    history: tuple[SessionManager, dict[str, str]],
) -> None:
    mgr, sids = history
    assert {h.session_id for h in mgr.search("bookings").hits} == set(sids.values())
    assert {h.session_id for h in mgr.search("bookings", user="bob").hits} == {sids["bob"]}
    assert len(mgr.search("sms", limit=2).hits) == 2
    # Both words: only the message that holds both.
    (both,) = mgr.search("bookings PostgreSQL").hits
    assert both.session_id == sids["bob"]
    # No event holds both: events holding either are returned rather than nothing.
    assert {h.kind for h in mgr.search("Twilio Fridays").hits} == {"decision", "tool-call", "note"}


def test_the_index_follows_the_journals_and_reads_only_what_moved(
    tmp_path: Path, url: str, history: tuple[SessionManager, dict[str, str]]
) -> None:
    mgr, _sids = history
    assert mgr.search("voicemail").hits == []
    # Another process (another manager, another store handle) appends.
    with manager(tmp_path, url, "carol") as other:
        s = other.start(task="TASK-3", auto_save=False)
        s.add_message("user", "fall back to voicemail when SMS fails")
        s.end()
    assert [h.session_id for h in mgr.search("voicemail").hits] == [s.id]
    reads: list[str] = []
    original = mgr.store.read_events

    def counted(session_id: str, after_seq: int = 0) -> Any:
        reads.append(session_id)
        return original(session_id, after_seq)

    mgr.store.read_events = counted  # type: ignore[method-assign]
    assert len(mgr.search("voicemail").hits) == 1
    assert reads == []  # nothing moved: no journal is read
    with manager(tmp_path, url) as again:
        live = again.start(task="TASK-4", auto_save=False)
        live.note("voicemail greeting recorded")
        live.end()
    assert len(mgr.search("voicemail").hits) == 2
    assert reads == [live.id]  # only the journal that moved, after what was indexed


@pytest.mark.parametrize("url", ["postgres"], indirect=True)
def test_a_postgresql_store_tells_which_journals_moved_in_one_query(
    tmp_path: Path, url: str, history: tuple[SessionManager, dict[str, str]]
) -> None:
    # The store's journal_heads(): without it every search reads every journal.
    test_the_index_follows_the_journals_and_reads_only_what_moved(tmp_path, url, history)


def test_redacted_text_stays_redacted_in_the_index(tmp_path: Path, url: str) -> None:
    with manager(tmp_path, url) as mgr:
        s = mgr.start(auto_save=False)
        s.add_message("user", "deploy with key AKIAIOSFODNN7EXAMPLE please")
        s.end()
        assert mgr.search("AKIAIOSFODNN7EXAMPLE").hits == []
        (hit,) = mgr.search("deploy").hits
        assert "AKIAIOSFODNN7EXAMPLE" not in hit.snippet
        assert "REDACTED" in hit.snippet


def test_a_damaged_index_is_rebuilt_and_the_journals_are_untouched(
    tmp_path: Path, url: str, history: tuple[SessionManager, dict[str, str]]
) -> None:
    mgr, sids = history
    before = [h.to_wire() for h in mgr.search("reminders").hits]
    events = [e.to_wire() for e in mgr.events(sids["alice"])]
    index = (
        tmp_path / "tracking" / "search" / "index.sqlite"
        if url.startswith("files:")
        else tmp_path / "s.db.search"
    )
    assert index.is_file()
    index.write_bytes(b"this is not an SQLite database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    assert [h.to_wire() for h in mgr.search("reminders").hits] == before
    assert [e.to_wire() for e in mgr.events(sids["alice"])] == events
    assert mgr.verify()["ok"]
    # A rebuild on request, then `verify --repair`, rebuild it the same.
    assert mgr.search("", rebuild=True).rebuilt == 9  # 7 recorded, 2 tasks started with
    repaired = mgr.verify(repair=True)
    assert any("search index rebuilt" in line for line in repaired["repaired"])
    assert [h.to_wire() for h in mgr.search("reminders").hits] == before


def test_the_memory_store_searches_too(tmp_path: Path) -> None:
    with manager(tmp_path, "memory:") as mgr:
        s = mgr.start(auto_save=False)
        s.decide("cache the pricing table for an hour")
        assert [h.kind for h in mgr.search("pricing").hits] == ["decision"]
        s.note("pricing changes on Mondays")
        assert sorted(h.kind for h in mgr.search("pricing").hits) == ["decision", "note"]


@pytest.mark.parametrize("kind", STORES)
def test_the_command_line(tmp_path: Path, kind: str) -> None:
    root = git_project(tmp_path / "project")
    url = store_url(kind, tmp_path)
    for args in (
        ("start", "--task", "TASK-1"),
        ("message", "--role", "user", "Add SMS reminders to bookings"),
        ("update", "--decision", "Twilio is the SMS provider"),
    ):
        done = cli(root, url, *args)
        assert done.returncode == 0, done.stderr
    shown = cli(root, url, "search", "twilio", "--json")
    assert shown.returncode == 0, shown.stderr
    (result,) = json.loads(shown.stdout)["results"]
    assert set(result) == {"sessionId", "seq", "kind", "snippet", "score"}
    assert (result["seq"], result["kind"]) == (4, "decision")
    assert result["snippet"] == "[Twilio] is the SMS provider"
    text = cli(root, url, "search", "sms", "--limit", "1")
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[1].strip().count("[SMS]") == 1
    assert text.stdout.startswith(result["sessionId"])
    rebuilt = cli(root, url, "search", "--rebuild", "--json")
    assert json.loads(rebuilt.stdout)["rebuilt"] == 3  # the task, the message, the decision
    empty = cli(root, url, "search", "?!", "--json")
    assert empty.returncode == 1
    assert json.loads(empty.stdout)["error"]["code"] == "invalid-input"
    bad = cli(root, url, "search", "sms", "--limit", "0")
    assert bad.returncode == 1 and "--limit" in bad.stderr


def test_searching_a_folder_without_a_store_creates_none(tmp_path: Path) -> None:
    root = git_project(tmp_path / "project")
    done = cli(root, f"files:{tmp_path / 'nothing'}", "search", "sms", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"] == []
    assert not (tmp_path / "nothing").exists()


def test_messages_of_a_session_still_active_are_found_as_they_come(
    tmp_path: Path, url: str
) -> None:
    # A message rewrites no registry entry: the index must notice the journal grew anyway.
    with manager(tmp_path, url) as mgr:
        live = mgr.start(auto_save=False)
        live.add_message("user", "the quarterly invoice run")
        assert len(mgr.search("invoice").hits) == 1
        for n in range(3):
            live.add_message("assistant", f"invoice draft {n}")
            assert len(mgr.search("invoice").hits) == n + 2
        with manager(tmp_path, url) as other:  # another handle sees them too
            assert len(other.search("invoice draft").hits) == 3
        live.end()
