"""One of several processes sharing a store at once (the concurrency test).

Each worker starts sessions, appends to them and makes automatic recovery
points (which prune older ones), all while its peers do the same. Its last
session stays live until every peer has tried to write to it, and it tries
to write to each peer's. It prints one JSON report on stdout.

Usage: chaos_worker.py URL PROJECT BOARD WORKER WORKERS ROUNDS MESSAGES
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from chaos_support import manager

from agent_continuity.errors import LeaseHeld


def wait_for(board: Path, prefix: str, count: int) -> None:
    deadline = time.monotonic() + 120
    while len(list(board.glob(f"{prefix}-*"))) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"peers never reached {prefix}")
        time.sleep(0.01)


def main() -> None:
    url, project, board = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    me, workers, rounds, messages = (int(a) for a in sys.argv[4:8])
    mgr = manager(url, project, heartbeat_interval=0.1)
    report: dict[str, Any] = {"worker": me, "created": [], "acks": {}, "refusals": []}
    wait_for(board, "ready", workers)  # start together
    session = None
    for r in range(rounds):
        session = mgr.start(type="chaos", task=f"TASK-W{me}-{r}", auto_save=False)
        report["created"].append(session.id)
        report["acks"][session.id] = [
            session.add_message("user", f"w{me}.r{r}.m{n}") for n in range(messages)
        ]
        for _ in range(3):
            session.checkpoint("auto", observe=False)  # retention prunes the older ones
        if r < rounds - 1:
            session.end()
    assert session is not None
    report["holder"] = session.lease.holder
    (board / f"live-{me}").write_text(f"{session.id} {session.lease.holder}")
    wait_for(board, "live", workers)
    for peer in sorted(board.glob("live-*")):
        if peer.name == f"live-{me}":
            continue
        peer_session, peer_holder = peer.read_text().split()
        for how in ("adopt", "attach"):
            try:
                if how == "adopt":
                    mgr.adopt(peer_session)
                else:
                    mgr.attach(peer_session).add_message("user", f"w{me} intrudes")
            except LeaseHeld as exc:
                refusal = {"session": peer_session, "owner": peer_holder, "how": how}
                report["refusals"].append(refusal | {"message": str(exc), "holder": exc.holder})
            else:
                report["refusals"].append({"session": peer_session, "how": how, "stolen": True})
    (board / f"tried-{me}").touch()
    wait_for(board, "tried", workers)
    session.end()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
