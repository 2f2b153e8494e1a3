"""Predictive context loading: what the next agent will most likely need, and why.

Pure: :func:`predict_context` takes the recovered session's work and the
evidence the caller gathered (the project's recent git history, the earlier
sessions of the same project and user, from the registry) and returns scored
predictions; it reads nothing itself. The caller (``restore``) gathers the
evidence; benchmarks/prediction.py feeds it replayed git histories and
measures the file predictions against the next commit.

Files are ranked by :mod:`agent_continuity.recovery.file_ranking` (the
session's own files, association rules mined from the git history, names,
folders, the session's words, recency and frequency, earlier sessions on the
same task), related sessions and decisions here.

Each prediction's reason names the evidence that gave its score, so a person
can check it (``git log -- PATH``, ``continuity show SESSION``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from agent_continuity.model import SessionRecord, WireModel

from . import file_ranking
from .file_ranking import MAX_COMMIT_FILES, WEIGHTS, Commit, SessionEvidence, Weights

__all__ = [
    "MAX_COMMIT_FILES",
    "Commit",
    "PredictedContext",
    "PredictionEvidence",
    "SessionWork",
    "Weights",
    "predict_context",
    "rank_files",
    "session_work",
]


class PredictedContext(WireModel):
    """One item of ``recover --json``'s ``predictedContext``.

    Attributes:
        kind: ``file``, ``session`` or ``decision``.
        ref: The file's path, the session's id, or the decision's text.
        reason: The evidence, in words a person can check.
        score: How likely the next agent needs it, 0 to 1.
    """

    kind: Literal["file", "session", "decision"]
    ref: str
    reason: str
    score: float


@dataclass(frozen=True, slots=True)
class SessionWork:
    """What one session worked on, as the registry (or the recovered view) says.

    Attributes:
        session_id: The session.
        task: Its current task.
        files: The files it touched, oldest first, each once (its active files).
        decisions: Its key decisions, oldest first.
        next_steps: What it planned next.
        current_step: The step it was on.
        last_activity: When it was last active.
    """

    session_id: str
    task: str | None = None
    files: Sequence[str] = ()
    decisions: Sequence[str] = ()
    next_steps: Sequence[str] = ()
    current_step: str | None = None
    last_activity: datetime | None = None


def session_work(record: SessionRecord) -> SessionWork:
    """What a session worked on, as its record (registry entry or recovered view) says."""
    return SessionWork(
        session_id=record.id,
        task=record.context.current_task,
        files=tuple(record.context.active_files),
        decisions=tuple(record.context.key_decisions),
        next_steps=tuple(record.state.next_steps),
        current_step=record.state.current_step,
        last_activity=record.last_activity,
    )


@dataclass(frozen=True, slots=True)
class PredictionEvidence:
    """What the caller gathered for a prediction.

    Attributes:
        commits: The project's recent commits, newest first (empty outside git).
        earlier: Other sessions of the project and user, newest first.
    """

    commits: Sequence[Commit] = ()
    earlier: Sequence[SessionWork] = ()


@dataclass(slots=True)
class _Scored:
    """The evidence for one candidate: (score, reason) pairs, combined as independent."""

    parts: list[tuple[float, str]] = field(default_factory=list)

    def add(self, score: float, reason: str) -> None:
        if score > 0:
            self.parts.append((min(score, 0.99), reason))

    @property
    def score(self) -> float:
        missing = 1.0
        for score, _ in self.parts:
            missing *= 1 - score
        return 1 - missing

    @property
    def reason(self) -> str:
        ranked = sorted(self.parts, key=lambda p: -p[0])
        reason = ranked[0][1]
        if len(ranked) > 1:
            reason += f"; also {ranked[1][1]}"
        return reason


def rank_files(
    own: Sequence[str],
    evidence: PredictionEvidence,
    *,
    task: str | None = None,
    text: Sequence[str | None] = (),
    limit: int = 10,
    weights: Weights = WEIGHTS,
) -> list[tuple[str, float, str]]:
    """The files most likely touched next: (path, score, reason), best first.

    Args:
        own: The files this session touched, oldest first.
        evidence: Git history and earlier sessions.
        task: This session's task (earlier sessions on it count).
        text: The session's words: its task, step, next steps and decisions.
        limit: How many.
        weights: How much each signal counts (:data:`file_ranking.WEIGHTS`).
    """
    same_task = [s for s in evidence.earlier if task and s.task == task]
    gathered = SessionEvidence(
        commits=evidence.commits,
        same_task=[tuple(s.files) for s in same_task],
        same_task_ids=[s.session_id for s in same_task],
    )
    said = [t for t in text if t]
    return file_ranking.rank_files(own, gathered, text=said, limit=limit, weights=weights)


def _words(*texts: str | None) -> set[str]:
    return file_ranking.words(*texts, stop=file_ranking.STOP_WORDS)


def _related_sessions(
    work: SessionWork, evidence: PredictionEvidence, limit: int
) -> list[PredictedContext]:
    own_files = set(work.files)
    out: list[PredictedContext] = []
    for session in evidence.earlier:
        if session.session_id == work.session_id:
            continue
        parts = _Scored()
        if work.task and session.task == work.task:
            parts.add(0.7, f"worked on the same task {work.task}")
        shared = own_files & set(session.files)
        if shared:
            share = len(shared) / max(1, len(own_files))
            example = sorted(shared)[0]
            parts.add(
                0.6 * share, f"touched {len(shared)} of this session's files (e.g. {example})"
            )
        if parts.parts:
            out.append(
                PredictedContext(
                    kind="session",
                    ref=session.session_id,
                    reason=parts.reason,
                    score=round(parts.score, 3),
                )
            )
    out.sort(key=lambda p: -p.score)
    return out[:limit]


def _decisions(
    work: SessionWork, evidence: PredictionEvidence, limit: int
) -> list[PredictedContext]:
    ahead = [*work.next_steps[:3], work.current_step or ""]
    target = _words(*ahead, work.task)
    candidates: list[tuple[str, str | None, int]] = [
        (text, None, age) for age, text in enumerate(reversed(work.decisions))
    ]
    for session in evidence.earlier:
        if work.task and session.task == work.task:
            candidates += [(text, session.session_id, 5) for text in reversed(session.decisions)]
    out: dict[str, PredictedContext] = {}
    for text, source, age in candidates:
        if text in out:
            continue
        parts = _Scored()
        shared = sorted(_words(text) & target)
        if shared:
            step = next((s for s in ahead if _words(s) & set(shared)), work.task or "")
            overlap = len(shared) / max(1, min(len(target), len(_words(text))))
            parts.add(
                0.3 + 0.5 * overlap, f"shares {', '.join(shared[:3])} with the next step {step!r}"
            )
        if source is None:
            parts.add(
                0.5 * 0.7**age,
                "the latest decision of this session"
                if age == 0
                else "a recent decision of this session",
            )
        else:
            parts.add(0.3, f"decided in {source}, on the same task")
        if parts.score >= 0.25:
            out[text] = PredictedContext(
                kind="decision", ref=text, reason=parts.reason, score=round(parts.score, 3)
            )
    return sorted(out.values(), key=lambda p: -p.score)[:limit]


def predict_context(
    work: SessionWork,
    evidence: PredictionEvidence,
    *,
    files: int = 10,
    sessions: int = 3,
    decisions: int = 3,
) -> list[PredictedContext]:
    """The context the next agent will most likely need, best first.

    Args:
        work: The recovered session.
        evidence: What the caller gathered (git history, earlier sessions).
        files: How many files at most.
        sessions: How many related sessions at most.
        decisions: How many decisions at most.

    Returns:
        Files, related sessions and decisions, each scored 0-1 with its reason.
    """
    predicted = [
        PredictedContext(kind="file", ref=path, reason=reason, score=score)
        for path, score, reason in rank_files(
            work.files,
            evidence,
            task=work.task,
            text=[work.task, work.current_step, *work.next_steps, *work.decisions],
            limit=files,
        )
    ]
    predicted += _related_sessions(work, evidence, sessions)
    predicted += _decisions(work, evidence, decisions)
    order = {"file": 0, "decision": 1, "session": 2}
    predicted.sort(key=lambda p: (-p.score, order[p.kind], p.ref))
    return predicted
