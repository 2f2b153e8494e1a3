"""Recovery confidence (DESIGN.md §5): four factors, a weighted score, a decision.

score = w_e·elapsed + w_c·completeness + w_t·taskStatus + w_h·coherence, divided
by the sum of the weights (1.0 with the defaults). Every factor carries a
one-line reason so a user can see *why* a session was or was not resumed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from agent_continuity.model import Task

from .result import Confidence, ConfidenceFactors, Decision, StateDiff
from .settings import RecoverySettings

_DECIMALS = 3


@dataclass(frozen=True, slots=True)
class Factor:
    """One confidence factor: its value in [0, 1] and why."""

    value: float
    reason: str


@dataclass(frozen=True, slots=True)
class CompletenessPart:
    """One part of the saved state that completeness counts.

    Attributes:
        name: What the part is (``checksums``, ``journal``, ...).
        present: Whether it is present and valid.
        note: What is wrong with it when it is not.
    """

    name: str
    present: bool
    note: str = ""


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def describe_hours(hours: float) -> str:
    """A duration in hours as a person would say it (``5 min``, ``3.0 h``, ``2.5 days``)."""
    if hours < 1:
        return f"{round(hours * 60)} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def elapsed_factor(reference: datetime, now: datetime, half_life_hours: float) -> Factor:
    """``0.5 ** (hours / half_life)``: 1.0 right after the interruption, 0.5 a half-life later.

    Args:
        reference: The interruption time (or last activity when there was none).
        now: The current time.
        half_life_hours: Hours after which the factor has halved.
    """
    hours = (now - reference).total_seconds() / 3600
    if hours < 0:
        # A clock that went backwards must not reward the session; treat it as fresh
        # but say so, because the saved times are then suspect.
        return Factor(1.0, "elapsed: the saved time is in the future (clock skew?); counted as 0 h")
    value = 0.5 ** (hours / half_life_hours)
    return Factor(
        _clamp(value),
        f"elapsed: {describe_hours(hours)} since the session stopped "
        f"(halves every {half_life_hours:g} h)",
    )


def completeness_factor(parts: Sequence[CompletenessPart]) -> Factor:
    """The fraction of the saved state's parts that are present and valid."""
    if not parts:
        return Factor(0.0, "completeness: nothing was saved")
    present = [p for p in parts if p.present]
    missing = [f"{p.name} ({p.note})" if p.note else p.name for p in parts if not p.present]
    reason = f"completeness: {len(present)} of {len(parts)} parts present and valid"
    if missing:
        reason += "; missing or damaged: " + ", ".join(missing)
    return Factor(len(present) / len(parts), reason)


def task_status_factor(current_task_id: str | None, tasks: dict[str, Task]) -> Factor:
    """Whether the session's current task still exists and is open.

    * A current task that is known and open (open, in progress, blocked): 1.0.
    * A current task that is done or cancelled, or that no task event ever
      described (its status is unknown): 0.0.
    * No current task but other open tasks: 1.0 (there is work to pick up).
    * No current task and every task closed: 0.5 (the work may be finished;
      resuming is still possible but less useful).
    * No task ever set: 1.0. Nothing can have gone stale, and completeness
      already counts the missing task, so it is not penalised twice.
    """
    if current_task_id:
        task = tasks.get(current_task_id)
        if task is None:
            return Factor(
                0.0, f"taskStatus: current task {current_task_id} is unknown (no task event)"
            )
        if task.status.is_open:
            return Factor(1.0, f"taskStatus: current task {task.id} is {task.status.value}")
        return Factor(0.0, f"taskStatus: current task {task.id} is {task.status.value}")
    if not tasks:
        return Factor(1.0, "taskStatus: no task was ever set (neutral)")
    open_tasks = [t.id for t in tasks.values() if t.status.is_open]
    if open_tasks:
        return Factor(1.0, f"taskStatus: no current task, {len(open_tasks)} open task(s) remain")
    return Factor(0.5, "taskStatus: no current task and every task is closed")


