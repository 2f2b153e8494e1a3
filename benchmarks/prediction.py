"""Predictive context loading, measured: recall@10 of the files the next commit touched.

Replays real project histories commit by commit: git repositories (``--repo``,
this one by default) and the histories installed packages ship in
``/usr/share/doc/*/changelog.gz`` (``benchmarks/shipped_histories.py``; the
newest ``--max-commits`` of each, ``--no-shipped`` to leave them out). At each
non-merge commit C (the "next commit"), the interrupted session made the
commits just before it on C's first-parent line (one, or three:
``--session-commits``): the session's own file events are their files, its
words their messages (standing in for the task, steps and decisions a
recovery reads), and the evidence is what ``git log`` showed it: the
ancestors of its first commit only, newest first, at most
``prediction_reading.HISTORY_COMMITS`` of them (a changelog keeps no
branches: there, the commits it lists before). Nothing of C, of the commits
after it, or of branches not yet merged is seen. Two predictors name ten files
from the same evidence:

* **baseline**: the most recently modified files (the session's, newest
  first, then those of the commits before it);
* **predicted**: :func:`agent_continuity.recovery.prediction.rank_files`, the
  function ``recover`` runs, with its weights (``file_ranking.WEIGHTS``).

recall@k is the share of C's files among the first k, averaged over the
commits (commits of more than 40 files left out, as are the first 10); MRR
the reciprocal rank of C's first file among the ten. A history's gain has a
95% interval by bootstrap over its replayed commits; the pooled row's
resamples whole histories. "tuning half" is the gain on the half the weights
were tuned on, for comparison (an optimistic figure). The first half of each
history (by commit order) is for tuning, the second is reported: ``--tune``
searches the weights on the first halves (coordinate ascent on recall@10) and
prints them with their figures on the second halves, never the other way round::

    python benchmarks/prediction.py                      # this repository and the shipped ones
    python benchmarks/prediction.py --repo PATH --repo PATH2 --no-shipped --tune
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shipped_histories

from agent_continuity.prediction_reading import HISTORY_COMMITS
from agent_continuity.recovery.file_ranking import (
    MAX_COMMIT_FILES,
    SIGNALS,
    WEIGHTS,
    Commit,
    FileSignals,
    SessionEvidence,
    Weights,
    combine,
    file_signals,
)

ROOT = Path(__file__).resolve().parent.parent
K = 10
GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True, slots=True)
class Node:
    """One commit of the replayed history, merges included (they carry ancestry)."""

    commit: Commit
    parents: tuple[str, ...]


@dataclass(slots=True)
class Point:
    """One replayed commit: what the session had, and what the next commit touched."""

    index: int
    truth: frozenset[str]
    own: list[str]
    before: list[Commit]
    signals: FileSignals


def history(repo: Path) -> list[Node]:
    """Every commit, parents before children, with its parents, subject and files."""
    out = subprocess.run(
        [
            "git",
            "-c",
            "core.quotepath=off",
            "log",
            "--topo-order",
            "--reverse",
            "--format=%x00%H%x1f%P%x1f%s",
            "--name-only",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    nodes = []
    for block in out.split("\x00")[1:]:
        head, _, rest = block.partition("\n")
        sha, parents, subject = head.split("\x1f", 2)
        files = tuple(line for line in rest.splitlines() if line.strip())
        nodes.append(Node(Commit(sha, files, subject), tuple(parents.split())))
    return nodes


def linear(commits: list[Commit], newest: int) -> list[Node]:
    """A shipped history (newest first) as nodes, oldest first: its newest ``newest`` commits,
    each the parent of the next (a changelog keeps no merges or branches)."""
    kept = list(reversed([c for c in commits if c.files][:newest]))
    return [Node(commit, (kept[i - 1].sha,) if i else ("root",)) for i, commit in enumerate(kept)]


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


def points(nodes: list[Node], session_commits: int, skip: int = 10) -> list[Point]:
    """The replayed commits with the session before each and the history it could see."""
    position = {node.commit.sha: i for i, node in enumerate(nodes)}
    ancestors: list[set[int]] = []
    for node in nodes:  # parents come first in this order
        mine: set[int] = set()
        for parent in node.parents:
            if parent in position:
                mine |= ancestors[position[parent]] | {position[parent]}
        ancestors.append(mine)
    out = []
    for i, node in enumerate(nodes):
        files = node.commit.files
        if len(node.parents) != 1 or not files or len(files) > MAX_COMMIT_FILES:
            continue
        session: list[int] = []  # newest first, along the first parents, merges passed over
        at = position.get(node.parents[0])
        while at is not None and len(session) < session_commits:
            if len(nodes[at].parents) <= 1:
                session.append(at)
            parents = nodes[at].parents
            at = position.get(parents[0]) if parents else None
        if len(session) < session_commits:
            continue
        seen = sorted(
            (j for j in ancestors[session[-1]] if len(nodes[j].parents) <= 1), reverse=True
        )
        if len(seen) < skip:
            continue
        before = [nodes[j].commit for j in seen[:HISTORY_COMMITS]]
        own = [path for j in reversed(session) for path in nodes[j].commit.files]
        if not own:
            continue
        text = [nodes[j].commit.message for j in reversed(session)]
        evidence = SessionEvidence(commits=before)
        out.append(Point(i, frozenset(files), own, before, file_signals(own, evidence, text)))
    return out


def scores(ranked: list[str], truth: frozenset[str]) -> tuple[float, float, float]:
    """recall@5, recall@10 and the reciprocal rank of the first hit (0 if none in ten)."""
    first = next((1 / (n + 1) for n, path in enumerate(ranked[:K]) if path in truth), 0.0)
    return (
        len(truth & set(ranked[:5])) / len(truth),
        len(truth & set(ranked[:K])) / len(truth),
        first,
    )


def measure(replayed: Iterable[Point], weights: Weights | None) -> tuple[float, float, float]:
    """Mean recall@5, recall@10 and MRR of one predictor (None: the baseline)."""
    total = [0.0, 0.0, 0.0]
    n = 0
    for p in replayed:
        if weights is None:
            ranked = baseline(p.before, p.own)
        else:
            ranked = [path for path, _, _ in combine(p.signals, weights, K)]
        for m, value in enumerate(scores(ranked, p.truth)):
            total[m] += value
        n += 1
    return (total[0] / max(1, n), total[1] / max(1, n), total[2] / max(1, n))


@dataclass(frozen=True, slots=True)
class Matrix:
    """One point's signals as an array (candidates by path, signals in ``SIGNALS`` order)."""

    strengths: np.ndarray
    hits: np.ndarray  # True where the candidate is one of the next commit's files
    truth: int


