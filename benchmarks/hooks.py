"""What a coding agent pays for the hooks: each hook's process time beside ``python -c pass``.

Claude Code runs a hook synchronously on every prompt and tool call, so each
one is a whole process start. This runs the real hook command (what
``continuity hooks install claude`` writes: ``python -I -S .../spool.py
claude``) with the JSON Claude Code sends, in a temporary git project, and
prints the median and 90th percentile of each against its target: 60 ms for
a recording hook, 250 ms for a SessionStart that finds an interrupted
session and injects its recovery. ``continuity message`` (the command a
wrapper would call instead) is shown for comparison.

    python benchmarks/hooks.py              # 30 runs of each
    python benchmarks/hooks.py --runs 5     # quick (the smoke test)

Between two runs the spool is written to the journal here (untimed), as any
reader would, so that no ingester shares the CPU with the next measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from agent_continuity.hooks.ingest import ingest_project
from agent_continuity.hooks.settings import hook_command

# The command `continuity hooks install claude` writes into .claude/settings.json.
HOOK = shlex.split(hook_command("claude"))
RECORDING_TARGET_MS = 60.0
START_TARGET_MS = 250.0


def _timed(command: list[str], stdin: bytes, env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, input=stdin, env=env, cwd=cwd, capture_output=True, check=False)
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        raise SystemExit(f"{command} failed: {done.stderr.decode()[-2000:]}")
    return elapsed


def _settled(root: Path) -> None:
    """Write what the hooks spooled (as any reader would), and let a spawned ingester finish."""
    ingest_project(root)
    time.sleep(0.2)


def _payload(event: str, session: str, root: Path, **extra: object) -> bytes:
    data = {"session_id": session, "cwd": str(root), "hook_event_name": event, **extra}
    return json.dumps(data).encode()


def measure(runs: int) -> list[tuple[str, list[float], float | None]]:
    """Each measure's times in milliseconds, with its target (None: for comparison)."""
    with tempfile.TemporaryDirectory(prefix="continuity-hooks-bench-") as tmp:
        root, state = Path(tmp) / "project", Path(tmp) / "state"
        root.mkdir()
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        os.environ["CONTINUITY_STATE_DIR"] = str(state)  # for ingest_project here too
        os.environ.pop("CONTINUITY_STORE", None)
        env = dict(os.environ)
        transcript = Path(tmp) / "transcript.jsonl"
        transcript.write_text(
            json.dumps(
                {"type": "assistant", "message": {"content": [{"type": "text", "text": "ok"}]}}
            )
            + "\n"
        )
        started = subprocess.run(
            HOOK, input=_payload("SessionStart", "bench", root, source="startup"), env=env, cwd=root
        )
        assert started.returncode == 0
        rows: list[tuple[str, list[float], float | None]] = []

        def series(
            name: str, make: Callable[[int], tuple[list[str], bytes]], target: float | None
        ) -> None:
            times = []
            for i in range(runs):
                command, stdin = make(i)
                times.append(_timed(command, stdin, env, root))
                _settled(root)
            rows.append((name, times, target))

        series("python -c pass", lambda i: ([sys.executable, "-c", "pass"], b""), None)
        bare = [sys.executable, "-I", "-S", "-c", "pass"]
        series("python -I -S -c pass (the hook's interpreter)", lambda i: (bare, b""), None)
        prompt = _payload("UserPromptSubmit", "bench", root, prompt="Add SMS reminders")
        series("hook UserPromptSubmit", lambda i: (HOOK, prompt), RECORDING_TARGET_MS)
        tool = {"tool_name": "Bash", "tool_input": {"command": "ls"}}
        series(
            "hook PreToolUse",
            lambda i: (HOOK, _payload("PreToolUse", "bench", root, tool_use_id=f"t{i}", **tool)),
            RECORDING_TARGET_MS,
        )
        series(
            "hook PostToolUse",
            lambda i: (
                HOOK,
                _payload(
                    "PostToolUse", "bench", root, tool_use_id=f"t{i}", tool_response="a b", **tool
                ),
            ),
            RECORDING_TARGET_MS,
        )
        stop = _payload("Stop", "bench", root, transcript_path=str(transcript))
        series(
            "hook Stop (reads the transcript's tail)", lambda i: (HOOK, stop), RECORDING_TARGET_MS
        )

        series(
            "hook SessionStart, nothing to recover",
            lambda i: (HOOK, _payload("SessionStart", f"fresh{i}", root, source="startup")),
            START_TARGET_MS,
        )

        def interrupted_then_start(i: int) -> tuple[list[str], bytes]:
            # An agent that dies without SessionEnd: its session is interrupted,
            # and the next SessionStart finds it and injects the recovery.
            # The hook's parent, the "agent", is a Python process that exits at once.
            stdin = _payload("UserPromptSubmit", f"dead{i}", root, prompt="fix the bug")
            agent = f"import subprocess; subprocess.run({HOOK!r}, input={stdin!r}, check=True)"
            subprocess.run([sys.executable, "-c", agent], env=env, cwd=root, check=True)
            return HOOK, _payload("SessionStart", f"new{i}", root, source="startup")

        series("hook SessionStart, injecting a recovery", interrupted_then_start, START_TARGET_MS)
        message = [sys.executable, "-m", "agent_continuity.cli", "message", "--role", "user", "hi"]
        subprocess.run(
            [sys.executable, "-m", "agent_continuity.cli", "start"],
            env=env,
            cwd=root,
            check=True,
            capture_output=True,
        )
        series("continuity message (for comparison)", lambda i: (message, b""), None)
        return rows


def table(rows: list[tuple[str, list[float], float | None]]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| process | median ms | p90 ms | target ms | verdict |",
        "|---|---:|---:|---:|---|",
    ]
    for name, times, target in rows:
        median = statistics.median(times)
        p90 = sorted(times)[max(0, int(len(times) * 0.9) - 1)]
        verdict = "-" if target is None else ("ok" if median <= target else "OVER")
        shown = "-" if target is None else f"{target:.0f}"
        lines.append(f"| {name} | {median:.1f} | {p90:.1f} | {shown} | {verdict} |")
    return "\n".join(lines)


def main() -> None:
    """Run the measures and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="runs of each measure")
    args = parser.parse_args()
    print(table(measure(args.runs)))


if __name__ == "__main__":
    main()
