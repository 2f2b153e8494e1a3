"""The project observer: what the code looks like now, and what changed since a save.

In a git work tree the observer records only the *dirty* files (what
``git status`` lists) with the blob id of their work-tree content; the rest
of the tree is named by HEAD. Comparing with a saved context then needs the
saved dirty stamps, the saved HEAD and a handful of git calls, whatever the
size of the project. Outside git it keeps a stat index of every file with a
sha256 digest, re-hashing only files whose size or mtime changed.

Everything here degrades instead of failing: no git binary, a folder that
is not a repository, or a git command that errors all fall back to what can
still be known, and a warning is logged.

Known limits: when the saved HEAD no longer exists (history rewritten and
garbage-collected), only files dirty then or now can be compared, and
``saved_head_reachable`` is False to say so. Blob ids come from
``git hash-object`` so clean filters apply; if that fails the observer hashes
in Python, without filters.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

from agent_continuity.capture.build import BuildMonitor
from agent_continuity.capture.changes import classify, content_key, diff_indexes
from agent_continuity.capture.file_index import (
    MAX_INDEXED_FILES,
    FileStat,
    PathFilter,
    SavedStamps,
    StampCache,
    TooManyFiles,
    json_safe,
    scan_tree,
    sha256_of_file,
    sha256_of_link,
    stat_file,
)
from agent_continuity.capture.git import GitError, GitRepo, blob_id_of_file
from agent_continuity.model import (
    BuildResult,
    CodeContext,
    FileStamp,
    ProjectObservation,
    utc_now,
)

log = logging.getLogger(__name__)

DEFAULT_STORE_FOLDER = "projectDocs/tracking"
MAX_LAST_MODIFIED = 20
MAX_RECENT_COMMITS = 10
MAX_COMMITS_SINCE = 50

_T = TypeVar("_T")


@dataclass
class _Capture:
    """A code context plus what the git comparison can reuse from the same calls."""

    code: CodeContext
    repo: GitRepo | None = None
    # Root-relative dirty path -> its blob id at HEAD (None: not in HEAD).
    head_blobs: dict[str, str | None] = field(default_factory=dict)


class ProjectObserver:
    """Observes a project folder: git state, a file index, build status.

    Safe to share between threads; calls are serialised.

    Args:
        root: The project root.
        ignore: Folders, relative to ``root``, to leave out. ``.git`` folders
            and the default store folder (``projectDocs/tracking``) are
            always left out; pass the store's folder here when it lives
            elsewhere.
        build_command: The command that builds or tests the project (through
            the shell), started in the background by ``snapshot(with_build=True)``;
            every code context carries its latest finished result.
        build_timeout: Seconds the build command may take.
        build_state: Where the latest build result is kept (default: the
            user's cache folder, see :func:`~agent_continuity.capture.build.default_state_file`).
        clock: Returns the current time (``observed_at``).
        max_files: Outside git, a folder with more files is not indexed at all
            (``CodeContext.index_limit_exceeded``), so that starting a session
            in a home folder never hashes a whole disk.
    """

    def __init__(
        self,
        root: Path,
        *,
        ignore: Sequence[str] = (),
        build_command: str | None = None,
        build_timeout: float = 60.0,
        build_state: Path | None = None,
        clock: Callable[[], datetime] = utc_now,
        max_files: int = MAX_INDEXED_FILES,
    ) -> None:
        self.root = Path(root).resolve()
        self.max_files = max_files
        self.build_command = build_command
        self.build_timeout = build_timeout
        self.build = (
            BuildMonitor(build_command, self.root, build_timeout, build_state)
            if build_command
            else None
        )
        self._clock = clock
        self._skip = PathFilter.from_patterns(self.root, [DEFAULT_STORE_FOLDER, *ignore])
        self._sha256_cache = StampCache()
        self._blob_cache = StampCache()
        self._lock = threading.RLock()

    def snapshot(self, *, with_build: bool = False) -> CodeContext:
        """The project's current code context.

        Args:
            with_build: A project-state save: also start the build command
                (when one is configured and this state of the project was not
                built yet) in the background. It never waits for the build;
                ``build_status`` is the latest finished run's, ``"unknown"``
                before the first.

        Returns:
            The code context. In git: HEAD, branch, the dirty files and the
            recent commits. Outside git: every file with its sha256 digest.
        """
        with self._lock:
            code = self._capture(None).code
        if with_build and self.build is not None:
            self.build.request(_fingerprint(code))
        self._with_build(code)
        return code

    def _with_build(self, code: CodeContext) -> None:
        """Record the build command's latest finished run in ``code``."""
        run = self.build.latest() if self.build is not None else None
        if run is not None:
            code.build_status = run.status.value
            code.build = BuildResult.model_validate(run.to_wire())

    def observe(
        self, since: CodeContext | None = None, check_paths: Sequence[str] = ()
    ) -> ProjectObservation:
        """Observe the project now and compare it with a saved code context.

        Args:
            since: The code context saved earlier; None to compare nothing.
            check_paths: Paths, relative to the root, whose existence to check.

        Returns:
            The observation: the current code context, the exact files whose
            content differs from the saved state, the commits made since and
            whether the saved HEAD is still an ancestor of HEAD.
        """
        with self._lock:
            capture = self._capture(since)
            code = capture.code
            assert code.observed_at is not None  # set by _capture
            self._with_build(code)
            observation = ProjectObservation(
                observed_at=code.observed_at,
                code=code,
                missing_paths=self._missing(check_paths),
            )
            if since is None:
                return observation
            if since.vcs == "none" and (since.index_limit_exceeded or code.index_limit_exceeded):
                return observation  # no index on one side: nothing to compare, said by the flag
            if capture.repo is not None and since.vcs == "git":
                self._compare_git(capture.repo, capture, since, observation)
            elif code.vcs == "none" and since.vcs == "none":
                observation.file_changes = diff_indexes(since.files, code.files)
            elif since.vcs == "none":
                # The project became a git repository: only a full index
                # compares with what was saved.
                now = self._index_context(code.observed_at, since).files
                observation.file_changes = diff_indexes(since.files, now)
            else:
                observation.file_changes = self._compare_lost_git(since)
            return observation

    # -- capture -------------------------------------------------------------

    def _capture(self, since: CodeContext | None) -> _Capture:
        # Read before any file is: a later comparison trusts a digest only
        # for files last modified well before ``observed_at`` (SavedStamps).
        observed_at = self._clock()
        repo = GitRepo.discover(self.root)
        if repo is not None:
            try:
                return self._git_capture(repo, observed_at, since)
            except GitError as exc:
                log.warning("git status failed in %s (%s); indexing files instead", self.root, exc)
        return _Capture(self._index_context(observed_at, since))

    def _git_capture(
        self, repo: GitRepo, observed_at: datetime, since: CodeContext | None
    ) -> _Capture:
        status = repo.status()
        head_blobs: dict[str, str | None] = {}
        for repo_path, blob in status.dirty.items():
            rel = self._from_repo(repo, repo_path)
            if rel is not None:
                head_blobs[rel] = blob
        saved = _saved_stamps(since, "git")
        files = self._stamp_dirty(repo, sorted(head_blobs), saved)
        recent: list[str] = []
        if status.head is not None:
            recent = self._quiet(repo.log, [], status.head, MAX_RECENT_COMMITS)
        code = CodeContext(
            last_modified_files=_newest(files),
            working_branch=status.branch,
            pending_changes=bool(files),
            vcs="git",
            head=status.head,
            recent_commits=recent,
            files=files,
            observed_at=observed_at,
        )
        return _Capture(code, repo, head_blobs)

    def _stamp_dirty(
        self, repo: GitRepo, paths: list[str], saved: SavedStamps
    ) -> dict[str, FileStamp]:
        hashed_at = time.time_ns()
        stamps: dict[str, FileStamp] = {}
        to_hash: list[tuple[str, FileStat]] = []
        for rel in paths:
            full = self.root / rel
            st = stat_file(full)
            if st is None:
                stamps[rel] = FileStamp()
                continue
            if not st.is_link and full.is_dir():
                # A submodule or nested repository: git records its commit.
                head = repo.submodule_head(repo.prefix + rel)
                stamps[rel] = FileStamp(size=0, mtime_ns=st.mtime_ns, digest=head)
                continue
            stamp = self._blob_cache.get(rel, st) or saved.get(rel, st)
            if stamp is None and st.is_link:
                # git stores the link's target text, which hash-object would follow.
                stamp = _stamp(st, full, partial(blob_id_of_file, object_format=repo.object_format))
            if stamp is None:
                to_hash.append((rel, st))
                continue
            self._blob_cache.put(rel, stamp, hashed_at)
            stamps[rel] = stamp
        for (rel, st), digest in zip(to_hash, self._hash_blobs(repo, to_hash), strict=True):
            stamps[rel] = FileStamp(size=st.size, mtime_ns=st.mtime_ns, digest=digest)
            self._blob_cache.put(rel, stamps[rel], hashed_at)
        self._blob_cache.keep_only(stamps)
        return dict(sorted(stamps.items()))

    def _hash_blobs(self, repo: GitRepo, files: list[tuple[str, FileStat]]) -> list[str | None]:
        rels = [rel for rel, _ in files]
        try:
            return list(repo.hash_files([repo.prefix + rel for rel in rels]))
        except GitError as exc:
            # A file vanished mid-batch, or a path git cannot take on stdin:
            # hash each file here instead (without git's clean filters).
            log.debug("git hash-object failed (%s); hashing in Python", exc)
        digests: list[str | None] = []
        for rel in rels:
            try:
                digests.append(blob_id_of_file(self.root / rel, repo.object_format))
            except OSError:
                digests.append(None)
        return digests

    def _index_context(self, observed_at: datetime, since: CodeContext | None) -> CodeContext:
        hashed_at = time.time_ns()
        try:
            index = scan_tree(self.root, self._skip, self.max_files)
        except TooManyFiles:
            log.warning(
                "%s holds more than %d files outside git; not indexing it",
                self.root,
                self.max_files,
            )
            return CodeContext(vcs="none", index_limit_exceeded=True, observed_at=observed_at)
        saved = _saved_stamps(since, "none")
        files: dict[str, FileStamp] = {}
        for rel in sorted(index):
            st = index[rel]
            stamp = self._sha256_cache.get(rel, st)
            if stamp is None:
                hasher = sha256_of_link if st.is_link else sha256_of_file
                stamp = saved.get(rel, st) or _stamp(st, self.root / rel, hasher)
                self._sha256_cache.put(rel, stamp, hashed_at)
            files[rel] = stamp
        self._sha256_cache.keep_only(index)
        return CodeContext(
            last_modified_files=_newest(files),
            vcs="none",
            files=files,
            observed_at=observed_at,
        )

    # -- comparison ----------------------------------------------------------

    def _compare_git(
        self, repo: GitRepo, capture: _Capture, since: CodeContext, out: ProjectObservation
    ) -> None:
        then_dirty, now_dirty = since.files, capture.code.files
        head_then, head_now = since.head, capture.code.head
        same_head = head_then == head_now
        # A vanished saved HEAD (rewritten history, deleted branch after gc)
        # leaves only the dirty files to compare; HEAD stands in for it.
        then_known = (
            same_head or head_then is None or self._quiet(repo.has_commit, False, head_then)
        )
        committed: set[str] = set()
        if then_known and not same_head:
            no_paths: list[str] = []
            for path in self._quiet(repo.changed_between, no_paths, head_then, head_now):
                rel = self._from_repo(repo, path)
                if rel is not None:
                    committed.add(rel)
        candidates = then_dirty.keys() | now_dirty.keys() | committed

        saved = {p: content_key(then_dirty[p]) for p in candidates & then_dirty.keys()}
        clean_then = candidates - then_dirty.keys()
        if same_head or not then_known:
            # Only dirty-now paths are left, and status gave their HEAD blobs.
            saved.update({p: capture.head_blobs.get(p) for p in clean_then})
        elif head_then is not None:
            saved.update(self._blobs_at(repo, head_then, clean_then))

        current = {p: content_key(now_dirty[p]) for p in candidates & now_dirty.keys()}
        if head_now is not None:
            current.update(self._blobs_at(repo, head_now, candidates - now_dirty.keys()))
        out.file_changes = classify(saved, current, candidates)

        if same_head:
            out.saved_head_reachable = True
            return
        if head_then is None:
            out.saved_head_reachable = True  # nothing was committed yet to lose
        elif head_now is None or not then_known:
            out.saved_head_reachable = False
        else:
            out.saved_head_reachable = self._quiet(repo.is_ancestor, False, head_then, head_now)
        if then_known and head_now is not None:
            span = f"{head_then}..{head_now}" if head_then else head_now
            out.commits_since = self._quiet(repo.log, [], span, MAX_COMMITS_SINCE, reverse=True)

    def _blobs_at(self, repo: GitRepo, rev: str, rels: set[str]) -> dict[str, str | None]:
        nothing: dict[str, str] = {}
        found = self._quiet(repo.blobs_at, nothing, rev, {repo.prefix + r for r in rels})
        return {rel: found.get(repo.prefix + rel) for rel in rels}

    def _compare_lost_git(self, since: CodeContext) -> dict[str, str]:
        # The project was a git work tree and no longer is: only the files
        # that were dirty then can be compared, by their blob ids.
        current: dict[str, str | None] = {}
        for rel, stamp in since.files.items():
            algorithm = "sha256" if stamp.digest and len(stamp.digest) == 64 else "sha1"
            try:
                current[rel] = blob_id_of_file(self.root / rel, algorithm)
            except OSError:
                current[rel] = None
        saved = {p: content_key(s) for p, s in since.files.items()}
        return classify(saved, current, since.files.keys())

    # -- small pieces --------------------------------------------------------

    def _from_repo(self, repo: GitRepo, path: str) -> str | None:
        """A repository path as a root-relative one; None when not ours to report."""
        if not path.startswith(repo.prefix):
            return None
        rel = path[len(repo.prefix) :]
        if not rel or self._skip.excluded(rel) or not json_safe(rel):
            return None
        return rel

    def _missing(self, check_paths: Sequence[str]) -> list[str]:
        return sorted({p for p in check_paths if not os.path.lexists(self.root / p)})

    def _quiet(self, call: Callable[..., _T], default: _T, *args: object, **kwargs: object) -> _T:
        """Run a git query; on failure log it and carry on with ``default``."""
        try:
            return call(*args, **kwargs)
        except GitError as exc:
            log.warning("git query failed in %s: %s", self.root, exc)
            return default


def _stamp(st: FileStat, path: Path, digest: Callable[[Path], str]) -> FileStamp:
    """A new stamp; a file that cannot be read gets no digest rather than an error."""
    try:
        value: str | None = digest(path)
    except OSError:
        value = None
    return FileStamp(size=st.size, mtime_ns=st.mtime_ns, digest=value)


def _saved_stamps(since: CodeContext | None, vcs: str) -> SavedStamps:
    """The stamps of ``since`` that may stand in for hashing (same kind of digest only)."""
    if since is None or since.vcs != vcs or since.observed_at is None:
        return SavedStamps()
    moment = since.observed_at
    hashed_at = int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000
    return SavedStamps(since.files, hashed_at)


def _fingerprint(code: CodeContext) -> str:
    """The state of the project a build would see: HEAD and every dirty (or indexed) file."""
    files = {path: [stamp.digest, stamp.size] for path, stamp in code.files.items()}
    text = json.dumps([code.vcs, code.head, code.index_limit_exceeded, files], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _newest(files: Mapping[str, FileStamp]) -> list[str]:
    existing = ((-s.mtime_ns, p) for p, s in files.items() if s.size >= 0)
    return [p for _, p in heapq.nsmallest(MAX_LAST_MODIFIED, existing)]
