"""Text for people about recoveries. JSON output never goes through here."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from agent_continuity.recovery import EmergencyResult, RecoveryResult, ResumeTaskResult

_DECISIONS = {
    "auto-resume": "resume automatically",
    "prompt": "ask before resuming",
    "new-session": "archive it and start a new session",
}
_OUTCOMES = {
    "restored": "Session resumed; continue with the prompt below.",
    "new-session": "Old session archived; started {new}.",
    "awaiting-answer": "Nothing changed: answer with `continuity recover {id} --yes` or `--no`.",
    "still-active": "The session is still running; nothing was restored.",
    "none": "Nothing could be recovered.",
    "needs-repair": "Nothing changed: its journal is missing. Run `continuity verify --repair`, "
    "then `continuity recover {id}` resumes it.",
}


@contextmanager
def progress(*, enabled: bool, mode: str) -> Iterator[Callable[[str], None] | None]:
    """A progress bar on stderr over the recovery stages, when on a terminal."""
    if not enabled:
        yield None
        return
    from agent_continuity.restore import STAGES

    with click.progressbar(
        length=len(STAGES), label="recovering", file=sys.stderr, show_eta=False
    ) as bar:

        def step(stage: str) -> None:
            bar.label = stage
            bar.update(1)

        yield step


def _bullets(items: list[str], limit: int = 12) -> list[str]:
    shown = [f"  - {item}" for item in items[:limit]]
    if len(items) > limit:
        shown.append(f"  ... and {len(items) - limit} more")
    return shown


def recovery(result: RecoveryResult, *, with_prompt: bool) -> str:
    """What `recover` and `summary` print."""
    c = result.confidence
    f = c.factors
    lines = [
        f"{result.session_id}: {result.status} ({result.mode} recovery)",
        result.context_summary,
        "",
        f"confidence {c.score:.2f} -> {_DECISIONS.get(result.decision, result.decision)}",
        f"  elapsed {f.elapsed:.2f}  completeness {f.completeness:.2f}  "
        f"task status {f.task_status:.2f}  coherence {f.coherence:.2f}",
    ]
    lines += [f"  · {reason}" for reason in c.reasons]
    d = result.state_diff
    changes = (
        [f"modified {p}" for p in d.modified_files]
        + [f"added {p}" for p in d.added_files]
        + [f"deleted {p}" for p in d.deleted_files]
    )
    if d.branch_changed:
        changes.insert(0, f"branch {d.saved_branch} -> {d.current_branch}")
    changes += [f"commit {c}" for c in d.new_commits]
    lines += ["", "changes since the save:" if changes else "no changes since the save"]
    lines += _bullets(changes)
    failed = [v for v in result.validation if not v.passed]
    lines.append("")
    lines.append(
        f"validation: {len(result.validation) - len(failed)}/{len(result.validation)} checks passed"
    )
    lines += [f"  ✗ {v.name}{' (critical)' if v.critical else ''}: {v.detail}" for v in failed]
    if result.next_steps:
        lines += ["", "next steps:", *_bullets(result.next_steps)]
    if result.warnings:
        lines += ["", "warnings:", *_bullets(result.warnings)]
    if result.outcome in _OUTCOMES and with_prompt:
        lines += [
            "",
            _OUTCOMES[result.outcome].format(new=result.new_session_id, id=result.session_id),
        ]
    if with_prompt and result.prompt and result.outcome in ("restored", "awaiting-answer"):
        lines += ["", "-" * 72, result.prompt]
    return "\n".join(lines)


def resume(result: ResumeTaskResult) -> str:
    """What `resume` prints."""
    data = result.to_wire()
    lines = [
        f"{data['taskContext']['id']} ({data['taskContext']['status']}) in "
        f"{data['sessionId']}: {data['progress']}",
        f"current step: {data.get('currentStep') or '-'}",
    ]
    lines += ["next actions:", *_bullets(list(data.get("nextActions", [])))]
    return "\n".join(lines)


def emergency(result: EmergencyResult) -> str:
    """What `emergency` prints."""
    data = result.to_wire()
    info = data["criticalInfo"]
    lines = ["EMERGENCY RECOVERY - critical context only", ""]
    lines += [f"{key}: {value}" for key, value in info.items() if value not in (None, [], "")]
    if data["urgentTasks"]:
        lines += ["", "urgent tasks:"]
        lines += _bullets(
            [
                f"{t.get('task') or t['sessionId']}: {t.get('reason', '')}"
                for t in data["urgentTasks"]
            ]
        )
    if data["basicContext"]:
        lines += ["", data["basicContext"]]
    if data["warnings"]:
        lines += ["", "warnings:", *_bullets(data["warnings"])]
    return "\n".join(lines)
