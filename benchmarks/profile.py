"""Profile our side of a benchmark measure with pyinstrument, to see where its time goes.

    python benchmarks/profile.py turn sqlite          # scenario 1: message, message, point
    python benchmarks/profile.py batched files        # scenario 3: add_message, batched
    python benchmarks/profile.py recover files        # scenario 4: mgr.recover in process
    python benchmarks/profile.py turn files --html /tmp/turn.html

It runs the same work as ``run.py`` (same generated text, same sizes unless
``--count`` says otherwise) under a sampling profiler and prints the call tree
of the timed part only, with the wall time per operation. ``make bench``
installs pyinstrument with the peers.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from scenarios import STORES, _build_long_session, _reset, _store_path
from workload import FULL, QUICK, Sizes, conversation

from agent_continuity import SessionManager
from agent_continuity.config import Config

Work = Callable[[], None]
_WARM_UP = 5  # untimed operations first: pydantic builds each validator on first use
# Each measure: (operations, set-up) where set-up returns the timed work and its tear-down.
Setup = Callable[[str, Path, int, Sizes], tuple[Work, Work]]


def _turns(url: str, project: Path, count: int, sizes: Sizes) -> tuple[Work, Work]:
    mgr = SessionManager(store=url, project_dir=project, user_id="bench", observer=False)
    session = mgr.start(type="benchmark", auto_save=False)
    pairs = list(conversation(count + _WARM_UP))

    def turns(some: list[tuple[str, str]]) -> None:
        for user, assistant in some:
            session.add_message("user", user)
            session.add_message("assistant", assistant)
            session.checkpoint(trigger="auto")

    turns(pairs[:_WARM_UP])  # builds the models' validators, untimed
    return lambda: turns(pairs[_WARM_UP:]), lambda: (session.end(), mgr.close())


def _batched(url: str, project: Path, count: int, sizes: Sizes) -> tuple[Work, Work]:
    config = Config(durability="batched", user="bench")
    mgr = SessionManager(store=url, project_dir=project, config=config, observer=False)
    session = mgr.start(type="benchmark", auto_save=False)
    texts = [text for pair in conversation(200, seed=3) for text in pair]
    for text in texts[:_WARM_UP]:
        session.add_message("user", text)

    def work() -> None:
        for number in range(count):
            session.add_message("user", texts[number % len(texts)])
        session.end()
        mgr.close()  # flushes what waits for its fsync, as run.py times it

    return work, lambda: None


def _recover(url: str, project: Path, count: int, sizes: Sizes) -> tuple[Work, Work]:
    session_id = _build_long_session(url, project, sizes)
    live = _store_path(url, project)
    pristine = project.parent / "pristine" / live.name
    pristine.parent.mkdir()
    _reset(live, pristine)

    def once() -> None:
        _reset(pristine, live)
        mgr = SessionManager(store=url, project_dir=project, user_id="bench")
        mgr.recover(session_id, answer=True)
        mgr.close()

    once()  # imports the recovery engine, as run.py's untimed first run does
    # Only recover() is of interest, but each run needs the pristine copy back:
    # the copies are a small, separate part of the tree.
    return lambda: [once() for _ in range(count)] and None, lambda: None


MEASURES: dict[str, tuple[str, Setup, int]] = {
    "turn": ("turns (two durable messages and an automatic point)", _turns, 300),
    "batched": ('add_message calls (durability="batched")', _batched, 50_000),
    "recover": ("mgr.recover runs of the scenario-4 session", _recover, 7),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("measure", choices=sorted(MEASURES))
    parser.add_argument("store", choices=[label for label, _ in STORES])
    parser.add_argument("--count", type=int, help="operations to profile (default: as run.py)")
    parser.add_argument("--html", type=Path, help="also write pyinstrument's HTML page here")
    parser.add_argument("--interval", type=float, default=0.0001, help="sampling interval, s")
    parser.add_argument(
        "--quick", action="store_true", help="run.py's quick sizes for the recovered session"
    )
    args = parser.parse_args(argv)
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("pyinstrument is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 1
    what, setup, default = MEASURES[args.measure]
    count = args.count or default
    url = dict(STORES)[args.store]
    workdir = Path(tempfile.mkdtemp(prefix="continuity-profile-"))
    try:
        project = workdir / "project"
        project.mkdir()
        work, teardown = setup(url, project, count, QUICK if args.quick else FULL)
        profiler = Profiler(interval=args.interval)
        started = time.perf_counter()
        profiler.start()
        work()
        profiler.stop()
        elapsed = time.perf_counter() - started
        teardown()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(profiler.output_text(unicode=True, show_all=False))
    print(f"{count:,} {what} on {args.store}: {elapsed / count * 1e6:,.1f} us each (profiled)")
    if args.html is not None:
        args.html.write_text(profiler.output_html())
        print(f"wrote {args.html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
