"""The recovery log a user sees (the web app's sessions page): theirs, and nobody else's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent_continuity import Config, SessionManager, UserSessions


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def view(url: str, user: str, clock: Clock, root: Path) -> UserSessions:
    config = Config(store=url, user=user, browser_lease_ttl=5)
    return UserSessions(
        SessionManager(
            store=url, project_dir=root, user_id=user, config=config, clock=clock, observer=False
        )
    )


def test_the_recovery_log_shows_the_users_interruptions_and_recoveries_only(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    clock = Clock()
    alice, bob = (view(url, name, clock, tmp_path) for name in ("alice", "bob"))
    mine = alice.start()["id"]
    theirs = bob.start()["id"]
    alice.message(mine, "user", "a thread")
    bob.message(theirs, "user", "another")
    clock.now += timedelta(seconds=6)  # both pages stopped beating
    alice.recover(mine, answer=True)

    entries = alice.recovery_log()["entries"]
    assert [(e["event"], e["sessionId"]) for e in entries] == [
        ("interruption", mine),
        ("recovery", mine),
    ]
    assert entries[0]["cause"] == "heartbeat-lost"
    assert entries[1]["answer"] is True and entries[1]["outcome"] == "restored"
    assert {e["sessionId"] for e in bob.recovery_log()["entries"]} == {theirs}
