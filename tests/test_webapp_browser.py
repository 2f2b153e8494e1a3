"""The web app in a real browser: a research session, a browser crash, and the resume question.

Each test drives Debian's Chromium (a process group of its own, launched with a
remote-debugging port on 127.0.0.1 and a profile folder kept across the crash)
through Playwright's ``connect_over_cdp``, against a real ``continuity serve``
on a free loopback port (stopped by pid). The crash is ``SIGKILL`` of the whole
browser: no unload handler, no last request. The browser lease is 5 s here, so
the wait for the lease is seconds, not the default 30.

The server that asks uses ``auto-resume-threshold = 1.0`` and a 36 s half-life:
any crash older than an instant scores below 1 and well above the prompt
threshold, so the question is asked whatever the machine's speed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from browser_support import Chromium, ensure_chromium
from service_support import Served

pytestmark = pytest.mark.slow
expect.set_options(timeout=20_000)  # 2 cores shared with other suites

LEASE_TTL = "5"
ASKING = "[recovery]\nauto-resume-threshold = 1.0\nhalf-life-hours = 0.01\n"
# Below any prompt threshold: a crash starts a new session (the old one archived).
ARCHIVING = ASKING + "prompt-threshold = 1.0\n"
QUESTION = "Would you like to resume your previous session?"


@pytest.fixture(scope="module")
def pw() -> Iterator[Playwright]:
    ensure_chromium()
    with sync_playwright() as playwright:
        yield playwright


def _serve(root: Path, config: str = "") -> Iterator[Served]:
    root.mkdir(parents=True)
    if config:
        (root / "continuity.toml").write_text(config)
    served = Served(root, env={"CONTINUITY_BROWSER_LEASE_TTL": LEASE_TTL})
    served.start()
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture(scope="module")
def asking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server whose thresholds ask the seed's question after a crash."""
    yield from _serve(tmp_path_factory.mktemp("asking") / "project", ASKING)


