"""Which files the next agent will most likely touch: signals, weights, reasons.

Pure: :func:`rank_files` takes the session's files and words and the evidence
the caller gathered (git history, earlier sessions) and reads nothing itself.
Each signal gives every candidate file a strength in [0, 1] and a reason a
person can check; a file's score combines its signals' weighted strengths as
independent evidence (``1 - prod(1 - w * s)``). The weights
(:data:`WEIGHTS`) were tuned on the first halves of 35 real project histories
(this repository's, and the git logs and ChangeLogs Debian packages ship) and
are measured on the second halves (benchmarks/prediction.py, which prints both).

The signals:

* **own**: the session's own file events, the most recent strongest;
* **co-change**: files changed together with the session's files in the
  history (the confidence ``P(g | f)`` of the rule ``f => g``, ROSE-style);
* **follow**: files changed in the commit right after one touching them;
* **name**: names sharing a word (``sms.py``, ``test_sms.py``);
* **folder**: files in the same folder as the session's;
* **folder follow**: the files most often changed in the folders the history
  changed right after the session's folders (after ``src/``, ``tests/``);
* **mentioned**: files whose path words the session's words name (its task,
  step, next steps and decisions; in the replay, its commit messages);
* **similar**: the files of past commits whose messages share the session's words;
* **frequent**: recency-weighted change frequency (decaying by commit);
* **recent**: the files of the newest commits;
* **same task**: the files earlier sessions on the same task touched.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

#: Commits touching more files than this are left out (mass renames,
#: reformatting): they say little about which files go together.
MAX_COMMIT_FILES = 40
OWN_DECAY = 0.9  # each older file of the session
RECENT_COMMITS = 8
RECENT_DECAY = 0.75  # each older commit, for "recent"
FREQUENT_DECAY = 0.95  # each older commit, for "frequent"
#: Words that say nothing about what a text is about.
STOP_WORDS = frozenset(
    "the and for with from into that this then than are was were has have use used not "
    "but all any can will should must when what which who how now new add one its".split()
)
# ... and, in a file's path, words most paths share.
_GENERIC = STOP_WORDS | frozenset(
    "test tests src lib init main index py md txt json toml yaml yml cfg".split()
)
_WORD = re.compile(r"[a-z0-9]{3,}")


@dataclass(frozen=True, slots=True)
class Commit:
    """One commit of the project's history: its files and (optionally) its subject."""

    sha: str
    files: tuple[str, ...]
    message: str = ""


@dataclass(frozen=True, slots=True)
class Weights:
    """How much each signal counts (0 to 1): see the module's docstring."""

    own: float = 0.8
    co_change: float = 0.5
    follow: float = 0.6
    name: float = 0.2
    folder: float = 0.2
    folder_follow: float = 0.4
    # The replay's words are the session's past commit messages, a weak stand-in
    # for the next steps and decisions a recovery reads: from 0.05 (its tuned
    # value) to 0.3 recall@10 moves by 0.0003, so it stays where a next step
    # naming a file counts.
    mentioned: float = 0.3
    similar: float = 0.5
    frequent: float = 0.7
    recent: float = 0.2
    # No git history says how much earlier sessions on the task count: left at
    # the tuning's starting value.
    same_task: float = 0.3


#: The weights recovery uses: tuned on the first halves of 35 real histories (this
#: repository's and those packages ship), measured on the second halves.
WEIGHTS = Weights()
SIGNALS = tuple(Weights.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class SessionEvidence:
    """What the caller gathered, as the ranking needs it.

    Attributes:
        commits: The project's recent commits, newest first.
        same_task: The files of earlier sessions on the same task, one tuple per session.
        same_task_ids: Those sessions' ids, in the same order.
    """

    commits: Sequence[Commit] = ()
    same_task: Sequence[tuple[str, ...]] = ()
    same_task_ids: Sequence[str] = ()


@dataclass(slots=True)
class _Signal:
    """One signal's strength for one file: independent contributions, the strongest's reason."""

    missing: float = 1.0
    best: tuple[float, str] = (0.0, "")

    def add(self, strength: float, reason: str) -> None:
        strength = min(max(strength, 0.0), 0.99)
        self.missing *= 1 - strength
        if strength > self.best[0]:
            self.best = (strength, reason)

    @property
    def strength(self) -> float:
        return 1 - self.missing


@dataclass(slots=True)
class FileSignals:
    """Every signal's strength and reason for every candidate file (before weighting)."""

    by_file: dict[str, dict[str, _Signal]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(_Signal))
    )

    def add(self, path: str, signal: str, strength: float, reason: str) -> None:
        if strength > 0:
            self.by_file[path][signal].add(strength, reason)