def matrix(p: Point) -> Matrix:
    paths = sorted(p.signals.by_file)
    strengths = np.zeros((len(paths), len(SIGNALS)))
    for row, path in enumerate(paths):
        by_signal = p.signals.by_file[path]
        for column, name in enumerate(SIGNALS):
            if name in by_signal:
                strengths[row, column] = by_signal[name].strength
    hits = np.array([path in p.truth for path in paths], dtype=bool)
    return Matrix(strengths, hits, len(p.truth))


def fast_recall(matrices: list[Matrix], weights: Weights) -> float:
    """Mean recall@10 of ``combine`` with these weights, vectorised (for the tuning's search)."""
    w = np.array([getattr(weights, name) for name in SIGNALS])
    total = 0.0
    for m in matrices:
        score = 1 - np.prod(1 - np.minimum(m.strengths * w, 0.99), axis=1)
        top = np.argsort(-score, kind="stable")[:K]
        top = top[score[top] > 0]
        total += m.hits[top].sum() / m.truth
    return total / max(1, len(matrices))


def tune(tuning: list[Point], passes: int = 3) -> Weights:
    """Coordinate ascent on recall@10 over the tuning points, from every weight at 0.3."""
    matrices = [matrix(p) for p in tuning]
    best = Weights(**dict.fromkeys(SIGNALS, 0.3))
    best_recall = fast_recall(matrices, best)
    for _ in range(passes):
        improved = False
        for name in SIGNALS:
            for value in GRID:
                trial = dataclasses.replace(best, **{name: value})
                recall = fast_recall(matrices, trial)
                if recall > best_recall + 1e-9:
                    best, best_recall, improved = trial, recall, True
        if not improved:
            break
    return best


def interval(
    groups: list[list[Point]], weights: Weights, rounds: int = 1000
) -> tuple[float, float]:
    """A 95% bootstrap interval of recall@10's gain over the baseline, resampling the groups.

    A history's row resamples its commits (a group each); the pooled row whole
    histories (they are not independent commit by commit, and one history
    should not pass for many).
    """
    sums = []
    for group in groups:
        base = ours = 0.0
        for p in group:
            base += scores(baseline(p.before, p.own), p.truth)[1]
            ours += scores([f for f, _, _ in combine(p.signals, weights, K)], p.truth)[1]
        sums.append((base, ours))
    draw = random.Random(16)
    gains = []
    for _ in range(rounds):
        sample = [sums[draw.randrange(len(sums))] for _ in sums]
        base = sum(b for b, _ in sample)
        gains.append(sum(o for _, o in sample) / base if base else 1.0)
    gains.sort()
    return gains[int(0.025 * rounds)], gains[int(0.975 * rounds) - 1]


@dataclass(slots=True)
class Replay:
    """One history replayed with sessions of ``span`` commits."""

    name: str
    span: int
    commits: int
    tuning: list[Point]
    reported: list[Point]
    cost: float


