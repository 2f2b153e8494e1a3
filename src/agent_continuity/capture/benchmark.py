"""Timing the observer on large generated trees.

Not used at run time: the benchmarks (and anyone checking a claim about
speed) call these functions. The target: on a committed git tree of 100,000
small files with 100 modified, ``observe()`` within 1.5x of
``git status --porcelain``.

Example:
    >>> from agent_continuity.capture.benchmark import benchmark_git
    >>> benchmark_git(Path("/tmp/bench-git"), files=100_000, modified=100)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from agent_continuity.capture.observer import ProjectObserver

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def make_tree(path: Path, files: int, per_folder: int = 100) -> list[str]:
    """Write ``files`` small files under ``path``, ``per_folder`` to a folder.

    Returns:
        The relative paths written, in order.
    """
    rels: list[str] = []
    for index in range(files):
        folder = path / f"d{index // per_folder:04d}"
        if index % per_folder == 0:
            folder.mkdir(parents=True, exist_ok=True)
        rel = f"d{index // per_folder:04d}/f{index:06d}.txt"
        (path / rel).write_text(f"file {index}\n")
        rels.append(rel)
    return rels


def make_git_tree(path: Path, files: int = 100_000, per_folder: int = 100) -> list[str]:
    """A git repository at ``path`` with ``files`` small files, all committed."""
    rels = make_tree(path, files, per_folder)
    env = {**os.environ, **_GIT_ENV}
    commit = ["-c", "commit.gpgsign=false", "commit", "-q", "-m", "generated tree"]
    for args in (["init", "-q"], ["add", "-A"], commit):
        subprocess.run(["git", *args], cwd=path, env=env, check=True)
    return rels


def modify(path: Path, rels: list[str], count: int) -> list[str]:
    """Append a line to ``count`` files spread evenly over ``rels``."""
    step = max(1, len(rels) // max(1, count))
    changed = rels[::step][:count]
    for rel in changed:
        with (path / rel).open("a") as handle:
            handle.write("modified\n")
    return changed


def median_seconds(call: Callable[[], object], repeat: int) -> float:
    """The median wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def benchmark_git(
    path: Path, files: int = 100_000, modified: int = 100, repeat: int = 5
) -> dict[str, float]:
    """Time ``observe()`` against ``git status`` on a generated repository.

    Args:
        path: An empty or missing folder to build the repository in.
        files: How many files to commit.
        modified: How many of them to modify after saving a code context.
        repeat: Runs per measurement (the median is reported).

    Returns:
        Seconds: ``git_status`` (``git status --porcelain``),
        ``snapshot``, ``observe`` and their ``ratio`` (observe / git status).
    """
    path.mkdir(parents=True, exist_ok=True)
    rels = make_git_tree(path, files)
    observer = ProjectObserver(path)
    saved = observer.snapshot()
    changed = modify(path, rels, modified)

    def git_status() -> None:
        subprocess.run(["git", "status", "--porcelain"], cwd=path, capture_output=True, check=True)

    status = median_seconds(git_status, repeat)
    snapshot = median_seconds(observer.snapshot, repeat)
    observe = median_seconds(lambda: observer.observe(saved), repeat)
    found = observer.observe(saved).file_changes
    if sorted(found) != sorted(changed):
        raise AssertionError(f"observe() found {len(found)} changes, expected {len(changed)}")
    return {
        "git_status": status,
        "snapshot": snapshot,
        "observe": observe,
        "ratio": observe / status,
    }


def benchmark_index(
    path: Path, files: int = 100_000, modified: int = 100, repeat: int = 3
) -> dict[str, float]:
    """Time the non-git file index on a generated plain folder.

    Returns:
        Seconds: ``first_snapshot`` (every file hashed), ``warm_snapshot``
        (digests cached in memory), ``observe_fresh_observer`` (a new
        observer comparing with the saved context after ``modified`` files
        changed: only those are hashed) and ``observe_warm``.
    """
    path.mkdir(parents=True, exist_ok=True)
    rels = make_tree(path, files)
    # Backdate the tree so its digests count as settled (see RACY_MARGIN_NS).
    old = time.time_ns() - 3600 * 1_000_000_000
    for rel in rels:
        os.utime(path / rel, ns=(old, old))
    observer = ProjectObserver(path)
    started = time.perf_counter()
    saved = observer.snapshot()
    first = time.perf_counter() - started
    warm = median_seconds(observer.snapshot, repeat)
    modify(path, rels, modified)
    fresh = median_seconds(lambda: ProjectObserver(path).observe(saved), repeat)
    warm_observe = median_seconds(lambda: observer.observe(saved), repeat)
    return {
        "first_snapshot": first,
        "warm_snapshot": warm,
        "observe_fresh_observer": fresh,
        "observe_warm": warm_observe,
    }