def words(*texts: str | None, stop: frozenset[str] = _GENERIC) -> set[str]:
    """The distinct content words of some texts (lower case, three letters or more).

    ``stop`` words are left out: by default, :data:`STOP_WORDS` and the words
    most file paths share (``test``, ``src``...), for matching texts to paths.
    """
    found: set[str] = set()
    for text in texts:
        if text:
            found.update(w for w in _WORD.findall(text.lower()) if w not in stop)
    return found


def name_words(path: str) -> frozenset[str]:
    """The words of a file's name, without folder or extension (``test_cli_search.py``: cli,
    search)."""
    stem = path.rsplit("/", 1)[-1].split(".", 1)[0].lower()
    return frozenset(w for w in re.split(r"[^a-z0-9]+", stem) if len(w) > 2 and w not in _GENERIC)


def path_words(path: str) -> frozenset[str]:
    """The words of a file's whole path: its folders' and its name's."""
    return frozenset(words(*re.split(r"[^A-Za-z0-9]+", path.rsplit(".", 1)[0])))


def _folder(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def _usable(commits: Iterable[Commit]) -> list[Commit]:
    return [c for c in commits if 0 < len(c.files) <= MAX_COMMIT_FILES]


def _history_signals(out: FileSignals, seeds: dict[str, float], commits: Sequence[Commit]) -> None:
    """co-change and follow: association rules ``seed => file`` mined from the history."""
    touched: Counter[str] = Counter()
    together: dict[str, Counter[str]] = defaultdict(Counter)
    had_next: Counter[str] = Counter()
    after: dict[str, Counter[str]] = defaultdict(Counter)
    for commit in commits:
        files = set(commit.files)
        for f in files & seeds.keys():
            touched[f] += 1
            together[f].update(files - {f})
    for newer, older in itertools.pairwise(commits):  # newest first: newer follows older
        for f in set(older.files) & seeds.keys():
            had_next[f] += 1
            after[f].update(set(newer.files))
    _folder_follow(out, seeds, commits)
    for seed, weight in seeds.items():
        seen = touched[seed]
        for other, count in together[seed].items():
            # Laplace-smoothed confidence: one shared commit out of one is not certainty.
            out.add(
                other,
                "co_change",
                weight * count / (seen + 1),
                f"changed together with {seed} in {count} of the {seen} commits touching it",
            )
        seen = had_next[seed]
        for other, count in after[seed].items():
            out.add(
                other,
                "follow",
                weight * count / (seen + 1),
                f"changed in the commit after one touching {seed}, {count} of {seen} times",
            )


def _folder_follow(out: FileSignals, seeds: dict[str, float], commits: Sequence[Commit]) -> None:
    """folder follow: which folders the commit after one touching a folder changed."""
    mine: dict[str, float] = {}
    for seed, weight in seeds.items():
        mine[_folder(seed)] = max(mine.get(_folder(seed), 0.0), weight)
    had_next: Counter[str] = Counter()
    after: dict[str, Counter[str]] = defaultdict(Counter)
    for newer, older in itertools.pairwise(commits):
        for folder in {_folder(f) for f in older.files} & mine.keys():
            had_next[folder] += 1
            after[folder].update({_folder(f) for f in newer.files})
    # Within a folder, its files by recency-weighted change frequency.
    within: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for index, commit in enumerate(commits):
        for path in set(commit.files):
            within[_folder(path)][path] += FREQUENT_DECAY**index
    for folder, weight in mine.items():
        seen = had_next[folder]
        for target, count in after[folder].items():
            files = within[target]
            most = max(files.values(), default=0.0)
            for path, value in files.items():
                out.add(
                    path,
                    "folder_follow",
                    weight * count / (seen + 1) * value / most,
                    f"{target or 'the top folder'} changed in the commit after one touching "
                    f"{folder or 'the top folder'} {count} of {seen} times, this file most",
                )


def _word_signals(
    out: FileSignals,
    seeds: dict[str, float],
    known: set[str],
    commits: Sequence[Commit],
    text: Sequence[str],
) -> None:
    """name, folder, mentioned and similar: what the names and the words say."""
    by_word: dict[str, set[str]] = defaultdict(set)
    by_folder: dict[str, set[str]] = defaultdict(set)
    for path in known:
        by_folder[_folder(path)].add(path)
        for word in name_words(path):
            by_word[word].add(path)
    for seed, weight in seeds.items():
        mine = name_words(seed)
        for word in mine:
            for other in by_word.get(word, ()):
                if other != seed:
                    theirs = name_words(other)
                    out.add(
                        other,
                        "name",
                        weight * len(mine & theirs) / len(mine | theirs),
                        f"its name shares {word!r} with {seed}, changed in this session",
                    )
        siblings = by_folder.get(_folder(seed), set()) - {seed}
        for other in siblings:
            out.add(
                other,
                "folder",
                weight / math.sqrt(len(siblings)),
                f"in the folder of {seed}, changed in this session",
            )
    said = words(*text)
    if not said:
        return
    # idf over the paths: a word every file has ("agent", "continuity") says nothing.
    df: Counter[str] = Counter(w for path in known for w in path_words(path))
    idf = {w: math.log((len(known) + 1) / (n + 0.5)) for w, n in df.items()}
    for path in known:
        mine = path_words(path)
        hit = mine & said
        if hit:
            total = sum(idf[w] for w in mine)
            shown = ", ".join(sorted(hit)[:3])
            out.add(
                path,
                "mentioned",
                sum(idf[w] for w in hit) / total if total else 0.0,
                f"the session's words name it ({shown})",
            )
    for commit in commits:
        said_by_it = words(commit.message)
        shared = said_by_it & said
        if len(shared) < 2:
            continue
        similarity = len(shared) / math.sqrt(len(said_by_it) * len(said))
        shown = ", ".join(sorted(shared)[:3])
        for path in commit.files:
            out.add(
                path,
                "similar",
                similarity,
                f"changed in {commit.sha[:8]}, whose message shares {shown} with the session",
            )


def file_signals(
    own: Sequence[str], evidence: SessionEvidence, text: Sequence[str] = ()
) -> FileSignals:
    """Every signal for every candidate file, unweighted (the part that reads the evidence).

    Args:
        own: The files this session touched, oldest first.
        evidence: Git history and earlier sessions on the same task.
        text: The session's words (task, current step, next steps, decisions).
    """
    out = FileSignals()
    commits = _usable(evidence.commits)
    seeds: dict[str, float] = {}
    for rank, path in enumerate(dict.fromkeys(reversed(own))):  # newest first, each once
        seeds[path] = OWN_DECAY**rank
        where = "the latest file" if rank == 0 else f"{rank + 1}th most recent of its files"
        out.add(path, "own", seeds[path], f"changed in this session ({where})")
    sessions = len(evidence.same_task)
    for files, session_id in zip(evidence.same_task, evidence.same_task_ids, strict=True):
        for path in dict.fromkeys(files):
            share = sum(path in s for s in evidence.same_task) / sessions
            out.add(path, "same_task", share, f"touched by {session_id}, on the same task")
            seeds.setdefault(path, 0.5 * share)
    for index, commit in enumerate(commits[:RECENT_COMMITS]):
        for path in commit.files:
            out.add(
                path,
                "recent",
                RECENT_DECAY**index,
                f"changed in recent commit {commit.sha[:8]}",
            )
    decayed: dict[str, float] = defaultdict(float)
    counts: Counter[str] = Counter()
    for index, commit in enumerate(commits):
        for path in set(commit.files):
            decayed[path] += FREQUENT_DECAY**index
            counts[path] += 1
    if decayed:
        most = max(decayed.values())
        for path, value in decayed.items():
            if counts[path] > 1:
                out.add(
                    path,
                    "frequent",
                    value / most,
                    f"changed in {counts[path]} of the last {len(commits)} commits",
                )
    _history_signals(out, seeds, commits)
    known = {path for commit in commits for path in commit.files} | set(seeds)
    _word_signals(out, seeds, known, commits, text)
    return out


def combine(
    signals: FileSignals, weights: Weights = WEIGHTS, limit: int = 10
) -> list[tuple[str, float, str]]:
    """The best files by their weighted signals: (path, score, reason), best first.

    The reason names the strongest weighted signal, and the next one if any.
    """
    ranked: list[tuple[float, str, str]] = []
    for path, by_signal in signals.by_file.items():
        missing = 1.0
        parts: list[tuple[float, str]] = []
        for name, signal in by_signal.items():
            part = getattr(weights, name) * signal.strength
            if part > 0:
                missing *= 1 - min(part, 0.99)
                parts.append((part, signal.best[1]))
        if not parts:
            continue
        parts.sort(key=lambda p: -p[0])
        reason = parts[0][1] + (f"; also {parts[1][1]}" if len(parts) > 1 else "")
        ranked.append((1 - missing, path, reason))
    ranked.sort(key=lambda item: (-item[0], item[1]))
    return [(path, round(score, 3), reason) for score, path, reason in ranked[:limit]]


def rank_files(
    own: Sequence[str],
    evidence: SessionEvidence,
    *,
    text: Sequence[str] = (),
    limit: int = 10,
    weights: Weights = WEIGHTS,
) -> list[tuple[str, float, str]]:
    """The files most likely touched next: (path, score, reason), best first.

    Args:
        own: The files this session touched, oldest first.
        evidence: Git history and earlier sessions on the same task.
        text: The session's words (task, current step, next steps, decisions).
        limit: How many.
        weights: How much each signal counts.
    """
    return combine(file_signals(own, evidence, text), weights, limit)
