"""Eight processes on one store at once: distinct ids, no lost registry update,
no session written by two processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from chaos_support import FIGURES, HERE, SHARED_KINDS, manager, run_cli, store_url, subprocess_env

from agent_continuity.model import EventKind, SessionStatus

WORKERS = 8
ROUNDS = 4
MESSAGES = 12


@pytest.mark.slow
@pytest.mark.parametrize("kind", SHARED_KINDS)
def test_eight_processes_share_a_store_without_losing_or_mixing_anything(
    kind: str, tmp_path: Path
) -> None:
    url = store_url(kind, tmp_path)
    board = tmp_path / "board"
    board.mkdir()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "chaos_worker.py"),
                url,
                str(tmp_path),
                str(board),
                *(str(n) for n in (me, WORKERS, ROUNDS, MESSAGES)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=subprocess_env(),
        )
        for me in range(WORKERS)
    ]
    for me in range(WORKERS):
        (board / f"ready-{me}").touch()
    reports: list[dict[str, Any]] = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        reports.append(json.loads(out))
    FIGURES["concurrent worker processes"] += WORKERS

    # No duplicate id.
    created = [sid for report in reports for sid in report["created"]]
    assert len(created) == len(set(created)) == WORKERS * ROUNDS

    with manager(url, tmp_path) as mgr:
        # No lost registry update: every session is there, completed, with its own task.
        records = {r.id: r for r in mgr.sessions()}
        assert set(records) == set(created)
        for report in reports:
            for r, sid in enumerate(report["created"]):
                assert records[sid].status is SessionStatus.COMPLETED, records[sid].status
                assert records[sid].context.current_task == f"TASK-W{report['worker']}-{r}"
        # No interleaving: each journal holds its own writer's events, all of them, in order.
        for report in reports:
            tag = f"w{report['worker']}."
            for sid, acks in report["acks"].items():
                read = mgr.store.read_events(sid)
                assert read.damage == []
                assert [e.seq for e in read.events] == list(range(1, len(read.events) + 1))
                texts = {
                    e.seq: e.payload["text"] for e in read.events if e.kind is EventKind.MESSAGE
                }
                assert sorted(texts) == acks
                assert all(text.startswith(tag) for text in texts.values()), texts
                # Nobody else took the lease while the owner was writing. (A process
                # looking for dead sessions may take it once the owner has ended it.)
                ended = next(
                    e.seq
                    for e in read.events
                    if e.kind is EventKind.LIFECYCLE and e.payload["status"] == "completed"
                )
                foreign = [
                    e.seq
                    for e in read.events
                    if e.kind is EventKind.LEASE and e.payload["holder"] != report["holder"]
                ]
                assert all(seq > ended for seq in foreign), (foreign, ended)
                FIGURES["acknowledged events checked"] += len(acks)
                # Retention pruned the automatic points down to backupCount.
                auto = [p for p in mgr.store.list_points(sid) if p.trigger.value == "auto"]
                assert len(auto) <= records[sid].persistence.backup_count
        assert mgr.verify()["ok"]

    # The second writer is refused, with a message naming the owner.
    refusals = [r for report in reports for r in report["refusals"]]
    assert len(refusals) == WORKERS * (WORKERS - 1) * 2
    for refusal in refusals:
        assert not refusal.get("stolen"), refusal
        assert refusal["holder"] == refusal["owner"]
        assert refusal["owner"] in refusal["message"]
        assert refusal["session"] in refusal["message"]
    FIGURES["second writers refused with LeaseHeld"] += len(refusals)

    listed = run_cli(["--store", url, "list", "--json"], tmp_path)
    assert listed.code == 0, listed
    assert len(listed.json()["sessions"]) == WORKERS * ROUNDS
    if kind == "files":
        registry = json.loads((tmp_path / "tracking/sessions/session-registry.json").read_text())
        assert registry["sessionRegistry"]["metadata"]["totalSessions"] == WORKERS * ROUNDS


@pytest.mark.parametrize("kind", SHARED_KINDS)
def test_ending_a_session_never_waits_for_its_own_heartbeat(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """end() used to hold the session's lock while joining the saver thread, which may
    be waiting for that very lock to heartbeat: the join timed out twice (60 s).

    A slow append keeps the lock long enough for the heartbeat to queue behind it.
    """
    with manager(store_url(kind, tmp_path), tmp_path, heartbeat_interval=0.002) as mgr:
        real_append = mgr.store.append

        def slow_append(*args: Any, **kwargs: Any) -> Any:
            time.sleep(0.03)
            return real_append(*args, **kwargs)

        for n in range(5):
            session = mgr.start(task=f"TASK-{n}", auto_save=False)
            monkeypatch.setattr(mgr.store, "append", slow_append)
            session.add_message("user", "hello")
            started = time.monotonic()
            session.end()
            monkeypatch.setattr(mgr.store, "append", real_append)
            assert time.monotonic() - started < 5, "end() waited for the heartbeat thread"
