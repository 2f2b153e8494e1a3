"""Gathering the evidence for predictive context loading (the engine stays pure).

The recovery engine predicts the next agent's context
(:mod:`agent_continuity.recovery.prediction`) from data only; this module
reads that data: the project's recent git history (files changed together,
and one after the other) and the earlier sessions of the same project and
user from the registry (their task, files and decisions; no journal is read).
Each source that cannot be read is left out: a prediction never makes a
recovery fail.
"""

from __future__ import annotations

from datetime import UTC, datetime

from agent_continuity.errors import ContinuityError
from agent_continuity.model import SessionRecord
from agent_continuity.recovery.prediction import (
    Commit,
    PredictionEvidence,
    SessionWork,
    session_work,
)
from agent_continuity.runtime import Runtime

#: The commits of history read (git log; a few milliseconds per hundred).
HISTORY_COMMITS = 300
#: The earlier sessions considered, the most recently active first.
EARLIER_SESSIONS = 50


def parse_log(output: str) -> list[Commit]:
    """Commits from ``git log --format=%x00%H%x1f%s --name-only`` output, in its order."""
    commits = []
    for block in output.split("\x00")[1:]:
        lines = [line for line in block.splitlines() if line.strip()]
        if lines:
            sha, _, subject = lines[0].partition("\x1f")
            commits.append(Commit(sha=sha, files=tuple(lines[1:]), message=subject))
    return commits


def recent_commits(rt: Runtime) -> list[Commit]:
    """The project's newest commits with their files, newest first; none outside git."""
    if rt.observer is None or not (rt.project_root / ".git").exists():
        return []
    from agent_continuity.capture.git import GitError, run_git

    try:
        done = run_git(
            [
                "log",
                "--no-merges",
                "--topo-order",
                f"-n{HISTORY_COMMITS}",
                "--format=%x00%H%x1f%s",
                "--name-only",
            ],
            rt.project_root,
        )
    except GitError:
        return []  # no commits yet, or git is missing: predict from the sessions alone
    return parse_log(done.stdout.decode("utf-8", "replace"))


def earlier_sessions(rt: Runtime, record: SessionRecord) -> list[SessionWork]:
    """The other sessions of the same user and project, the most recently active first."""
    try:
        records = rt.store.list_sessions()
    except ContinuityError:
        return []
    same = [
        r
        for r in records
        if r.id != record.id
        and r.user_id == record.user_id
        and (not record.project_dir or r.project_dir == record.project_dir)
    ]
    same.sort(key=lambda r: r.last_activity or datetime.min.replace(tzinfo=UTC), reverse=True)
    return [session_work(r) for r in same[:EARLIER_SESSIONS]]


def gather_evidence(rt: Runtime, record: SessionRecord) -> PredictionEvidence:
    """Everything the prediction of a session's next context may use besides the session."""
    return PredictionEvidence(commits=recent_commits(rt), earlier=earlier_sessions(rt, record))
