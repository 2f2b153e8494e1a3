"""`continuity list --json` read straight from the files store (agent_continuity.listing).

The quick read must print exactly what the full path prints (open the store,
validate every record, mark dead sessions interrupted), and must step aside
whenever it cannot be sure: then the full path answers, and writes what it must.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agent_continuity import SessionManager, listing
from agent_continuity.cli.main import cli
from agent_continuity.model import SYSTEM_VERSION, Interruption, SessionRecord
from agent_continuity.storage import codec

TRACKING = Path("projectDocs/tracking")
REGISTRY = TRACKING / "sessions/session-registry.json"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A files store with a completed, an interrupted and two live active sessions.

    One active session is the command line's (a 30-minute lease), the other is
    owned by this test's process, alive on this host.
    """
    for var in [v for v in os.environ if v.startswith("CONTINUITY_")]:
        monkeypatch.delenv(var)  # the default store of the project, whatever the caller's setup
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    with SessionManager(project_dir=root, user_id="alice", observer=False) as mgr:
        ended = mgr.start(task="TASK-1", phase="phase-1", auto_save=False)
        ended.add_message("user", "first")
        ended.decide("Twilio is the SMS provider")
        ended.end()
        mgr.start(task="TASK-3", owned_by_process=False)
    with SessionManager(project_dir=root, user_id="bob", observer=False) as mgr:
        died = mgr.start(task="TASK-2", auto_save=False)
        died.complete_step("schema")
        died.interrupt("terminal closed")
        mgr.start(task="TASK-4", auto_save=False)  # this process: alive
    monkeypatch.chdir(root)
    return root


def list_json(*args: str, full: bool = False, monkeypatch: pytest.MonkeyPatch) -> str:
    """What `continuity list --json ARGS` prints; ``full`` forces the full path."""
    with monkeypatch.context() as patch:
        if full:
            patch.setattr(listing, "listed_sessions", lambda *a, **k: None)
        result = CliRunner().invoke(cli, ["list", *args, "--json"], env={"CONTINUITY_USER": "x"})
    assert result.exit_code == 0, result.output
    return result.output


def quick(root: Path, status: str | None = None, user: str | None = None) -> Any:
    """The quick read's answer, printed as `list --json` prints it (None when it steps aside)."""
    listed = listing.listed_sessions(
        f"files:{TRACKING}", root, datetime.now(UTC), status=status, user=user
    )
    return None if listed is None else json.dumps({"sessions": listed}, ensure_ascii=False) + "\n"


def statuses(output: str) -> dict[str, str]:
    return {s["context"]["currentTask"]: s["status"] for s in json.loads(output)["sessions"]}


