"""Session analytics through the public API, on every store: counts after a known history."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent_continuity import SessionManager
from agent_continuity.analytics import cause_category, compute, parse_since
from agent_continuity.errors import ChartUnavailable, InvalidInput
from agent_continuity.model import SessionRecord
from agent_continuity.storage.memory import MemoryStore

START = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(params=["memory", "files", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "memory":
        return MemoryStore()  # one object: every manager below shares it
    if request.param == "files":
        return f"files:{tmp_path / 'tracking'}"
    if request.param == "postgres":
        from postgres_support import server

        return server().new_database()
    return f"sqlite:///{tmp_path}/s.db"


def manager(store: Any, root: Path, clock: Clock, user: str) -> SessionManager:
    return SessionManager(store=store, project_dir=root, user_id=user, clock=clock, observer=False)


def history(store: Any, root: Path) -> dict[str, Any]:
    """A known history over ten days; returns what a reader should find.

    Day 0, alice: a session saves, does two more things, dies of SIGTERM; 10
    minutes later it is recovered and resumed, then ended. Day 10: alice
    completes a session; bob's session dies of an exception and is declined
    20 minutes later (archived, a new one started); alice's last session
    loses its heartbeat and stays interrupted.
    """
    clock = Clock()
    alice = manager(store, root, clock, "alice")
    bob = manager(store, root, clock, "bob")

    first = alice.start(type="task-execution", task="TASK-1", auto_save=False)
    first.add_message("user", "add SMS reminders")
    first.checkpoint()
    first.add_message("assistant", "on it")
    first.add_message("user", "use Twilio")
    first.interrupt("signal: SIGTERM")
    clock.advance(minutes=10)
    resumed = alice.recover(first.id, answer=True)
    alice.end(first.id)

    clock.advance(days=10)
    done = alice.start(auto_save=False)
    done.add_message("user", "quick question")
    done.end()

    dying = bob.start(auto_save=False)
    dying.interrupt("exception: ValueError: bad input")
    clock.advance(minutes=20)
    declined = bob.recover(dying.id, answer=False)

    lost = alice.start(auto_save=False)
    lost.add_message("user", "one")
    lost.add_message("user", "two")
    lost.add_message("user", "three")
    lost.interrupt("heartbeat-lost")
    clock.advance(minutes=1)
    for m in (alice, bob):
        m.close()
    return {
        "now": clock.now,
        "decisions": [resumed.decision, declined.decision],
        "new_session": declined.new_session_id,
    }


def test_counts_after_a_known_history(store: Any, tmp_path: Path) -> None:
    known = history(store, tmp_path)
    clock = Clock()
    clock.now = known["now"]

    data = manager(store, tmp_path, clock, "carol").analytics().to_wire()

    # Four sessions started by hand, and the one the declined recovery started.
    assert data["sessions"] == {
        "total": 5,
        "active": 1,
        "completed": 2,
        "interrupted": 1,
        "archived": 1,
    }
    assert data["interruptionsByCause"] == {"signal": 1, "exception": 1, "heartbeat-lost": 1}
    assert data["interruptionCauses"]["exception: ValueError: bad input"] == 1
    expected: dict[str, int] = {}
    for decision in known["decisions"]:
        expected[decision] = expected.get(decision, 0) + 1
    assert data["recoveries"]["total"] == 2
    assert data["recoveries"]["byDecision"] == expected
    assert data["recoveries"]["byOutcome"] == {"restored": 1, "new-session": 1}
    # 10 and 20 minutes from death to recovery.
    assert data["timeToRecovery"]["count"] == 2
    assert data["timeToRecovery"]["medianSeconds"] == 900
    assert data["timeToRecovery"]["p90Seconds"] == 1200
    assert sum(data["confidence"]["buckets"].values()) == 2
    # Ten days apart: counted by day; day 0 and day 10, nothing in between.
    assert data["granularity"] == "day"
    assert data["timeline"] == [
        {"period": "2026-11-21", "started": 1, "completed": 1, "interrupted": 1},
        {"period": "2026-12-01", "started": 4, "completed": 1, "interrupted": 2},
    ]
    # Events after the newest point at each death: two after alice's save,
    # bob's session event, and the last session's start and three messages.
    assert data["workAtRisk"]["interruptions"] == 3
    assert data["workAtRisk"]["maxEvents"] == 4
    assert data["workAtRisk"]["totalEvents"] == 2 + 1 + 4


def test_since_and_user_narrow_the_figures(store: Any, tmp_path: Path) -> None:
    known = history(store, tmp_path)
    clock = Clock()
    clock.now = known["now"]
    mgr = manager(store, tmp_path, clock, "carol")

    recent = mgr.analytics(since="2026-12-01").to_wire()
    assert recent["sessions"]["total"] == 4
    assert recent["interruptionsByCause"] == {"exception": 1, "heartbeat-lost": 1}
    assert recent["recoveries"]["byOutcome"] == {"new-session": 1}
    assert recent["timeToRecovery"]["medianSeconds"] == 1200
    assert [row["period"] for row in recent["timeline"]] == ["2026-12-01"]

    bobs = mgr.analytics(user="bob").to_wire()
    assert bobs["sessions"] == {
        "total": 2,  # his dead session, archived, and the one his "no" started
        "active": 1,
        "completed": 0,
        "interrupted": 0,
        "archived": 1,
    }
    assert bobs["interruptionsByCause"] == {"exception": 1}
    assert bobs["recoveries"]["total"] == 1

    nothing = mgr.analytics(since=known["now"] + timedelta(days=1)).to_wire()
    assert nothing["sessions"]["total"] == 0 and nothing["recoveries"]["total"] == 0
    assert nothing["timeToRecovery"]["medianSeconds"] is None


def test_the_chart_is_a_valid_svg_or_png(tmp_path: Path) -> None:
    store = MemoryStore()
    known = history(store, tmp_path)
    clock = Clock()
    clock.now = known["now"]
    result = manager(store, tmp_path, clock, "carol").analytics()

    svg = result.write_chart(tmp_path / "out" / "chart.svg")
    root = ET.parse(svg).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert "2026-12-01: 4 started" in titles and "heartbeat-lost: 1" in titles

    png = result.write_chart(tmp_path / "chart.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    with pytest.raises(InvalidInput, match=r"\.svg or \.png"):
        result.write_chart(tmp_path / "chart.txt")
    assert not (tmp_path / "chart.txt").exists()


def test_a_png_without_matplotlib_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = compute([], [], START)
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails

    with pytest.raises(ChartUnavailable, match=r"agent-continuity\[charts\].*\.svg"):
        result.write_chart(tmp_path / "chart.png")
    assert not (tmp_path / "chart.png").exists()


@pytest.mark.parametrize(
    ("cause", "category"),
    [
        ("exception: KeyError: 'x'", "exception"),
        ("signal: SIGTERM", "signal"),
        ("exit status 3", "command-exit"),
        ("lease-expired", "lease-expired"),
        ("lease-expired (journal missing)", "lease-expired"),
        ("heartbeat-lost", "heartbeat-lost"),
        ("exit-without-end", "exit-without-end"),
        ("context compaction", "compaction"),
        ("laptop closed", "other"),
    ],
)
def test_causes_are_counted_by_category(cause: str, category: str) -> None:
    assert cause_category(cause) == category


def test_since_accepts_dates_times_and_spans() -> None:
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    assert parse_since("2026-12-01", now) == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_since("2026-12-01T08:00:00Z", now) == datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("2w", now) == now - timedelta(days=14)
    with pytest.raises(InvalidInput, match="7d"):
        parse_since("last tuesday", now)


def test_a_long_range_is_counted_by_week() -> None:
    records = [
        SessionRecord(id=f"SESSION-2609{day:02d}-001", created=at, last_activity=at)
        for day, at in (
            (1, datetime(2026, 9, 1, tzinfo=UTC)),
            (3, datetime(2026, 9, 3, tzinfo=UTC)),
        )
    ]
    later = datetime(2026, 12, 6, tzinfo=UTC)
    records.append(SessionRecord(id="SESSION-261206-001", created=later, last_activity=later))

    result = compute(records, [], later)

    assert result.granularity == "week"
    # 1 and 3 September 2026 fall in the week of Monday 31 August.
    assert [(p.start.isoformat(), p.started) for p in result.periods] == [
        ("2026-08-31", 2),
        ("2026-11-30", 1),
    ]
