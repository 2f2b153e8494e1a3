"""Redaction: recall and false positives on the corpus, and what it adds to an append.

    python benchmarks/redaction.py                 # 4,000 secrets, 4,000 look-alikes, 2,000 appends
    python benchmarks/redaction.py --quick         # small sizes (CI)

A secret counts as found when its text is gone from the redacted text and a
placeholder stands there; a look-alike counts as a false positive when its
text changed at all. The append cost is ``add_message`` on the files store,
durability ``sync``, in process, with ordinary conversation text, redaction
on against off.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from redaction_corpus import look_alike_samples, secret_samples
from workload import conversation

from agent_continuity import SessionManager
from agent_continuity.config import Config
from agent_continuity.redaction import Redactor


def detection(secrets: int, look_alikes: int) -> list[str]:
    """The recall and false-positive table, one line per type."""
    redactor = Redactor()
    found: dict[str, list[bool]] = defaultdict(list)
    for sample in secret_samples(secrets):
        out = redactor.text(sample.text)
        found[sample.kind].append(sample.secret not in out and "[REDACTED:" in out)
    wrong: dict[str, list[bool]] = defaultdict(list)
    for sample in look_alike_samples(look_alikes):
        wrong[sample.kind].append(redactor.text(sample.text) != sample.text)
    lines = ["| secrets | samples | recall |", "|---|---:|---:|"]
    for kind, hits in sorted(found.items()):
        lines.append(f"| {kind} | {len(hits)} | {100 * sum(hits) / len(hits):.1f}% |")
    every = [h for hits in found.values() for h in hits]
    lines.append(f"| **all** | {len(every)} | **{100 * sum(every) / len(every):.2f}%** |")
    lines += ["", "| look-alikes | samples | false positives |", "|---|---:|---:|"]
    for kind, flags in sorted(wrong.items()):
        lines.append(f"| {kind} | {len(flags)} | {100 * sum(flags) / len(flags):.1f}% |")
    every = [f for flags in wrong.values() for f in flags]
    lines.append(f"| **all** | {len(every)} | **{100 * sum(every) / len(every):.2f}%** |")
    return lines


def append_cost(appends: int, tmp: Path) -> list[str]:
    """Median append with redaction on and off, and the redactor alone per message.

    Two sessions, one with redaction and one without, append in turn (the
    same text to each), so a slower moment of a shared disk hurts both sides.
    """
    texts = [text for pair in conversation(appends) for text in pair][:appends]
    redactor = Redactor()
    start = time.perf_counter()
    for text in texts:
        redactor.text(text)
    alone = (time.perf_counter() - start) / len(texts)
    times: dict[bool, list[float]] = {False: [], True: []}
    with ExitStack() as stack:
        sessions = {}
        for redact in (False, True):
            config = Config(redact=redact, durability="sync")
            root = tmp / str(redact)
            mgr = stack.enter_context(
                SessionManager(f"files:{root}", tmp, "bench", config=config, observer=False)
            )
            sessions[redact] = stack.enter_context(mgr.start(auto_save=False))
            for text in texts[:20]:  # warm up: imports, first files
                sessions[redact].add_message("user", text)
        floor: list[float] = []
        fd = os.open(tmp / "floor", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        stack.callback(os.close, fd)
        block = b"x" * 4095 + b"\n"
        for i, text in enumerate(texts):
            # Each goes first half the time: the second append of a pair waits
            # behind the first one's flush more often.
            for redact in (False, True) if i % 2 else (True, False):
                session = sessions[redact]
                begin = time.perf_counter()
                session.add_message("user", text)
                times[redact].append(time.perf_counter() - begin)
            begin = time.perf_counter()
            os.write(fd, block)
            os.fsync(fd)
            floor.append(time.perf_counter() - begin)
    off, on = statistics.median(times[False]), statistics.median(times[True])
    one_fsync = statistics.median(floor)
    mean_len = sum(map(len, texts)) / len(texts)
    return [
        "| append cost (files, sync, add_message, in process) | median |",
        "|---|---:|",
        f"| redaction off | {off * 1e6:.0f} µs |",
        f"| redaction on | {on * 1e6:.0f} µs |",
        f"| ratio on/off | x{on / off:.3f} |",
        f"| one fsync of a 4 KiB append (physical floor) | {one_fsync * 1e6:.0f} µs |",
        f"| redaction on against the floor (target ≤ 1.5x) | x{on / one_fsync:.2f} |",
        f"| redactor alone, per message ({mean_len:.0f} chars average) | {alone * 1e6:.1f} µs |",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--tmp", type=Path, help="where the temporary stores go")
    args = parser.parse_args()
    secrets, look_alikes, appends = (300, 300, 100) if args.quick else (4000, 4000, 2000)
    print("\n".join(detection(secrets, look_alikes)))
    print()
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        print("\n".join(append_cost(appends, Path(tmp))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