@pytest.mark.parametrize(
    "filters",
    [
        (),
        ("--status", "active"),
        ("--status", "completed"),
        ("--status", "archived"),
        ("--user", "bob"),
        ("--status", "interrupted", "--user", "bob"),
        ("--user", "nobody"),
    ],
    ids=lambda filters: " ".join(filters) or "all",
)
def test_the_quick_read_prints_what_the_full_path_prints(
    project: Path, filters: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    options = dict(zip(filters[::2], filters[1::2], strict=True))
    registry = (project / REGISTRY).read_bytes()
    answered = quick(project, options.get("--status"), options.get("--user"))
    printed = list_json(*filters, monkeypatch=monkeypatch)
    full = list_json(*filters, full=True, monkeypatch=monkeypatch)
    assert answered is not None  # the quick read did answer
    assert printed == answered == full
    assert (project / REGISTRY).read_bytes() == registry  # nobody died: nothing written


def test_all_sessions_are_listed_oldest_first(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert list(statuses(list_json(monkeypatch=monkeypatch)).items()) == [
        ("TASK-1", "completed"),
        ("TASK-3", "active"),
        ("TASK-2", "interrupted"),
        ("TASK-4", "active"),
    ]


def _dead_owner(root: Path) -> None:
    """An active session whose owner process died on this host (lease not yet expired)."""
    code = (
        "import os, sys\n"
        "from agent_continuity import SessionManager\n"
        "mgr = SessionManager(project_dir=sys.argv[1], user_id='carol', observer=False)\n"
        "mgr.start(task='TASK-5', auto_save=False)\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(root)], check=True, timeout=120)


def _expired_lease(root: Path) -> None:
    """A command-line session last touched two hours ago: its 30-minute lease ran out."""
    then = datetime.now(UTC) - timedelta(hours=2)
    with SessionManager(
        project_dir=root, user_id="carol", observer=False, clock=lambda: then
    ) as mgr:
        mgr.start(task="TASK-5", owned_by_process=False)


@pytest.mark.parametrize("gone", [_dead_owner, _expired_lease], ids=["dead-pid", "expired"])
def test_a_session_whose_owner_is_gone_is_still_marked_interrupted(
    project: Path, gone: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone(project)
    assert quick(project) is None  # the full path must write: the quick read steps aside
    assert statuses(list_json(monkeypatch=monkeypatch))["TASK-5"] == "interrupted"
    on_disk = json.loads((project / REGISTRY).read_text())["sessionRegistry"]["sessions"]
    assert {e["context"]["currentTask"]: e["status"] for e in on_disk.values()}["TASK-5"] == (
        "interrupted"
    )
    # Marked once: from now on the quick read answers, and agrees.
    assert quick(project) == list_json(monkeypatch=monkeypatch)


def test_a_damaged_registry_still_lists_every_session(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = project / REGISTRY
    path.write_bytes(path.read_bytes()[:-40])
    assert quick(project) is None
    assert sorted(statuses(list_json(monkeypatch=monkeypatch))) == [
        "TASK-1",
        "TASK-2",
        "TASK-3",
        "TASK-4",
    ]


def _rewrite_entry(root: Path, task: str, change: Any) -> None:
    """Change one registry entry and seal the registry again (a hand edit, an old writer)."""
    path = root / REGISTRY
    doc = codec.load_document(path.read_bytes())
    for entry in doc["sessionRegistry"]["sessions"].values():
        if entry["context"]["currentTask"] == task:
            change(entry)
    path.write_bytes(codec.dump_document(doc))


@pytest.mark.parametrize(
    "change",
    [
        lambda e: e.update(progressNote="kept by an older writer"),
        lambda e: e["state"].update(progress="040%"),
        lambda e: e.update(created=e["created"].replace("Z", "+00:00")),
        lambda e: e.update(lastSeq=float(e["lastSeq"])),
        lambda e: e.update(status="paused"),
    ],
    ids=["unknown-key", "progress", "time-offset", "float", "bad-status"],
)
def test_an_entry_not_as_the_model_writes_it_is_listed_as_the_full_path_lists_it(
    project: Path, change: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _rewrite_entry(project, "TASK-2", change)
    assert quick(project) is None
    assert list_json(monkeypatch=monkeypatch) == list_json(full=True, monkeypatch=monkeypatch)


def test_a_time_in_a_whole_second_is_printed_as_the_full_path_prints_it(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _rewrite_entry(project, "TASK-2", lambda e: _whole_second(e, "lastActivity"))
    answered = quick(project)
    assert answered is not None and ".000Z" not in answered
    assert answered == list_json(full=True, monkeypatch=monkeypatch)


def test_a_journal_the_registry_does_not_index_yet_is_listed(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A writer killed between creating the journal and indexing it: opening the
    # store finishes the job, so the quick read must not answer without it.
    with SessionManager(project_dir=project, user_id="carol", observer=False) as mgr:
        created = mgr.start(owned_by_process=False, auto_save=False).id
    path = project / REGISTRY
    doc = codec.load_document(path.read_bytes())
    del doc["sessionRegistry"]["sessions"][created]
    path.write_bytes(codec.dump_document(doc))
    assert quick(project) is None
    listed = json.loads(list_json(monkeypatch=monkeypatch))["sessions"]
    assert created in [s["id"] for s in listed]


@pytest.mark.parametrize("url", ["memory:", "sqlite:///s.db"])
def test_other_stores_take_the_full_path(project: Path, url: str) -> None:
    assert listing.listed_sessions(url, project, datetime.now(UTC)) is None


def _full_record() -> SessionRecord:
    now = datetime(2026, 11, 21, 10, 0, 0, 123000, tzinfo=UTC)
    return SessionRecord.model_validate(
        {
            "id": "SESSION-261121-001",
            "created": now,
            "lastActivity": now,
            "userId": "alice",
            "agent": {"capabilities": ["code"], "specialization": "sms"},
            "context": {"currentTask": "TASK-6-004", "currentPhase": "phase-6"},
            "state": {"completedSteps": ["schema"], "currentStep": "tests", "progress": 85},
            "persistence": {"lastSave": now},
            "interruption": Interruption(cause="terminal closed", at=now),
            "recoveredFrom": "SESSION-261120-002",
            "continuationId": "CONTINUATION-261120-002-1",
            "lastSeq": 12,
        }
    )


def as_written(entry: dict[str, Any]) -> str:
    """What the full path prints for a registry entry: the model reads it and writes it back."""
    return json.dumps(SessionRecord.model_validate(entry).to_wire())


def test_the_wire_form_checked_is_the_models() -> None:
    # Fails when the model gains, loses or reorders a field: update listing.RECORD.
    assert listing.SYSTEM_VERSION == SYSTEM_VERSION
    record = _full_record()
    bare = SessionRecord(id=record.id, created=record.created, last_activity=record.created)
    for entry in (record.to_wire(), bare.to_wire()):
        assert json.dumps(listing.wire_form(entry, listing.RECORD)) == json.dumps(entry)


def _whole_second(entry: dict[str, Any], *where: str) -> None:
    """A time as format_time writes one with under a millisecond: ``….000Z``."""
    *path, key = where
    for step in path:
        entry = entry[step]
    entry[key] = entry[key][:-5] + ".000Z"


@pytest.mark.parametrize(
    "change",
    [
        lambda e: None,
        lambda e: _whole_second(e, "created"),
        lambda e: _whole_second(e, "interruption", "at"),
        lambda e: _whole_second(e, "persistence", "lastSave"),
        lambda e: e.update(interruption=None),
        lambda e: e["persistence"].update(lastSave=None),
    ],
    ids=["as-is", "created", "interruption", "last-save", "no-interruption", "no-save"],
)
def test_an_entry_in_wire_form_is_printed_as_the_model_writes_it(change: Any) -> None:
    entry = json.loads(json.dumps(_full_record().to_wire()))
    change(entry)
    assert json.dumps(listing.wire_form(entry, listing.RECORD)) == as_written(entry)


def _reorder(entry: dict[str, Any]) -> None:
    items = list(entry.items())
    entry.clear()
    entry.update(reversed(items))


@pytest.mark.parametrize(
    "change",
    [
        lambda e: e.update(extra=1),
        lambda e: e.pop("lastSeq"),
        lambda e: e.update(created="2026-11-21T10:00:00.123456Z"),
        lambda e: e.update(created="2026-11-21T10:00:00.123+00:00"),
        lambda e: e["state"].update(progress="085%"),
        lambda e: e["state"].update(progress=85),
        lambda e: e["persistence"].update(backupCount=True),
        lambda e: e.update(lastSeq=12.0),
        lambda e: e.update(interruption={"at": e["created"], "cause": "x"}),
        _reorder,
    ],
)
def test_an_entry_the_model_would_write_differently_is_refused(change: Any) -> None:
    entry = json.loads(json.dumps(_full_record().to_wire()))
    change(entry)
    assert listing.wire_form(entry, listing.RECORD) is listing.REFUSED
    try:
        written = as_written(entry)
    except ValueError:
        return  # the model refuses it: the full path derives the record from the journal
    assert written != json.dumps(entry)
