"""The hooks' spool stays bounded: ingested, idle spool files are deleted, nothing is lost."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_continuity.hooks import ingest, retire, spool
from test_hooks import Agent, _kill_agents, events_of, listed  # noqa: F401  (fixtures)
from test_hooks import project as project  # the fixture


def _age(path: str, seconds: float, mark: bool = True) -> None:
    """Make the spool file (and its mark: the last ingest) look ``seconds`` old."""
    then = time.time() - seconds
    for name in (path, f"{path}.done") if mark else (path,):
        os.utime(name, (then, then))


def _prompts(root: Path, session_id: str) -> list[str]:
    return [p["text"] for kind, p in events_of(root, session_id) if kind == "message"]


def _ingest(root: Path, idle_after: float = retire.RETIRE_AFTER) -> int:
    """An ingest under the project's lock (it retires), then a retirement; the files deleted."""
    before = set(spool.spool_files(root))
    with ingest.project_lock(root, wait=10) as held:
        assert held
        with ingest.manager(root) as mgr:
            ingest.ingest(mgr, root)
        retire.retire(root, idle_after=idle_after)
    return len(before - set(spool.spool_files(root)))


def _names(root: Path) -> list[str]:
    return sorted(os.listdir(spool.project_spool(root)))


def test_an_idle_ingested_spool_file_is_deleted_and_the_session_goes_on(project: Path) -> None:
    agent = Agent(project, "s1")
    agent.hook("SessionStart", source="startup")
    agent.hook("UserPromptSubmit", prompt="one")
    path = spool.spool_file(str(project), "claude", "s1")
    (session,) = listed(project)  # a reader ingests first
    assert spool.done_offset(path) == os.path.getsize(path)

    _age(path, 60)  # written a minute ago: kept (the default waits a day)
    assert _ingest(project) == 0 and os.path.exists(path)
    # Written a day ago but ingested just now: kept (the journal may not have flushed).
    _age(path, retire.RETIRE_AFTER + 1, mark=False)
    assert _ingest(project) == 0 and os.path.exists(path)
    _age(path, retire.RETIRE_AFTER + 1)
    assert _ingest(project) == 1
    assert not os.path.exists(path) and not os.path.exists(f"{path}.done")
    assert _prompts(project, session["id"]) == ["one"]  # the journal keeps them

    # The agent session goes on: its new file is read from its first byte.
    agent.hook("UserPromptSubmit", prompt="two")
    listed(project)
    assert _prompts(project, session["id"]) == ["one", "two"]


def test_a_file_with_records_waiting_or_a_hook_writing_is_kept(project: Path) -> None:
    agent = Agent(project, "s2")
    agent.hook("SessionStart", source="startup")
    agent.hook("UserPromptSubmit", prompt="one")
    listed(project)
    path = spool.spool_file(str(project), "claude", "s2")
    fd = os.open(path, os.O_RDWR | os.O_APPEND)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a hook holds it while it writes
        _age(path, retire.RETIRE_AFTER + 1)
        assert _ingest(project) == 0 and os.path.exists(path)
    finally:
        os.close(fd)
    with open(path, "ab") as handle:  # spooled, not ingested yet
        handle.write(spool.encode({"agent": "claude", "event": "Stop", "input": {}}))
    _age(path, retire.RETIRE_AFTER + 1)
    with ingest.project_lock(project, wait=10) as held:
        assert held
        assert retire.retire(project, idle_after=0) == 0
    assert spool.pending_bytes(path) > 0


def test_a_hook_holding_a_deleted_file_writes_to_a_new_one(project: Path) -> None:
    agent = Agent(project, "s3")
    agent.hook("SessionStart", source="startup")
    agent.hook("UserPromptSubmit", prompt="early")
    (session,) = listed(project)
    path = spool.spool_file(str(project), "claude", "s3")
    fd = os.open(path, os.O_RDWR | os.O_APPEND)  # a hook opened it ...
    try:
        _age(path, retire.RETIRE_AFTER + 1)
        assert _ingest(project) == 1  # ... and it was retired before the hook's lock
        fcntl.flock(fd, fcntl.LOCK_EX)
        line = spool.encode(
            {
                "agent": "claude",
                "event": "UserPromptSubmit",
                "pid": agent.pid,
                "input": {"session_id": "s3", "prompt": "late"},
            }
        )
        assert spool.write_if_current(fd, path, line) is False  # not where none reads
    finally:
        os.close(fd)
    spool.append(  # what the hook does next: open the name again
        path,
        {
            "agent": "claude",
            "event": "UserPromptSubmit",
            "pid": agent.pid,
            "input": {"session_id": "s3", "prompt": "late"},
        },
    )
    listed(project)
    assert _prompts(project, session["id"]) == ["early", "late"]


def test_a_damaged_first_line_is_skipped_once_not_at_every_ingest(project: Path) -> None:
    agent = Agent(project, "s6")
    agent.hook("SessionStart", source="startup")
    path = spool.spool_file(str(project), "claude", "s6")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "ab") as handle:
        handle.write(b"x \x0b\n")  # garbage, whitespace in its first eight bytes
    agent.hook("UserPromptSubmit", prompt="p0")
    (session,) = listed(project)
    agent.hook("UserPromptSubmit", prompt="p1")
    listed(project)
    listed(project)
    assert _prompts(project, session["id"]) == ["p0", "p1"]
    skipped = [e for e in spool.read_log() if e.get("error") == "damaged spool line skipped"]
    assert len(skipped) == 1


