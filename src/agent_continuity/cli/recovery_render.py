"""Text for people about recoveries. JSON output never goes through here."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from agent_continuity import EmergencyResult, RecoveryResult, ResumeTaskResult

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
    from agent_continuity import RECOVERY_STAGES

    with click.progressbar(
        length=len(RECOVERY_STAGES), label="recovering", file=sys.stderr, show_eta=False
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
    if with_prompt:
        lines += _outcome(result)
    return "\n".join(lines)


def _outcome(result: RecoveryResult) -> list[str]:
    lines = []
    if result.outcome in _OUTCOMES:
        lines += [
            "",
            _OUTCOMES[result.outcome].format(new=result.new_session_id, id=result.session_id),
        ]
    if result.prompt and result.outcome in ("restored", "awaiting-answer"):
        lines += ["", "-" * 72, result.prompt]
    return lines


def after_answer(result: RecoveryResult) -> str:
    """What `recover` prints once the user answered: the outcome and the prompt.

    The summary was shown with the question; it is not printed again.
    """
    return "\n".join(_outcome(result)).lstrip("\n")


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
    """What `emergency` prints: each fact on its line, each list as bullets."""
    info = result.critical_info
    lines = ["EMERGENCY RECOVERY - critical context only", ""]
    branch = info.working_branch or "-"
    if info.head:
        branch += f" at {info.head[:12]}"
    lines += [
        f"phase: {info.current_phase or '-'}",
        f"project health: {info.project_health}",
        f"branch: {branch}",
        f"build: {info.build_status}",
    ]
    for title, items in (
        ("critical issues", info.critical_issues),
        ("recent completions", info.recent_completions),
        ("last decisions", info.last_decisions),
    ):
        if items:
            lines += [f"{title}:", *_bullets(items)]
    if result.urgent_tasks:
        lines += ["", "urgent tasks:"]
        for t in result.urgent_tasks[:12]:
            where = ", ".join(p for p in (t.session_status, f"{t.progress}% done") if p)
            lines.append(f"  - {t.task or '(no task)'} in {t.session_id} ({where}): {t.reason}")
            details = [f"step {t.step}"] if t.step else []
            details += [f"next {', '.join(t.next_steps)}"] if t.next_steps else []
            details += [f"blocked by {', '.join(t.blockers)}"] if t.blockers else []
            if details:
                lines.append(f"    {'; '.join(details)}")
        if len(result.urgent_tasks) > 12:
            lines.append(f"  ... and {len(result.urgent_tasks) - 12} more")
    if result.next_steps:
        lines += ["", "next steps:", *_bullets(result.next_steps)]
    if result.basic_context:
        lines += ["", result.basic_context]
    if result.warnings:
        lines += ["", "warnings:", *_bullets(result.warnings)]
    return "\n".join(lines)