def replay(histories: list[tuple[str, list[Node]]], spans: list[int]) -> list[Replay]:
    """Every history, replayed with sessions of each span (progress on stderr)."""
    out = []
    for number, (name, nodes) in enumerate(histories, 1):
        print(f"[{number}/{len(histories)}] replaying {name}", file=sys.stderr, flush=True)
        half = len(nodes) // 2
        for span in spans:
            started = time.perf_counter()
            replayed = points(nodes, span)
            cost = (time.perf_counter() - started) / max(1, len(replayed))
            tuning = [p for p in replayed if p.index < half]
            reported = [p for p in replayed if p.index >= half]
            out.append(Replay(name[:24], span, len(nodes), tuning, reported, cost))
    return out


def row(label: str, commits: str, replays: list[Replay], weights: Weights) -> str:
    """One line of the main table: the second halves of ``replays``, pooled."""
    reported = [p for r in replays for p in r.reported]
    tuning = [p for r in replays for p in r.tuning]
    base, ours = measure(reported, None)[1], measure(reported, weights)[1]
    gain = ours / base if base else float("inf")
    if len(replays) == 1:
        low, high = interval([[p] for p in reported], weights)
    else:
        low, high = interval([r.reported for r in replays], weights)
    fit = measure(tuning, weights)[1] / max(1e-9, measure(tuning, None)[1])
    cost = sum(r.cost * len(r.reported) for r in replays) / max(1, len(reported))
    return (
        f"{label:<24}  {replays[0].span:>5} c  {commits:>7}  {len(reported):>8}  "
        f"{base:>8.3f}  {ours:>9.3f}  {gain:>5.2f}x  "
        f"{f'{low:.2f}x to {high:.2f}x':>18}  {fit:>10.2f}x  {cost * 1000:>11.1f}"
    )


def main() -> None:
    """Replay each history and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", action="append", default=None, help="a git repository")
    parser.add_argument(
        "--session-commits",
        type=int,
        action="append",
        default=None,
        help="commits the interrupted session made (default: 1 and 3)",
    )
    parser.add_argument("--tune", action="store_true", help="tune the weights on the first halves")
    parser.add_argument(
        "--doc",
        type=Path,
        default=shipped_histories.DOC,
        help="where installed packages keep their changelogs (default /usr/share/doc)",
    )
    parser.add_argument(
        "--no-shipped",
        action="store_true",
        help="replay only --repo, not the histories installed packages ship",
    )
    parser.add_argument(
        "--max-commits",
        type=int,
        default=1000,
        help="replay at most the newest N commits of each shipped history (default 1000)",
    )
    args = parser.parse_args()
    repos = [Path(r) for r in args.repo] if args.repo else [ROOT]
    spans = args.session_commits or [1, 3]
    histories = [(repo.resolve().name, history(repo)) for repo in repos]
    if not args.no_shipped:
        histories += [
            (name, linear(c, args.max_commits)) for name, c in shipped_histories.shipped(args.doc)
        ]
    replays = replay(histories, spans)
    weights = WEIGHTS
    if args.tune:
        print("tuning on the first halves...", file=sys.stderr, flush=True)
        weights = tune([p for r in replays for p in r.tuning])
        print(f"tuned on the first halves: {weights}\n")
    print("recall@10 of the files the next commit touched, second half (higher is better)")
    print(
        f"{'history':<24}  {'session':>7}  {'commits':>7}  {'replayed':>8}  "
        f"{'baseline':>8}  {'predicted':>9}  {'gain':>6}  {'95% CI of the gain':>18}  "
        f"{'tuning half':>11}  {'ms/recovery':>11}"
    )
    for r in replays:
        print(row(r.name, str(r.commits), [r], weights))
    for span in spans:
        chosen = [r for r in replays if r.span == span and r.reported]
        if len(chosen) > 1:
            label = f"all {len(chosen)} histories"
            print(row(label, str(sum(r.commits for r in chosen)), chosen, weights))
    print("\nper method, second halves of all histories pooled: recall@5 / recall@10 / MRR")
    for span in spans:
        reported = [p for r in replays if r.span == span for p in r.reported]
        print(f"a session of {span} commit{'s' if span > 1 else ''}:")
        rows: list[tuple[str, Weights | None]] = [
            ("baseline: most recently modified", None),
            ("predicted (all signals)", weights),
        ]
        rows += [
            (f"  without {signal}", dataclasses.replace(weights, **{signal: 0.0}))
            for signal in SIGNALS
            if getattr(weights, signal) > 0
        ]
        for label, picked in rows:
            r5, r10, mrr = measure(reported, picked)
            print(f"  {label:<34}  {r5:.3f} / {r10:.3f} / {mrr:.3f}")


if __name__ == "__main__":
    main()