def coherence_factor(diff: StateDiff, active_file_count: int, settings: RecoverySettings) -> Factor:
    """The mean of the coherence checks that apply to this project.

    Checks: the branch is the saved one (git), the saved HEAD is still an
    ancestor of HEAD (git), the active files still exist, and few files
    changed: ``1 / (1 + over / changed_files_scale)`` where ``over`` counts
    changed files beyond ``max_changed_files_for_full_coherence``. Checks
    that cannot apply (no git, no active files) are left out rather than
    counted as passed, so they neither help nor hurt.
    """
    parts: list[tuple[float, str]] = []
    if diff.saved_branch is not None:
        if diff.branch_changed:
            now = diff.current_branch or "no branch"
            parts.append((0.0, f"branch {diff.saved_branch} -> {now}"))
        else:
            parts.append((1.0, f"same branch {diff.saved_branch}"))
    if diff.saved_head_reachable is not None:
        if diff.saved_head_reachable:
            parts.append((1.0, "saved HEAD is an ancestor"))
        else:
            parts.append((0.0, "saved HEAD is no longer an ancestor"))
    missing = len(diff.missing_active_files)
    total = max(active_file_count, missing)
    if total:
        parts.append((1 - missing / total, f"{total - missing} of {total} active files present"))
    changed = diff.changed_file_count
    over = max(0, changed - settings.max_changed_files_for_full_coherence)
    parts.append((1 / (1 + over / settings.changed_files_scale), f"{changed} file(s) changed"))
    value = sum(v for v, _ in parts) / len(parts)
    return Factor(_clamp(value), "coherence: " + "; ".join(text for _, text in parts))


def weighted_score(factors: ConfidenceFactors, settings: RecoverySettings) -> float:
    """The weighted mean of the factors, in [0, 1]."""
    w = settings.weights
    total = (
        w.elapsed * factors.elapsed
        + w.completeness * factors.completeness
        + w.task_status * factors.task_status
        + w.coherence * factors.coherence
    )
    # The defaults add up to one; dividing anyway would only add float noise.
    if abs(w.total - 1.0) > 1e-9:
        total /= w.total
    return _clamp(total)


def decide(
    score: float, settings: RecoverySettings, *, ceiling: Decision | None = None
) -> Decision:
    """Map a score to the protocol's decision.

    ``score >= auto_resume_threshold`` resumes by itself, ``score >= prompt_threshold``
    asks the user, anything lower starts a new session. Both comparisons include
    the threshold (0.80 exactly resumes).

    Args:
        score: The confidence score (the engine passes the rounded one, so the
            decision always matches the score a user sees).
        settings: Where the thresholds come from.
        ceiling: The most trusting decision allowed (``"prompt"`` after a failed
            critical check); None for no limit.
    """
    decision: Decision
    if score >= settings.auto_resume_threshold:
        decision = "auto-resume"
    elif score >= settings.prompt_threshold:
        decision = "prompt"
    else:
        decision = "new-session"
    order: tuple[Decision, ...] = ("new-session", "prompt", "auto-resume")
    if ceiling is not None and order.index(decision) > order.index(ceiling):
        return ceiling
    return decision


def build_confidence(
    elapsed: Factor,
    completeness: Factor,
    task_status: Factor,
    coherence: Factor,
    settings: RecoverySettings,
) -> Confidence:
    """Assemble the :class:`Confidence` block: rounded factors, score, weights, reasons."""
    raw = ConfidenceFactors(
        elapsed=elapsed.value,
        completeness=completeness.value,
        task_status=task_status.value,
        coherence=coherence.value,
    )
    w = settings.weights
    return Confidence(
        score=round(weighted_score(raw, settings), _DECIMALS),
        factors=ConfidenceFactors(
            elapsed=round(elapsed.value, _DECIMALS),
            completeness=round(completeness.value, _DECIMALS),
            task_status=round(task_status.value, _DECIMALS),
            coherence=round(coherence.value, _DECIMALS),
        ),
        weights=ConfidenceFactors(
            elapsed=w.elapsed,
            completeness=w.completeness,
            task_status=w.task_status,
            coherence=w.coherence,
        ),
        reasons=[elapsed.reason, completeness.reason, task_status.reason, coherence.reason],
    )


def no_confidence(reason: str, settings: RecoverySettings) -> Confidence:
    """The confidence of a recovery that found nothing: every factor zero."""
    zero = Factor(0.0, reason)
    confidence = build_confidence(zero, zero, zero, zero, settings)
    return confidence.model_copy(update={"reasons": [reason]})


__all__ = [
    "CompletenessPart",
    "Factor",
    "build_confidence",
    "coherence_factor",
    "completeness_factor",
    "decide",
    "describe_hours",
    "elapsed_factor",
    "no_confidence",
    "task_status_factor",
    "weighted_score",
]
