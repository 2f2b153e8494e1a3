"""What a coding agent pays for the hooks: each hook's process time beside ``python -c pass``.

Claude Code runs a hook synchronously on every prompt and tool call, so each
one is a whole process start. This runs the real hook command (what
``continuity hooks install claude`` writes: ``python -I -S .../spool.py
claude``) with the JSON Claude Code sends, in a temporary git project, and
prints the median and 90th percentile of each against its target: 60 ms for
a recording hook, 250 ms for a SessionStart that finds an interrupted
session and injects its recovery. That one is measured as it happens: an
agent works a turn (the background ingester writes and prepares it), starts
another, and is killed in a tool call, so a prompt and the call are in the
spool only. The full path (a dead agent's session never ingested, nothing
prepared) is shown for comparison. ``continuity message`` (the command a
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

from agent_continuity.hooks import spool
from agent_continuity.hooks.ingest import ingest_project
from agent_continuity.hooks.prepared import prepared_file
from agent_continuity.hooks.settings import hook_command

# The command `continuity hooks install claude` writes into .claude/settings.json.
HOOK = shlex.split(hook_command("claude"))
RECORDING_TARGET_MS = 60.0
START_TARGET_MS = 250.0


def _timed(
    command: list[str], stdin: bytes, env: dict[str, str], cwd: Path, injects: bool
) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, input=stdin, env=env, cwd=cwd, capture_output=True, check=False)
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        raise SystemExit(f"{command} failed: {done.stderr.decode()[-2000:]}")
    if injects and b"Session Recovery" not in done.stdout:
        raise SystemExit(f"{command} injected no recovery: {done.stdout.decode()[-2000:]}")
    return elapsed


def _settled(root: Path) -> None:
    """Write what the hooks spooled (as any reader would), and let a spawned ingester finish."""
    ingest_project(root)
    time.sleep(0.2)


def _payload(event: str, session: str, root: Path, **extra: object) -> bytes:
    data = {"session_id": session, "cwd": str(root), "hook_event_name": event, **extra}
    return json.dumps(data).encode()


# An "agent": runs the hook for each JSON input line it reads, answers with its output.
_AGENT = """
import subprocess, sys
for line in sys.stdin:
    done = subprocess.run(sys.argv[1:], input=line.encode(), capture_output=True)
    print(done.stdout.decode().strip(), flush=True)
"""


class _Agent:
    """A live agent process (its pid holds the session's lease) running hooks on demand."""

    def __init__(self, root: Path, env: dict[str, str], session: str) -> None:
        self.root, self.session = root, session
        self.process = subprocess.Popen(
            [sys.executable, "-c", _AGENT, *HOOK],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=root,
        )

    def hook(self, event: str, **extra: object) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(_payload(event, self.session, self.root, **extra).decode() + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline()

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no SessionEnd
        self.process.wait()


def _prepared(root: Path, agent_session: str) -> None:
    """Wait for the background ingester to write the agent's turn and prepare its prompt."""
    path = spool.spool_file(str(root), "claude", agent_session)
    deadline = time.monotonic() + 60
    while True:
        ours = spool.mapped_session("claude", agent_session)
        written = spool.done_offset(path) == os.path.getsize(path)
        if ours and written and os.path.exists(prepared_file(root, ours)):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"the ingester did not prepare {agent_session}'s prompt")
        time.sleep(0.02)
    ingest_project(root)  # waits for the ingester's lock


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
                injects = name.startswith("hook SessionStart, injecting")
                times.append(_timed(command, stdin, env, root, injects))
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

        def killed_mid_tool_call_then_start(i: int) -> tuple[list[str], bytes]:
            # What a killed Claude Code leaves: a turn the background ingester
            # wrote and prepared, then a prompt and a tool call in the spool only.
            agent = _Agent(root, env, f"dead{i}")
            try:
                agent.hook("SessionStart", source="startup")
                agent.hook("UserPromptSubmit", prompt="Fix the flaky payment test")
                tool = {"tool_name": "Bash", "tool_input": {"command": "pytest -x"}}
                agent.hook("PreToolUse", tool_use_id=f"a{i}", **tool)
                agent.hook("PostToolUse", tool_use_id=f"a{i}", tool_response="1 failed", **tool)
                agent.hook("Stop", last_assistant_message="The retry test depends on wall time.")
                _prepared(root, f"dead{i}")
                agent.hook("UserPromptSubmit", prompt="Run it in a loop until it fails")
                slow = {"tool_name": "Bash", "tool_input": {"command": "sleep 30"}}
                agent.hook("PreToolUse", tool_use_id=f"b{i}", **slow)
            finally:
                agent.kill()
            return HOOK, _payload("SessionStart", f"new{i}", root, source="startup")

        series(
            "hook SessionStart, injecting a recovery (killed mid tool call)",
            killed_mid_tool_call_then_start,
            START_TARGET_MS,
        )

        def interrupted_then_start(i: int) -> tuple[list[str], bytes]:
            # A dead agent whose only record, a prompt, was never ingested: no
            # session, nothing prepared, so the hook takes the full path.
            # The hook's parent, the "agent", is a Python process that exits at once.
            stdin = _payload("UserPromptSubmit", f"lost{i}", root, prompt="fix the bug")
            agent = f"import subprocess; subprocess.run({HOOK!r}, input={stdin!r}, check=True)"
            subprocess.run([sys.executable, "-c", agent], env=env, cwd=root, check=True)
            return HOOK, _payload("SessionStart", f"newer{i}", root, source="startup")

        series(
            "hook SessionStart, injecting, full path (nothing prepared)",
            interrupted_then_start,
            None,
        )
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
