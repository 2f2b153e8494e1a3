"""Predictive context loading: what the next agent will most likely need, and why.

Pure: :func:`predict_context` takes the recovered session's work and the
evidence the caller gathered (the project's recent git history, the earlier
sessions of the same project and user, from the registry) and returns scored
predictions; it reads nothing itself. The caller (``restore``) gathers the
evidence; benchmarks/prediction.py feeds it replayed git histories and
measures the file predictions against the next commit.

Files are scored from four sources, each a probability-like score in [0, 1],
combined as independent evidence (``1 - prod(1 - s)``):

* **this session's own file events**, the most recent highest;
* **co-change**: files changed together with those in the git history
  (``P(g | f)`` over the commits that touched ``f``), weighted by how strongly
  ``f`` itself is predicted;
* **earlier sessions on the same task**: the files they touched;
* **recency**: the files of the newest commits, a weak prior.

Each prediction's reason names the evidence that gave its score, so a person
can check it (``git log -- PATH``, ``continuity show SESSION``).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from agent_continuity.model import SessionRecord, WireModel

#: Commits touching more files than this are left out of co-change (mass
#: renames, reformatting): they say little about which files go together.
MAX_COMMIT_FILES = 40
OWN_TOP = 0.9  # this session's most recent file
OWN_DECAY = 0.93  # each older file of the session
CO_CHANGE_WEIGHT = 0.3
SAME_TASK_WEIGHT = 0.6
RECENT_TOP = 0.35  # the files of the newest commit, as a prior
RECENT_DECAY = 0.75  # each older commit
RECENT_COMMITS = 8
FOLLOW_WEIGHT = 0.85  # files the history changed right after the session's files
NAME_WEIGHT = 0.6  # files whose names share a word with the session's files
FREQUENT_TOP = 0.3  # the file changed in the most recent commits, as a prior
FREQUENT_WINDOW = 100  # commits counted for it
_WORD = re.compile(r"[a-z0-9]{3,}")
_STOP = frozenset(
    "the and for with from into that this then than are was were has have use used "
    "not but all any can will should must when what which who how now new add".split()
)


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
class Commit:
    """One commit of the project's history."""

    sha: str
    files: tuple[str, ...]


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


def co_change(commits: Sequence[Commit]) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """How often each file changed, and with which others (commits over the size cap skipped)."""
    touched: Counter[str] = Counter()
    together: dict[str, Counter[str]] = defaultdict(Counter)
    for commit in commits:
        files = set(commit.files)
        if not files or len(files) > MAX_COMMIT_FILES:
            continue
        for f in files:
            touched[f] += 1
            for g in files:
                if g != f:
                    together[f][g] += 1
    return touched, together


def follows(commits: Sequence[Commit]) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """For each file, the files changed in the commit right after one touching it.

    ``commits`` is newest first. Returns how many commits touching each file
    had a successor, and the successors' files by how often.
    """
    had_next: Counter[str] = Counter()
    after: dict[str, Counter[str]] = defaultdict(Counter)
    for newer, older in itertools.pairwise(commits):
        if len(newer.files) > MAX_COMMIT_FILES or len(older.files) > MAX_COMMIT_FILES:
            continue
        successors = set(newer.files)
        for f in set(older.files):
            had_next[f] += 1
            for g in successors:
                after[f][g] += 1
    return had_next, after


_GENERIC = frozenset({"test", "tests", "src", "lib", "init", "main", "index", "py", "md", "txt"})


def _name_words(path: str) -> frozenset[str]:
    """The words of a file's name, without its folder or extension (``test_cli_search.py``:
    cli, search)."""
    stem = path.rsplit("/", 1)[-1].split(".", 1)[0].lower()
    return frozenset(w for w in re.split(r"[^a-z0-9]+", stem) if len(w) > 2 and w not in _GENERIC)