def test_a_record_after_a_line_torn_by_a_crash_is_not_lost_with_it(project: Path) -> None:
    agent = Agent(project, "s7")
    agent.hook("SessionStart", source="startup")
    agent.hook("UserPromptSubmit", prompt="one")
    (session,) = listed(project)
    path = spool.spool_file(str(project), "claude", "s7")
    torn = spool.encode({"agent": "claude", "event": "Stop", "input": {"session_id": "s7"}})
    with open(path, "ab") as handle:  # the power went while a hook wrote this
        handle.write(torn[:25])
    agent.hook("UserPromptSubmit", prompt="two")  # acknowledged: must not be lost
    listed(project)
    assert _prompts(project, session["id"]) == ["one", "two"]
    skipped = [e for e in spool.read_log() if e.get("error") == "damaged spool line skipped"]
    assert len(skipped) == 1  # the torn line, on its own


def test_a_stale_mark_that_cannot_be_removed_does_not_stop_ingesting(project: Path) -> None:
    agent = Agent(project, "s8")
    agent.hook("SessionStart", source="startup")
    agent.hook("UserPromptSubmit", prompt="one")
    (session,) = listed(project)
    os.mkdir(os.path.join(spool.project_spool(project), "claude-gone.jsonl.done"))
    agent.hook("UserPromptSubmit", prompt="two")
    listed(project)
    assert _prompts(project, session["id"]) == ["one", "two"]
    assert any("stale spool mark" in str(e.get("error")) for e in spool.read_log())


@pytest.mark.parametrize("old_mark", [False, True], ids=["mark", "mark-of-an-older-version"])
def test_a_retirement_killed_before_its_last_step_loses_nothing(
    project: Path, monkeypatch: pytest.MonkeyPatch, old_mark: bool
) -> None:
    agent = Agent(project, "s4")
    agent.hook("SessionStart", source="startup")
    agent.hook("UserPromptSubmit", prompt="before")
    (session,) = listed(project)
    path = spool.spool_file(str(project), "claude", "s4")
    if old_mark:  # an offset alone, as the mark was written before this version
        Path(f"{path}.done").write_text(str(os.path.getsize(path)))
    _age(path, retire.RETIRE_AFTER + 1)

    def killed(_: str) -> None:
        raise KeyboardInterrupt  # the process dies here: the file is gone, its mark is not

    unlink = retire._unlink
    monkeypatch.setattr(retire, "_unlink", killed)
    with pytest.raises(KeyboardInterrupt), ingest.project_lock(project, wait=10):
        retire.retire(project)
    monkeypatch.setattr(retire, "_unlink", unlink)
    assert not os.path.exists(path) and os.path.exists(f"{path}.done")

    agent.hook("UserPromptSubmit", prompt="after")  # a new file at the same name
    assert os.path.getsize(path) <= int(Path(f"{path}.done").read_text().split()[0])
    assert spool.done_offset(path) == 0  # the old mark does not apply to it
    listed(project)
    assert _prompts(project, session["id"]) == ["before", "after"]


def test_copying_the_state_folder_keeps_the_marks(project: Path, tmp_path: Path) -> None:
    """A backup restored (new inodes) must not make every spooled record count twice."""
    agent = Agent(project, "s5")
    agent.hook("SessionStart", source="startup")
    agent.hook("UserPromptSubmit", prompt="once")
    (session,) = listed(project)
    state = Path(os.environ["CONTINUITY_STATE_DIR"])
    shutil.copytree(state, tmp_path / "copy")
    shutil.rmtree(state)
    shutil.copytree(tmp_path / "copy", state)
    agent.hook("UserPromptSubmit", prompt="twice?")
    listed(project)
    assert _prompts(project, session["id"]) == ["once", "twice?"]


# Writers: real processes appending prompts to one agent session's spool file,
# a few milliseconds apart, while the test deletes that file under them.
WRITER = """
import random, sys, time
from agent_continuity.hooks import spool
path, name, until, pid = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
n = 0
while time.time() < until:
    spool.append(path, {"agent": "claude", "event": "UserPromptSubmit", "pid": pid,
                        "input": {"session_id": "race", "prompt": f"{name}-{n}"}})
    n += 1
    time.sleep(random.random() * 0.02)
print(n)
"""


def test_records_appended_while_the_file_is_deleted_are_all_ingested_once_in_order(
    project: Path,
) -> None:
    agent = Agent(project, "race")
    agent.hook("SessionStart", source="startup")
    (session,) = listed(project)
    path = spool.spool_file(str(project), "claude", "race")
    until = time.time() + 6
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, path, f"w{n}", str(until), str(agent.pid)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        for n in range(3)
    ]
    deleted = 0
    while time.time() < until:
        deleted += _ingest(project, idle_after=0)  # delete it as soon as it is ingested
    counts = [int(w.communicate(timeout=60)[0]) for w in writers]
    _ingest(project, idle_after=0)
    assert deleted >= 5  # the race happened: the file was deleted under the writers
    prompts = _prompts(project, session["id"])
    expected = {f"w{n}-{i}" for n, count in enumerate(counts) for i in range(count)}
    assert len(prompts) == len(expected)  # none twice
    assert set(prompts) == expected  # none lost
    for n in range(3):  # each writer's records in its order
        mine = [int(p.split("-")[1]) for p in prompts if p.startswith(f"w{n}-")]
        assert mine == sorted(mine)
    assert [n for n in _names(project) if n.endswith((".done", ".tmp"))] == []
