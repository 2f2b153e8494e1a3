"""The hooks' spool stays bounded: ingested, idle spool files are retired, nothing is lost."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from agent_continuity.hooks import ingest, retire, spool
from test_hooks import Agent, _kill_agents, events_of, listed  # noqa: F401  (fixtures)
from test_hooks import project as project  # the fixture


def _age(path: str, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _prompts(root: Path, session_id: str) -> list[str]:
    return [p["text"] for kind, p in events_of(root, session_id) if kind == "message"]


def _ingest(root: Path, **retiring: float) -> None:
    """An ingest under the project's lock, retiring with the given thresholds."""
    with ingest.project_lock(root, wait=10) as held:
        assert held
        with ingest.manager(root) as mgr:
            ingest.ingest(mgr, root)
        retire.retire(root, **retiring)


def _names(root: Path) -> list[str]:
    return sorted(os.listdir(spool.project_spool(root)))


def test_an_idle_ingested_spool_file_is_retired_then_deleted_and_the_session_goes_on(
    project: Path,
) -> None:
    agent = Agent(project, "s1")
    agent.hook("SessionStart", source="startup")
    agent.hook("UserPromptSubmit", prompt="one")
    path = spool.spool_file(str(project), "claude", "s1")
    (session,) = listed(project)  # a reader ingests first
    assert spool.done_offset(path) == os.path.getsize(path)

    # Written a minute ago: kept (the default waits a day).
    _age(path, 60)
    _ingest(project)
    assert os.path.exists(path)
    # Idle long enough: renamed, the records stay in the journal.
    _age(path, retire.RETIRE_AFTER + 1)
    _ingest(project, grace=3600)
    (retired,) = [n for n in _names(project) if spool.RETIRED in n and n.endswith(".jsonl")]
    assert not os.path.exists(path) and not os.path.exists(f"{path}.done")
    assert _prompts(project, session["id"]) == ["one"]

    # The agent session goes on: its new file is read from its first byte.
    agent.hook("UserPromptSubmit", prompt="two")
    assert os.path.getsize(path) > 0
    listed(project)
    assert _prompts(project, session["id"]) == ["one", "two"]
    # Within the grace the retired file is kept; after it, it is deleted, once.
    _ingest(project, grace=3600)
    assert retired in _names(project)
    _age(os.path.join(spool.project_spool(project), retired), 5)
    time.sleep(1.1)  # since the rename
    _ingest(project, grace=1)
    assert [n for n in _names(project) if spool.RETIRED in n] == []
    assert _prompts(project, session["id"]) == ["one", "two"]


def test_a_file_with_records_waiting_is_never_retired(project: Path) -> None:
    agent = Agent(project, "s2")
    agent.hook("SessionStart", source="startup")
    listed(project)
    path = spool.spool_file(str(project), "claude", "s2")
    with open(path, "ab") as handle:  # spooled, not ingested yet
        handle.write(spool.encode({"agent": "claude", "event": "Stop", "input": {}}))
    _age(path, retire.RETIRE_AFTER + 1)
    with ingest.project_lock(project, wait=10) as held:
        assert held
        assert retire.retire(project, idle_after=0, grace=0) == 0
    assert os.path.exists(path) and os.path.getsize(path) > spool.done_offset(path)


def test_a_mark_left_by_a_crash_does_not_apply_to_the_new_file(project: Path) -> None:
    """Killed between the rename and the old mark's removal: the mark names the old inode."""
    agent = Agent(project, "s3")
    agent.hook("SessionStart", source="startup")
    agent.hook("UserPromptSubmit", prompt="before")
    (session,) = listed(project)
    path = spool.spool_file(str(project), "claude", "s3")
    mark = Path(f"{path}.done").read_text()
    retired = path.removesuffix(".jsonl") + f"{spool.RETIRED}{time.time_ns()}.jsonl"
    spool.mark_done(path, os.path.getsize(path), done=f"{retired}.done")  # retire's first step
    os.rename(path, retired)  # its second; then the kill, before the old mark's removal
    assert Path(f"{path}.done").read_text() == mark
    agent.hook("UserPromptSubmit", prompt="after")  # a new file at the old name
    assert os.path.getsize(path) <= int(mark.split()[0])  # the old offset would skip it all
    assert spool.done_offset(path) == 0
    listed(project)
    assert _prompts(project, session["id"]) == ["before", "after"]


# Writers: real processes appending prompts to one agent session's spool file,
# a few milliseconds apart, while the test retires and deletes that file under them.
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


def test_records_appended_while_files_are_retired_and_deleted_are_all_ingested_once(
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
    retired = set()
    while time.time() < until:
        # Retire whatever is ingested at once; delete retired files after one second.
        _ingest(project, idle_after=0, grace=1)
        retired |= {n for n in _names(project) if spool.RETIRED in n}
    counts = [int(w.communicate(timeout=60)[0]) for w in writers]
    time.sleep(1.1)
    _ingest(project, idle_after=0, grace=1)
    _ingest(project, idle_after=0, grace=1)
    assert len(retired) >= 3, retired  # the race happened: files were retired under the writers
    prompts = _prompts(project, session["id"])
    expected = {f"w{n}-{i}" for n, count in enumerate(counts) for i in range(count)}
    assert len(prompts) == len(expected)  # none twice
    assert set(prompts) == expected  # none lost
    for n in range(3):  # each writer's records in its order
        mine = [int(p.split("-")[1]) for p in prompts if p.startswith(f"w{n}-")]
        assert mine == sorted(mine)