def rank_files(
    own: Sequence[str],
    evidence: PredictionEvidence,
    *,
    task: str | None = None,
    limit: int = 10,
) -> list[tuple[str, float, str]]:
    """The files most likely touched next: (path, score, reason), best first.

    Args:
        own: The files this session touched, oldest first.
        evidence: Git history and earlier sessions.
        task: This session's task (earlier sessions on it count).
        limit: How many.
    """
    scored: dict[str, _Scored] = defaultdict(_Scored)
    recent_own = list(dict.fromkeys(reversed(own)))  # newest first, each once
    seeds: dict[str, float] = {}
    for rank, path in enumerate(recent_own):
        score = OWN_TOP * OWN_DECAY**rank
        seeds[path] = score
        where = "the latest file" if rank == 0 else f"{rank + 1}th most recent of its files"
        scored[path].add(score, f"changed in this session ({where})")
    same_task = [s for s in evidence.earlier if task and s.task == task]
    for session in same_task:
        for path in dict.fromkeys(session.files):
            share = sum(path in s.files for s in same_task) / len(same_task)
            scored[path].add(
                SAME_TASK_WEIGHT * share, f"touched by {session.session_id}, also on {task}"
            )
            seeds.setdefault(path, SAME_TASK_WEIGHT * share * 0.5)
    for index, commit in enumerate(evidence.commits[:RECENT_COMMITS]):
        if len(commit.files) > MAX_COMMIT_FILES:
            continue
        for path in commit.files:
            score = RECENT_TOP * RECENT_DECAY**index
            scored[path].add(score, f"changed in recent commit {commit.sha[:8]}")
            seeds.setdefault(path, score)
    window = [c for c in evidence.commits[:FREQUENT_WINDOW] if len(c.files) <= MAX_COMMIT_FILES]
    frequent = Counter(path for commit in window for path in set(commit.files))
    if frequent:
        most = frequent.most_common(1)[0][1]
        for path, count in frequent.items():
            if count > 1:
                scored[path].add(
                    FREQUENT_TOP * count / most,
                    f"changed in {count} of the last {len(window)} commits",
                )
    known = {path for commit in evidence.commits for path in commit.files}
    by_word: dict[str, set[str]] = defaultdict(set)
    for path in known:
        for word in _name_words(path):
            by_word[word].add(path)
    for seed in recent_own:
        words = _name_words(seed)
        for word in words:
            for other in by_word.get(word, ()):
                if other != seed:
                    share = len(words & _name_words(other)) / len(words | _name_words(other))
                    scored[other].add(
                        NAME_WEIGHT * seeds[seed] * share,
                        f"its name shares {word!r} with {seed}, changed in this session",
                    )
    had_next, after = follows(evidence.commits)
    for seed, weight in seeds.items():
        seen = had_next.get(seed, 0)
        for other, count in after.get(seed, Counter()).items():
            scored[other].add(
                FOLLOW_WEIGHT * weight * count / (seen + 1),
                f"changed in the commit after one touching {seed}, {count} of {seen} times",
            )
    touched, together = co_change(evidence.commits)
    for seed, weight in seeds.items():
        seen = touched.get(seed, 0)
        if not seen:
            continue
        for other, count in together[seed].items():
            # Laplace-smoothed: one shared commit out of one is not certainty.
            conditional = count / (seen + 1)
            scored[other].add(
                CO_CHANGE_WEIGHT * weight * conditional,
                f"changed together with {seed} in {count} of the {seen} commits touching it",
            )
    ranked = sorted(scored.items(), key=lambda item: (-item[1].score, item[0]))
    return [(path, round(s.score, 3), s.reason) for path, s in ranked[:limit]]


def _words(*texts: str | None) -> set[str]:
    found: set[str] = set()
    for text in texts:
        if text:
            found.update(w for w in _WORD.findall(text.lower()) if w not in _STOP)
    return found


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
        for path, score, reason in rank_files(work.files, evidence, task=work.task, limit=files)
    ]
    predicted += _related_sessions(work, evidence, sessions)
    predicted += _decisions(work, evidence, decisions)
    order = {"file": 0, "decision": 1, "session": 2}
    predicted.sort(key=lambda p: (-p.score, order[p.kind], p.ref))
    return predicted
