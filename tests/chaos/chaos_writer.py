"""A session writer for the crash torture test, run as a real process and killed with SIGKILL.

Started once per round with ``sys.executable``; it imports the package once and
then forks one writer per command read from stdin, so hundreds of kills do not
pay hundreds of interpreter start-ups. Each writer is an ordinary process that
uses only the public API and is killed with SIGKILL at a random moment.

Protocol (one line each, on stdout; a line is one ``write``, so lines of the
server and of its writers never mix)::

    stdin   run NEW|SESSION-ID GENERATION SEED      write at random until killed
            script URL PROJECT LEVEL STEP LENGTH     the fixed script, dying at one step
    stdout  pid PID                        the writer started
            session SESSION-ID             it owns the session (started or adopted)
            ack N SEQ TOKEN SIZE           operation N: message TOKEN is durable as event SEQ
            decided N SEQ                  operation N: its decision is durable as event SEQ
            step N SEQ                     operation N: its next step is durable as event SEQ
            point N POINT-ID               operation N: a recovery point is durable
            error TEXT                     the writer failed by itself (a finding)
            done STEPS                     the script finished; it made STEPS steps
            exit STATUS                    the writer is gone (negative: killed by that signal)
"""

from __future__ import annotations

import os
import random
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaos_support import manager, message_text

from agent_continuity.storage.base import WRITE_METHODS


def say(line: str) -> None:
    # One os.write per line: atomic on a pipe, and nothing left in a buffer to
    # be printed twice by a forked child.
    os.write(1, (line + "\n").encode())


def write(url: str, project: Path, target: str, generation: int, seed: int) -> None:
    """Append events and make recovery points until killed."""
    rng = random.Random(seed)
    mgr = manager(url, project)
    if target == "NEW":
        session = mgr.start(type="chaos", task=f"TASK-{generation}", phase="torture")
    else:
        session = mgr.adopt(target)
    say(f"session {session.id}")
    n = 0
    while True:
        n += 1
        roll = rng.random()
        token = f"g{generation}.{n}"
        if roll < 0.8:
            size = rng.choice((0, 3, 40, 300, 4000))
            seq = session.add_message(rng.choice(("user", "assistant")), message_text(token, size))
            say(f"ack {n} {seq} {token} {size}")
        elif roll < 0.87:
            say(f"decided {n} {session.decide(f'decision {token}')}")
        elif roll < 0.95:
            say(f"step {n} {session.next_step(f'step {token}')}")
        else:
            say(f"point {n} {session.checkpoint(observe=False)}")


# What one step of the script is: each durable file operation (files store), or
# each write the store is asked for (any store; SQLite's own I/O is out of reach).
OS_STEPS = ("write", "fsync", "fdatasync", "replace", "rename", "ftruncate", "unlink", "link")
STORE_STEPS = WRITE_METHODS


def arm(level: str, kill_at: int, store_type: type[Any]) -> Callable[[], int]:
    """Make this process SIGKILL itself just before step ``kill_at`` (0: never).

    Returns a function that tells how many steps were made so far.
    """
    made = 0

    def step() -> None:
        nonlocal made
        made += 1
        if made == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def counted(real: Callable[..., Any], name: str) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not (name == "write" and args[0] in (1, 2)):  # our own reports are no step
                step()
            return real(*args, **kwargs)

        return wrapper

    if level == "os":
        for name in OS_STEPS:
            setattr(os, name, counted(getattr(os, name), name))
    else:
        for name in STORE_STEPS:
            setattr(store_type, name, counted(getattr(store_type, name), name))
    return lambda: made


def script(url: str, project: Path, level: str, kill_at: int, length: str) -> None:
    """A fixed session, so that every step of it can be the one a kill lands on.

    Opening the store and starting marks any earlier writer's dead session
    interrupted; then a new session is created, written to and (``full``) ended.
    ``first`` stops after one message: with no store yet, its steps are those
    of creating the store and its first session.
    """
    from agent_continuity.storage.files import FileStore
    from agent_continuity.storage.sqlite import SqliteStore

    steps = arm(level, kill_at, FileStore if url.startswith("files:") else SqliteStore)
    mgr = manager(url, project, heartbeat_interval=3600.0)  # no writes but the script's
    session = mgr.start(type="chaos", task="TASK-SCRIPT", phase="steps", auto_save=False)
    say(f"session {session.id}")
    for n in (1, 2) if length == "full" else (1,):
        text = message_text(f"g0.{n}", 5)
        say(f"ack {n} {session.add_message('user', text)} g0.{n} 5")
    if length != "full":
        say(f"done {steps()}")
        return
    say(f"decided 3 {session.decide('decision g0.3')}")
    say(f"step 4 {session.next_step('step g0.4')}")
    say(f"point 5 {session.checkpoint(observe=False)}")
    session.end()
    say(f"done {steps()}")


def serve(url: str, project: Path) -> None:
    for command in sys.stdin:
        verb, *args = command.split()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(0)
                if verb == "run":
                    write(url, project, args[0], int(args[1]), int(args[2]))
                else:
                    script(args[0], Path(args[1]), args[2], int(args[3]), args[4])
            except BaseException as exc:  # a writer that fails on its own is a finding too
                say(f"error {type(exc).__name__}: {' '.join(str(exc).split())}")
                os._exit(3)
            os._exit(0)
        say(f"pid {pid}")
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        say(f"exit {code}")


def die_mid_session(url: str, project: Path) -> None:
    """Leave a session with points, a snapshot, decisions and events after its last point,
    then die without a word (its owner is gone; nothing marked it interrupted)."""
    mgr = manager(url, project, heartbeat_interval=3600.0)
    session = mgr.start(type="chaos", task="TASK-A", phase="phase-2", auto_save=False)
    for n in range(4):
        session.add_message("user", message_text(f"early.{n}", 60))
    session.checkpoint(observe=False)
    session.decide("store sessions in sqlite")
    session.next_step("write the chaos tests")
    session.block("waiting for review")
    session.add_message("assistant", message_text("middle", 80))
    session.save_context_snapshot()
    session.checkpoint(observe=False)
    for n in range(4):
        session.add_message("user", message_text(f"late.{n}", 60))
    say(f"session {session.id}")
    os._exit(0)


if __name__ == "__main__":
    if sys.argv[1] == "die-mid-session":
        die_mid_session(sys.argv[2], Path(sys.argv[3]))
    serve(sys.argv[1], Path(sys.argv[2]))
