"""The README's screenshots of the web app, taken with real Chromium (``make screenshots``).

Runs ``continuity serve`` on a free loopback port in a throw-away project,
does a short research session in Debian's Chromium (the same harness as the
browser tests: ``tests/browser_support.py``), SIGKILLs the browser, waits for
the browser lease to run out, relaunches it and photographs the resume
question; then accepts and photographs the restored workspace, the sessions
page, the dashboard (analytics and a search) and the workspace on a narrow
window. Writes PNGs to ``docs/screenshots/``.

    python scripts/screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the browser and server harness of the test suite

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from browser_support import Chromium, ensure_chromium  # noqa: E402
from service_support import Served  # noqa: E402

LEASE_TTL = "3"
# Ask after any crash (the default thresholds would resume a fresh one by itself).
ASKING = "[recovery]\nauto-resume-threshold = 1.0\nhalf-life-hours = 0.05\n"


def research(page: Page) -> None:
    """A short research session: messages, tasks in several states, decisions, notes."""
    for text in (
        "I'm comparing how databases and agent frameworks survive a crash. Where should I start?",
        "Let's begin with write-ahead logging: ARIES, then SQLite's WAL mode.",
    ):
        replies = page.locator("li.message.assistant:not(.thinking)")
        before = replies.count()
        page.fill("#composer-input", text)
        page.press("#composer-input", "Enter")
        expect(replies).to_have_count(before + 1)
    for title in ("Read the ARIES paper", "Summarise SQLite WAL", "Compare agent checkpointers"):
        page.fill("#new-task", title)
        page.press("#new-task", "Enter")
        expect(page.locator(f"li.task[data-task='{title}']")).to_be_visible()
    page.select_option("li.task[data-task='Read the ARIES paper'] select", "done")
    page.select_option("li.task[data-task='Summarise SQLite WAL'] select", "in-progress")
    expect(page.locator("li.task[data-task='Summarise SQLite WAL']")).to_have_attribute(
        "data-status", "in-progress"
    )
    for decision in ("Journal first, snapshots second", "Use SQLite for the experiments"):
        count = page.locator("#decisions li.decision").count()
        page.fill("#new-decision", decision)
        page.press("#new-decision", "Enter")
        expect(page.locator("#decisions li.decision")).to_have_count(count + 1)
    page.fill("#notes", "ARIES: redo then undo; LSNs on every page.\nWAL: readers never block.")
    page.locator("#composer-input").focus()
    expect(page.locator("#save-state")).to_contain_text("All changes saved")


def main() -> None:
    """Take the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    ensure_chromium()
    expect.set_options(timeout=30_000)
    with tempfile.TemporaryDirectory(prefix="continuity-shots-") as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        (project / "continuity.toml").write_text(ASKING)
        served = Served(project, env={"CONTINUITY_BROWSER_LEASE_TTL": LEASE_TTL}).start()
        try:
            token = served.add_user("ada")
            profile = Path(tmp) / "profile"
            with sync_playwright() as pw, Chromium(profile, width=1280, height=800) as first:
                page = pw.chromium.connect_over_cdp(first.launch()).contexts[0].pages[0]
                page.goto(f"{served.url}/login?token={token}")
                research(page)
                page.screenshot(path=str(args.out / "workspace.png"), full_page=True)
                first.kill()  # the crash
                time.sleep(float(LEASE_TTL) + 2)  # the lease runs out: heartbeat-lost
                with Chromium(profile, width=1280, height=800) as second:
                    page = pw.chromium.connect_over_cdp(second.launch()).contexts[0].pages[0]
                    page.goto(f"{served.url}/login?token={token}")
                    expect(page.locator("#resume-dialog")).to_be_visible()
                    page.screenshot(path=str(args.out / "resume-prompt.png"))
                    page.click("#resume-accept")
                    expect(page.get_by_test_id("notice-recovered")).to_be_visible()
                    page.goto(f"{served.url}/#/sessions")
                    expect(page.get_by_test_id("recovery-log")).to_contain_text("Recovery")
                    page.screenshot(path=str(args.out / "sessions.png"))
                    # The dashboard: the figures of the session above, and a search of it.
                    page.goto(f"{served.url}/#/dashboard?q=write-ahead%20logging")
                    expect(page.get_by_test_id("chart-sessions")).to_be_visible()
                    expect(page.locator("li.search-hit").first).to_be_visible()
                    page.screenshot(path=str(args.out / "dashboard.png"), full_page=True)
                    page.set_viewport_size({"width": 390, "height": 844})
                    page.goto(f"{served.url}/#/")
                    expect(page.locator("#messages li.message")).to_have_count(4)
                    page.evaluate("window.scrollTo(0, 0)")
                    page.screenshot(path=str(args.out / "workspace-narrow.png"))
        finally:
            served.stop()
    for name in sorted(args.out.glob("*.png")):
        shown = name.relative_to(ROOT) if name.is_relative_to(ROOT) else name
        print(f"{shown}  {name.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
