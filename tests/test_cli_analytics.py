"""``continuity analytics`` as a user runs it, on the files, SQLite and PostgreSQL stores."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from cli_support import cli, git_project
from postgres_support import server
from test_cli_no_store import STORES, empty, run  # noqa: F401  (empty is a fixture)


@pytest.fixture(params=["files", "sqlite", "postgres"])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    """A project whose store has a known history.

    alice: a session saves, says two more things and is interrupted by SIGTERM,
    then is recovered with --yes and ended. bob: a session dies of an exception
    and is declined with --no (archived; a new session starts for him).
    """
    root = git_project(tmp_path / "project")
    url = f"files:{tmp_path / 'tracking'}" if request.param == "files" else "sqlite:///s.db"
    if request.param == "postgres":
        url = server().new_database()

    def ok(*args: str, user: str = "alice") -> None:
        result = cli(root, url, *args, user=user)
        assert result.returncode == 0, result.stderr

    ok("start", "--task", "TASK-1")
    ok("message", "--role", "user", "add SMS reminders")
    ok("save")
    ok("message", "--role", "user", "use Twilio")
    ok("message", "--role", "assistant", "on it")
    ok("interrupt", "--cause", "signal: SIGTERM")
    ok("recover", "--yes")
    ok("end")
    ok("start", user="bob")
    ok("interrupt", "--cause", "exception: ValueError: bad input", user="bob")
    ok("recover", "--no", user="bob")
    return root, url


def analytics_json(root: Path, url: str, *args: str) -> dict[str, Any]:
    result = cli(root, url, "analytics", *args, "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_json_counts_the_history(project: tuple[Path, str]) -> None:
    data = analytics_json(*project)

    assert data["sessions"] == {
        "total": 3,
        "active": 1,
        "completed": 1,
        "interrupted": 0,
        "archived": 1,
    }
    assert data["interruptionsByCause"] == {"signal": 1, "exception": 1}
    assert data["recoveries"]["total"] == 2
    assert sum(data["recoveries"]["byDecision"].values()) == 2
    assert data["recoveries"]["byOutcome"] == {"restored": 1, "new-session": 1}
    assert data["timeToRecovery"]["count"] == 2
    assert data["timeToRecovery"]["medianSeconds"] >= 0
    # Two messages after alice's save, bob's session event before any point.
    assert data["workAtRisk"]["totalEvents"] == 3
    [today] = data["timeline"]
    assert (today["started"], today["completed"], today["interrupted"]) == (3, 1, 2)


def test_user_and_since_filter(project: tuple[Path, str]) -> None:
    bob = analytics_json(*project, "--user", "bob")
    assert bob["sessions"]["total"] == 2
    assert bob["interruptionsByCause"] == {"exception": 1}
    assert bob["recoveries"]["byOutcome"] == {"new-session": 1}

    future = analytics_json(*project, "--since", "2999-01-01")
    assert future["sessions"]["total"] == 0
    assert future["interruptionsByCause"] == {} and future["recoveries"]["total"] == 0

    bad = cli(*project, "analytics", "--since", "someday", "--json")
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["error"]["code"] == "invalid-input"


def test_the_table_and_the_charts(project: tuple[Path, str]) -> None:
    root, url = project
    table = cli(root, url, "analytics", "--chart", "out/chart.svg")
    assert table.returncode == 0, table.stderr
    for words in (
        "sessions:",
        "interruptions by cause:",
        "signal",
        "exception",
        "recoveries: 2",
        "restored",
        "time to recovery: median",
        "work at risk: 3",
    ):
        assert words in table.stdout

    svg = ET.parse(root / "out" / "chart.svg").getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    titles = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}title")]
    assert "signal: 1" in titles and "exception: 1" in titles

    png = cli(root, url, "analytics", "--chart", "chart.png", "--json")
    assert png.returncode == 0, png.stderr
    assert json.loads(png.stdout)["sessions"]["total"] == 3
    assert (root / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    wrong = cli(root, url, "analytics", "--chart", "chart.gif")
    assert wrong.returncode == 1 and ".svg or .png" in wrong.stderr
    assert not (root / "chart.gif").exists()


@pytest.mark.parametrize("store", STORES)
def test_without_a_store_it_says_so_and_creates_nothing(empty: Path, store: str | None) -> None:  # noqa: F811
    as_json = run(empty, store, "analytics", "--json")
    as_text = run(empty, store, "analytics")

    assert list(empty.iterdir()) == []
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["sessions"]["total"] == 0 and "no store" in data["noStore"]
    assert as_text.returncode == 0 and "no store" in as_text.stdout


def test_a_postgresql_database_without_a_store_says_so_and_gets_none(empty: Path) -> None:  # noqa: F811
    url = server().new_database(empty=True)
    as_json = run(empty, url, "analytics", "--json")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["sessions"]["total"] == 0 and "no store" in data["noStore"]
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('continuity_schema')").fetchone() == (None,)