@pytest.fixture(scope="module")
def default(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server with the default thresholds (a fresh crash resumes by itself)."""
    yield from _serve(tmp_path_factory.mktemp("default") / "project")


@pytest.fixture(scope="module")
def archiving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server whose thresholds never resume a crashed session."""
    yield from _serve(tmp_path_factory.mktemp("archiving") / "project", ARCHIVING)


# -- helpers --------------------------------------------------------------


def connect(pw: Playwright, chromium: Chromium) -> Browser:
    return pw.chromium.connect_over_cdp(chromium.launch())


# Uncaught JavaScript errors of every page the tests open; each test ends with none.
SCRIPT_ERRORS: list[str] = []


@pytest.fixture(autouse=True)
def no_script_errors() -> Iterator[None]:
    SCRIPT_ERRORS.clear()
    yield
    assert SCRIPT_ERRORS == []


def watch(page: Page) -> Page:
    page.on("pageerror", lambda error: SCRIPT_ERRORS.append(f"{page.url}: {error}"))
    page.set_default_timeout(30_000)
    return page


def first_page(browser: Browser) -> Page:
    context = browser.contexts[0]
    return watch(context.pages[0] if context.pages else context.new_page())


def log_in(page: Page, served: Served, token: str) -> None:
    page.goto(f"{served.url}/login?token={token}")


def api(served: Served, token: str, path: str) -> Any:
    with served.client(token) as client:
        answer = client.get(path)
    if answer.status_code == 204:
        return None
    assert answer.status_code == 200, answer.text
    return answer.json()


def session_id(page: Page) -> str:
    expect(page.get_by_test_id("session-id")).to_have_text(re.compile(r"^SESSION-\d{6}-\d{3}$"))
    return page.get_by_test_id("session-id").inner_text()


def say(page: Page, text: str) -> None:
    """Type a message and press Enter; wait for the assistant's reply."""
    replies = page.locator("li.message.assistant:not(.thinking)")
    before = replies.count()
    page.fill("#composer-input", text)
    page.press("#composer-input", "Enter")
    expect(replies).to_have_count(before + 1)
    expect(page.locator("#composer-input")).to_be_focused()


def add_task(page: Page, title: str) -> None:
    page.fill("#new-task", title)
    page.press("#new-task", "Enter")
    expect(page.locator(f"li.task[data-task='{title}']")).to_be_visible()


def workspace_state(page: Page) -> dict[str, Any]:
    """What the user sees: the conversation, the tasks, the decisions, the notes."""
    return {
        "messages": [
            (li.get_attribute("data-role"), li.inner_text().split("\n", 1)[1])
            for li in page.locator("#messages li.message").all()
        ],
        "tasks": [
            (li.get_attribute("data-task"), li.get_attribute("data-status"))
            for li in page.locator("#tasks li.task").all()
        ],
        "decisions": page.locator("#decisions li.decision").all_inner_texts(),
        "notes": page.input_value("#notes"),
    }


def wait_for(predicate: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def research_then_crash(
    pw: Playwright, served: Served, token: str, profile: Path
) -> tuple[str, dict[str, Any]]:
    """Log in, research (messages, tasks, a decision, notes), then SIGKILL the browser.

    Returns:
        The session id and what the workspace showed just before the crash.
    """
    with Chromium(profile) as chromium:
        page = first_page(connect(pw, chromium))
        log_in(page, served, token)
        sid = session_id(page)
        say(page, "Find papers on crash recovery for LLM agents")
        add_task(page, "Survey checkpointing literature")
        add_task(page, "Compare journal designs")
        page.select_option(
            "#tasks li.task[data-task='Survey checkpointing literature'] select", "in-progress"
        )
        expect(
            page.locator("li.task[data-task='Survey checkpointing literature']")
        ).to_have_attribute("data-status", "in-progress")
        page.fill("#new-decision", "Focus on write-ahead journals")
        page.press("#new-decision", "Enter")
        expect(page.locator("#decisions li.decision")).to_have_count(1)
        say(page, "Start with ARIES and SQLite's WAL")
        page.fill("#notes", "Sources: ARIES (1992), SQLite WAL docs")
        page.locator("#notes").blur()
        wait_for(
            lambda: (
                api(served, token, f"/api/sessions/{sid}")["session"]["context"][
                    "conversationSummary"
                ]
                == "Sources: ARIES (1992), SQLite WAL docs"
            ),
            "the notes to be saved",
        )
        before = workspace_state(page)
        chromium.kill()  # the crash: every browser process, no unload, no beacon
    return sid, before


def wait_for_lease(served: Served, token: str, sid: str) -> dict[str, Any]:
    """Wait until the stopped heartbeats interrupt the session (the browser lease ran out)."""

    def interrupted() -> dict[str, Any] | None:
        record: dict[str, Any] = api(served, token, f"/api/sessions/{sid}")["session"]
        return record if record["status"] == "interrupted" else None

    record: dict[str, Any] = wait_for(interrupted, "the browser lease to run out")
    assert record["interruption"]["cause"] == "heartbeat-lost"
    return record


@contextmanager
def back_after_a_crash(
    pw: Playwright, served: Served, token: str, tmp_path: Path
) -> Iterator[tuple[Page, str, dict[str, Any]]]:
    """The user researches, the browser crashes, the lease runs out, the user comes back.

    Yields:
        The logged-in page of the relaunched browser (same profile), the crashed
        session's id and what its workspace showed just before the crash.
    """
    profile = tmp_path / "profile"
    sid, before = research_then_crash(pw, served, token, profile)
    wait_for_lease(served, token, sid)
    with Chromium(profile) as chromium:
        page = first_page(connect(pw, chromium))
        log_in(page, served, token)
        yield page, sid, before


def see_the_question(page: Page, sid: str) -> None:
    dialog = page.locator("#resume-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading", level=2)).to_have_text(QUESTION)
    summary = page.locator("#resume-summary")
    expect(summary).to_contain_text(sid)
    expect(summary).to_contain_text("heartbeat-lost")
    expect(summary).to_contain_text("Survey checkpointing literature")
    expect(page.get_by_test_id("confidence")).to_contain_text("Confidence")
    expect(page.locator("#resume-confidence .reasons li")).to_have_count(4)
    expect(page.locator("#resume-accept")).to_be_focused()


# -- the seed's use case --------------------------------------------------


def test_after_a_crash_accepting_restores_the_conversation_and_tasks(
    pw: Playwright, asking: Served, tmp_path: Path
) -> None:
    token = asking.add_user("ada")
    with back_after_a_crash(pw, asking, token, tmp_path) as (page, sid, before):
        assert len(before["messages"]) == 4 and len(before["tasks"]) == 2
        see_the_question(page, sid)
        page.keyboard.press("Enter")  # the focused choice: resume
        expect(page.locator("#resume-dialog")).to_be_hidden()
        expect(page.get_by_test_id("notice-recovered")).to_contain_text("back where you left it")
        assert session_id(page) == sid
        expect(page.locator("#messages li.message")).to_have_count(len(before["messages"]))
        assert workspace_state(page) == before
        assert api(asking, token, f"/api/sessions/{sid}")["session"]["status"] == "active"
        say(page, "Where were we?")  # the page holds the session again and writes to it
        time.sleep(float(LEASE_TTL) + 1)  # its heartbeats keep it alive past a lease
        assert api(asking, token, f"/api/sessions/{sid}")["session"]["status"] == "active"
        conversation = api(asking, token, f"/api/sessions/{sid}")["conversation"]
        assert [m["text"] for m in conversation][:4] == [text for _, text in before["messages"]]


def test_after_a_crash_declining_archives_it_and_starts_afresh(
    pw: Playwright, asking: Served, tmp_path: Path
) -> None:
    token = asking.add_user("grace")
    with back_after_a_crash(pw, asking, token, tmp_path) as (page, sid, _):
        see_the_question(page, sid)
        page.click("#resume-decline")
        expect(page.get_by_test_id("notice-recovered")).to_contain_text("archived")
        fresh = session_id(page)
        assert fresh != sid
        expect(page.locator("#no-messages")).to_be_visible()
        assert workspace_state(page) == {"messages": [], "tasks": [], "decisions": [], "notes": ""}
        assert api(asking, token, f"/api/sessions/{sid}")["session"]["status"] == "archived"
        assert api(asking, token, f"/api/sessions/{fresh}")["session"]["status"] == "active"
        assert api(asking, token, "/api/recovery") is None  # nothing left to ask about

        page.click("a[data-nav='sessions']")
        row = page.locator(f"tr[data-session='{sid}']")
        expect(row).to_contain_text("archived")
        expect(page.locator(f"tr[data-session='{fresh}']")).to_contain_text("active")
        log = page.get_by_test_id("recovery-log")
        expect(log).to_contain_text("heartbeat-lost")
        expect(log).to_contain_text("answered: start afresh")
        row.get_by_role("link").click()
        expect(page.locator("h1")).to_have_text(sid)
        expect(page.locator("main")).to_contain_text("Find papers on crash recovery")


def test_two_users_never_see_each_others_sessions(
    pw: Playwright, default: Served, tmp_path: Path
) -> None:
    tokens = {name: default.add_user(name) for name in ("alice", "bob")}
    with Chromium(tmp_path / "profile") as chromium:
        browser = connect(pw, chromium)
        pages, sids = {}, {}
        for name, token in tokens.items():
            context = browser.new_context()  # its own cookies: two people, one machine
            page = watch(context.new_page())
            log_in(page, default, token)
            sids[name] = session_id(page)
            say(page, f"{name}'s private research question")
            pages[name] = page
        for name, other in (("alice", "bob"), ("bob", "alice")):
            page = pages[name]
            page.goto(f"{default.url}/#/sessions")
            expect(page.locator("tr[data-session]")).to_have_count(1)
            expect(page.locator(f"tr[data-session='{sids[name]}']")).to_be_visible()
            page.goto(f"{default.url}/#/sessions/{sids[other]}")
            expect(page.locator("h1")).to_have_text("Session not found")
            expect(page.locator("main")).not_to_contain_text(f"{other}'s private")
            answer = page.request.get(f"{default.url}/api/sessions/{sids[other]}")
            assert answer.status == 404
            assert sids[other] not in page.request.get(f"{default.url}/api/sessions").text()


def test_a_crash_with_high_confidence_resumes_by_itself_with_a_notice(
    pw: Playwright, default: Served, tmp_path: Path
) -> None:
    token = default.add_user("hopper")
    with back_after_a_crash(pw, default, token, tmp_path) as (page, sid, before):
        expect(page.get_by_test_id("notice-recovered")).to_contain_text(
            "Session resumed automatically"
        )
        expect(page.locator("#resume-dialog")).to_be_hidden()
        assert session_id(page) == sid
        expect(page.locator("#messages li.message")).to_have_count(len(before["messages"]))
        assert workspace_state(page) == before


def test_a_crash_with_low_confidence_starts_a_new_session_and_says_why(
    pw: Playwright, archiving: Served, tmp_path: Path
) -> None:
    token = archiving.add_user("franklin")
    with back_after_a_crash(pw, archiving, token, tmp_path) as (page, sid, _):
        notice = page.get_by_test_id("notice-recovered")
        expect(notice).to_contain_text("Started a new session")
        expect(notice).to_contain_text(f"{sid}) could not be resumed")
        expect(page.locator("#resume-dialog")).to_be_hidden()
        assert session_id(page) != sid
        expect(page.locator("#no-messages")).to_be_visible()
        assert api(archiving, token, f"/api/sessions/{sid}")["session"]["status"] == "archived"


def test_a_reload_keeps_the_session_and_closing_the_tab_is_not_a_crash(
    pw: Playwright, default: Served, tmp_path: Path
) -> None:
    token = default.add_user("lovelace")
    with Chromium(tmp_path / "profile") as chromium:
        browser = connect(pw, chromium)
        page = first_page(browser)
        log_in(page, default, token)
        sid = session_id(page)
        say(page, "A thought worth keeping")
        page.reload()  # the old page asks for a deferred end; the new one claims the session
        assert session_id(page) == sid
        expect(page.locator("#messages li.message")).to_have_count(2)
        assert workspace_state(page)["messages"][0] == ("user", "A thought worth keeping")
        expect(page.get_by_test_id("notice-recovered")).to_have_count(0)
        # Not a recovery: the session went on, and the recovery log says nothing about it.
        assert api(default, token, f"/api/sessions/{sid}")["session"]["status"] == "active"
        logged = api(default, token, "/api/recovery/log")["entries"]
        assert [e for e in logged if e.get("sessionId") == sid] == []
        say(page, "Still the same session")
        closed = time.monotonic()
        page.close()  # a normal close: completed once nobody claims it within the grace
        wait_for(
            lambda: api(default, token, f"/api/sessions/{sid}")["session"]["status"] == "completed",
            "the closed tab to end its session",
        )
        # Past the lease too: a closed tab never turns into a crash.
        time.sleep(max(0.0, closed + float(LEASE_TTL) + 1 - time.monotonic()))
        assert api(default, token, "/api/recovery") is None  # nothing to resume: not a crash
        logged = api(default, token, "/api/recovery/log")["entries"]
        assert [e for e in logged if e.get("sessionId") == sid] == []
        page = watch(browser.contexts[0].new_page())
        page.goto(default.url + "/")
        assert session_id(page) != sid
        expect(page.locator("#resume-dialog")).to_be_hidden()
        expect(page.get_by_test_id("notice-recovered")).to_have_count(0)


def test_the_page_loads_nothing_from_the_network_and_works_on_a_narrow_window(
    pw: Playwright, default: Served, tmp_path: Path
) -> None:
    token = default.add_user("hamilton")
    with Chromium(tmp_path / "profile", width=380, height=800) as chromium:
        page = first_page(connect(pw, chromium))
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        log_in(page, default, token)
        session_id(page)
        say(page, "Narrow screens too")
        add_task(page, "Read on the train")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= page.evaluate("window.innerWidth")  # no sideways scrolling
        outside = [url for url in requested if not url.startswith((default.url, "data:"))]
        assert outside == []
        # Keyboard: from the composer, Tab reaches the send button, with a visible focus ring.
        page.focus("#composer-input")
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.textContent")
        assert focused == "Send"
        ring = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert ring == "solid"
        for control in page.locator("input, textarea, select").all():
            assert control.evaluate(
                "el => !!(el.labels && el.labels.length) || !!el.getAttribute('aria-label')"
            ), control.evaluate("el => el.outerHTML")


def test_without_the_login_cookie_the_page_asks_for_the_token(
    pw: Playwright, default: Served, tmp_path: Path
) -> None:
    token = default.add_user("noether")
    with Chromium(tmp_path / "profile") as chromium:
        page = first_page(connect(pw, chromium))
        page.goto(default.url + "/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        expect(page.locator("#token")).to_be_focused()
        page.keyboard.type(token)
        page.keyboard.press("Enter")
        session_id(page)
        expect(page.get_by_test_id("user")).to_have_text("Signed in as noether")


def test_the_dashboard_shows_the_users_figures_and_searches_only_their_words(
    pw: Playwright, default: Served, tmp_path: Path
) -> None:
    tokens = {name: default.add_user(name) for name in ("curie", "meitner")}
    with Chromium(tmp_path / "profile") as chromium:
        browser = connect(pw, chromium)
        theirs = watch(browser.new_context().new_page())
        log_in(theirs, default, tokens["meitner"])
        session_id(theirs)
        say(theirs, "meitner keeps the zanzibar fission notes")
        page = watch(browser.new_context().new_page())
        log_in(page, default, tokens["curie"])
        sid = session_id(page)
        say(page, "Measure the quasar lighthouse spectrum")

        page.click("a[data-nav='dashboard']")
        expect(page.locator("a[data-nav='dashboard']")).to_have_attribute("aria-current", "page")
        expect(page.locator("#search-input")).to_be_focused()
        figures = api(default, tokens["curie"], "/api/analytics")
        chart = page.get_by_test_id("chart-sessions")
        for status in ("active", "completed", "interrupted", "archived"):
            bar = chart.locator(f"g[data-key='{status}']")
            expect(bar).to_have_attribute("data-value", str(figures["sessions"][status]))
        assert figures["sessions"]["total"] == 1
        summary = page.get_by_test_id("analytics-summary")
        expect(summary).to_contain_text("You have 1 session: 1 active")
        page.set_viewport_size({"width": 380, "height": 800})  # a phone: no sideways scrolling
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.set_viewport_size({"width": 1280, "height": 860})

        # The keyboard alone: type, Enter; the results say how many, the words marked.
        page.keyboard.type("quasar spectrum")
        page.keyboard.press("Enter")
        expect(page.locator("#search-status")).to_contain_text("for “quasar spectrum”, best first")
        hits = page.locator("li.search-hit")
        # The user's message (the assistant's reply may quote it too), its words marked.
        typed = hits.filter(
            has=page.locator(
                ".snippet", has_text=re.compile("^Measure the quasar lighthouse spectrum$")
            )
        )
        expect(typed.locator("mark")).to_have_text(["quasar", "spectrum"])
        expect(typed).to_contain_text("message")
        assert {hit.get_attribute("data-session") for hit in hits.all()} == {sid}
        assert "q=quasar%20spectrum" in page.url  # in the address: back and reload keep it

        # Another user's words are never found, through the page or the API.
        page.fill("#search-input", "zanzibar fission")
        page.press("#search-input", "Enter")
        expect(page.locator("#search-status")).to_contain_text("No results for “zanzibar fission”")
        expect(page.locator("li.search-hit")).to_have_count(0)
        leaked = page.request.get(f"{default.url}/api/search?q=zanzibar").json()
        assert leaked["results"] == []
        for control in page.locator("input, textarea, select").all():
            assert control.evaluate(
                "el => !!(el.labels && el.labels.length) || !!el.getAttribute('aria-label')"
            ), control.evaluate("el => el.outerHTML")

        # From the search box, Tab reaches the button, then the result's link: Enter opens it.
        page.fill("#search-input", "lighthouse")
        page.press("#search-input", "Enter")
        expect(page.locator("#search-status")).to_contain_text("for “lighthouse”")
        page.focus("#search-input")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Search"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == sid
        page.keyboard.press("Enter")
        expect(page.locator("h1")).to_have_text(sid)
        expect(page.locator("main")).to_contain_text("Measure the quasar lighthouse spectrum")
