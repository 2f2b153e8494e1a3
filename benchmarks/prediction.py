"""Predictive context loading, measured: recall@10 of the files the next commit touched.

Replays real git histories commit by commit. At each commit C (the "next
commit"), the interrupted session made the commits just before it (one, or
three: ``--session-commits``): the session's own file events are their files,
and the evidence is the history before them (the commits a recovery would
find in ``git log``). Commits are replayed in topological order, so a
branch's commits follow each other as its session made them. Two predictors name ten files:

* **baseline**: the most recently modified files (the session's, newest
  first, then those of the commits before it);
* **predicted**: :func:`agent_continuity.recovery.prediction.rank_files`, the
  function ``recover`` runs (own files, co-change in the history, recency).

recall@10 is the share of C's files among the ten, averaged over the commits
(merges and commits of more than 40 files left out, as are the first 10)::

    python benchmarks/prediction.py                      # this repository's history
    python benchmarks/prediction.py --repo PATH --repo PATH2
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from agent_continuity.recovery.prediction import (
    MAX_COMMIT_FILES,
    Commit,
    PredictionEvidence,
    rank_files,
)

ROOT = Path(__file__).resolve().parent.parent
HISTORY = 1000  # commits of history a recovery reads (prediction_reading.HISTORY_COMMITS)
K = 10


def history(repo: Path) -> list[Commit]:
    """The repository's non-merge commits, oldest first, with the files each changed."""
    out = subprocess.run(
        [
            "git",
            "-c",
            "core.quotepath=off",
            "log",
            "--no-merges",
            "--topo-order",
            "--reverse",
            "--format=%x00%H",
            "--name-only",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    commits = []
    for block in out.split("\x00")[1:]:
        lines = [line for line in block.splitlines() if line.strip()]
        if lines:
            commits.append(Commit(sha=lines[0], files=tuple(lines[1:])))
    return commits


def baseline(before: list[Commit], own: list[str]) -> list[str]:
    """The most recently modified files: the session's own (newest first), then older commits'."""
    ranked = list(dict.fromkeys(reversed(own)))
    for commit in before:
        for path in commit.files:
            if path not in ranked:
                ranked.append(path)
        if len(ranked) >= K:
            break
    return ranked[:K]


def replay(repo: Path, session_commits: int, skip: int = 10) -> dict[str, float]:
    """recall@10 of both predictors over one repository's history.

    Args:
        repo: The repository.
        session_commits: How many commits before the next one the session made.
        skip: Commits at the start with too little history to replay.
    """
    commits = history(repo)
    recall_base = recall_ours = 0.0
    counted = 0
    for i in range(max(session_commits + 1, skip), len(commits)):
        nxt = commits[i]
        session = commits[i - session_commits : i]  # oldest first
        own = [path for commit in session for path in commit.files]
        if not nxt.files or len(nxt.files) > MAX_COMMIT_FILES or not own:
            continue
        before = commits[max(0, i - session_commits - HISTORY) : i - session_commits][::-1]
        truth = set(nxt.files)
        ours = [p for p, _, _ in rank_files(own, PredictionEvidence(commits=before), limit=K)]
        recall_base += len(truth & set(baseline(before, own))) / len(truth)
        recall_ours += len(truth & set(ours)) / len(truth)
        counted += 1
    return {
        "commits": float(len(commits)),
        "counted": float(counted),
        "baseline": recall_base / max(1, counted),
        "predicted": recall_ours / max(1, counted),
    }


def main() -> None:
    """Replay each repository and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", action="append", default=None, help="a git repository")
    parser.add_argument(
        "--session-commits",
        type=int,
        action="append",
        default=None,
        help="commits the interrupted session made (default: 1 and 3)",
    )
    args = parser.parse_args()
    repos = [Path(r) for r in args.repo] if args.repo else [ROOT]
    spans = args.session_commits or [1, 3]
    print("recall@10 of the files the next commit touched (higher is better)")
    print(
        f"{'repository':<24}  {'session':>7}  {'commits':>7}  {'replayed':>8}  "
        f"{'baseline':>8}  {'predicted':>9}  {'gain':>6}"
    )
    for repo in repos:
        for span in spans:
            r = replay(repo, span)
            gain = r["predicted"] / r["baseline"] if r["baseline"] else float("inf")
            print(
                f"{repo.resolve().name[:24]:<24}  {span:>5} c  {int(r['commits']):>7}  "
                f"{int(r['counted']):>8}  {r['baseline']:>8.3f}  {r['predicted']:>9.3f}  "
                f"{gain:>5.2f}x"
            )


if __name__ == "__main__":
    main()
