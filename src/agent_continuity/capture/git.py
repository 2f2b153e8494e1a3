"""Git plumbing for the project observer.

Every call goes through :func:`run_git`, which pins the environment so that
observing a project never changes it and never depends on the user's
terminal: no pager, no prompts, ``LC_ALL=C``, ``core.quotepath=off`` and
``GIT_OPTIONAL_LOCKS=0`` (``git status`` would otherwise take the index lock
to refresh stat data, and an agent's own ``git commit`` could then fail on
``index.lock``). Paths are passed literally (``GIT_LITERAL_PATHSPECS=1``) so a
file called ``*.py`` means that file, not a glob.

All paths in and out of :class:`GitRepo` are relative to the repository's
top level, POSIX style. The observer converts them to paths relative to the
project root.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TIMEOUT = 30.0

# Variables a parent git process (a hook, `git rebase --exec`) may have set;
# inherited, they would point our commands at that repository instead of the
# project's. The list is `git rev-parse --local-env-vars`.
_LOCAL_ENV_VARS = (
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_OBJECT_DIRECTORY",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_GRAFT_FILE",
    "GIT_INDEX_FILE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE",
    "GIT_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_COMMON_DIR",
)

_EMPTY_TREE = {
    "sha1": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
    "sha256": "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321",
}

_NO_OBJECT_MODE = "000000"

# Argument bytes beyond which ls-tree lists the whole tree instead of taking
# the paths on its command line (ARG_MAX is 128 KiB on some systems).
_MAX_PATHSPEC_BYTES = 64 * 1024


class GitError(Exception):
    """A git command failed, timed out, or git is not installed."""


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LOCAL_ENV_VARS}
    env.update(
        LC_ALL="C",
        GIT_OPTIONAL_LOCKS="0",
        GIT_TERMINAL_PROMPT="0",
        GIT_PAGER="cat",
        GIT_LITERAL_PATHSPECS="1",
    )
    return env


def run_git(
    args: Sequence[str],
    cwd: Path,
    *,
    stdin: bytes | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    ok_codes: Collection[int] = (0,),
) -> subprocess.CompletedProcess[bytes]:
    """Run one git command and return its completed process.

    Args:
        args: The git subcommand and its arguments.
        cwd: Where to run it.
        stdin: Bytes to feed on standard input; without them stdin is empty,
            so git can never wait on a terminal.
        timeout: Seconds before the command is killed.
        ok_codes: Exit statuses that count as success.

    Returns:
        The completed process, with ``stdout`` and ``stderr`` as bytes.

    Raises:
        GitError: git is missing, timed out, or exited with another status.
    """
    cmd = ["git", "--no-pager", "-c", "core.quotepath=off", *args]
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            env=_git_env(),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took longer than {timeout:g} s") from None
    except OSError as exc:
        raise GitError(f"cannot run git: {exc}") from None
    if proc.returncode not in ok_codes:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(
            f"git {args[0]} exited with status {proc.returncode}"
            + (f": {detail[-1]}" if detail else "")
        )
    return proc


def _decode_path(raw: bytes) -> str:
    # surrogateescape keeps undecodable names usable on disk; the observer
    # drops them before they reach a JSON document.
    return raw.decode("utf-8", "surrogateescape")


def blob_id(data: bytes, object_format: str = "sha1") -> str:
    """The git object id of a blob holding ``data``, without running git.

    Args:
        data: The blob's content.
        object_format: ``"sha1"`` or ``"sha256"``, the repository's hash.

    Returns:
        The hex object id, as ``git hash-object --no-filters`` prints it.
    """
    digest = hashlib.new(object_format, b"blob %d\0" % len(data))
    digest.update(data)
    return digest.hexdigest()


def blob_id_of_file(path: Path, object_format: str = "sha1") -> str:
    """The git blob id of a file's bytes (or of a symlink's target text).

    Git stores a symlink as a blob holding its target, so that is hashed
    rather than the file it points to. No clean filters or end-of-line
    conversion are applied; :meth:`GitRepo.hash_files` does that.

    Raises:
        OSError: The file cannot be read.
    """
    if path.is_symlink():
        return blob_id(os.fsencode(os.readlink(path)), object_format)
    with path.open("rb") as handle:
        return blob_id(handle.read(), object_format)


@dataclass
class GitStatus:
    """What one ``git status --porcelain=v2`` call reports.

    Attributes:
        head: The full object id of HEAD, None on an unborn branch.
        branch: The checked-out branch, None when HEAD is detached.
        dirty: Every path that differs between HEAD, the index and the work
            tree (untracked files included, ignored ones not), mapped to its
            blob id at HEAD, or None when HEAD does not have it.
    """

    head: str | None = None
    branch: str | None = None
    dirty: dict[str, str | None] = field(default_factory=dict)


def parse_status(output: bytes) -> GitStatus:
    """Parse ``git status --porcelain=v2 --branch -z`` output.

    Args:
        output: The raw standard output.

    Returns:
        The parsed status.
    """
    status = GitStatus()
    records = iter(output.split(b"\0"))
    for record in records:
        if not record:
            continue
        kind = record[:1]
        if record.startswith(b"# branch.oid "):
            oid = record[13:].decode("ascii", "replace")
            status.head = None if oid == "(initial)" else oid
        elif record.startswith(b"# branch.head "):
            name = record[14:].decode("utf-8", "replace")
            status.branch = None if name == "(detached)" else name
        elif kind == b"1":
            # 1 XY sub mH mI mW hH hI path
            fields = record.split(b" ", 8)
            head_blob = fields[6].decode() if fields[3] != b"000000" else None
            status.dirty[_decode_path(fields[8])] = head_blob
        elif kind == b"2":
            # Only seen if renames were detected anyway: the old path follows.
            fields = record.split(b" ", 9)
            head_blob = fields[6].decode() if fields[3] != b"000000" else None
            status.dirty[_decode_path(fields[9])] = head_blob
            status.dirty.setdefault(_decode_path(next(records, b"")), None)
        elif kind == b"u":
            # u XY sub m1 m2 m3 mW h1 h2 h3 path; stage 2 ("ours") is HEAD.
            fields = record.split(b" ", 10)
            head_blob = fields[8].decode() if fields[4] != b"000000" else None
            status.dirty[_decode_path(fields[10])] = head_blob
        elif kind == b"?":
            # A nested repository is reported as "dir/"; a file staged for
            # deletion and re-created also has a "1" record, which wins.
            status.dirty.setdefault(_decode_path(record[2:]).rstrip("/"), None)
    status.dirty.pop("", None)
    return status


@dataclass(frozen=True)
class GitRepo:
    """A git work tree seen from a project root inside it.

    Attributes:
        top: The work tree's top-level folder; every command runs there.
        prefix: The project root relative to ``top`` (``""`` or ``"a/b/"``).
        object_format: ``"sha1"`` or ``"sha256"``.
        timeout: Seconds allowed to each git command.
    """

    top: Path
    prefix: str = ""
    object_format: str = "sha1"
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def discover(cls, root: Path, timeout: float = DEFAULT_TIMEOUT) -> GitRepo | None:
        """The repository whose work tree holds ``root``, or None.

        None when git is not installed, ``root`` is not in a work tree (or is
        inside a ``.git`` folder), or git refuses the repository (for
        instance "dubious ownership").
        """
        args = ["rev-parse", "--is-inside-work-tree", "--show-toplevel", "--show-prefix"]
        try:
            lines = run_git([*args, "--show-object-format"], root, timeout=timeout).stdout
        except GitError:
            try:  # git before 2.25 has no --show-object-format: SHA-1 then
                lines = run_git(args, root, timeout=timeout).stdout + b"sha1\n"
            except GitError:
                return None
        fields = lines.decode("utf-8", "surrogateescape").split("\n")
        if len(fields) < 4 or fields[0] != "true":
            return None
        return cls(Path(fields[1]), fields[2], fields[3] or "sha1", timeout)

    def _run(
        self, args: Sequence[str], stdin: bytes | None = None, ok_codes: Collection[int] = (0,)
    ) -> bytes:
        return run_git(args, self.top, stdin=stdin, timeout=self.timeout, ok_codes=ok_codes).stdout

    def _scope(self) -> list[str]:
        return ["--", self.prefix] if self.prefix else []

    @property
    def empty_tree(self) -> str:
        """The id of the empty tree, to diff against when a side has no commit."""
        return _EMPTY_TREE.get(self.object_format, _EMPTY_TREE["sha1"])

    def status(self) -> GitStatus:
        """HEAD, branch and the dirty paths under the project root, in one call."""
        out = self._run(
            [
                "status",
                "--porcelain=v2",
                "--branch",
                "-z",
                "--untracked-files=all",
                "--no-renames",
                *self._scope(),
            ]
        )
        return parse_status(out)

    def has_commit(self, rev: str) -> bool:
        """Whether ``rev`` names a commit present in the object store."""
        proc = run_git(
            ["cat-file", "-e", f"{rev}^{{commit}}"],
            self.top,
            timeout=self.timeout,
            ok_codes=(0, 1, 128),
        )
        return proc.returncode == 0

    def is_ancestor(self, ancestor: str, rev: str) -> bool:
        """Whether ``ancestor`` is reachable from ``rev`` (False when it is missing)."""
        proc = run_git(
            ["merge-base", "--is-ancestor", ancestor, rev],
            self.top,
            timeout=self.timeout,
            ok_codes=(0, 1, 128),
        )
        return proc.returncode == 0

    def changed_between(self, old: str | None, new: str | None) -> list[str]:
        """Paths whose content differs between two commits (None: no commit)."""
        old_tree = old or self.empty_tree
        new_tree = new or self.empty_tree
        if old_tree == new_tree:
            return []
        out = self._run(
            [
                "diff-tree",
                "-r",
                "-z",
                "--name-only",
                "--no-renames",
                "--no-commit-id",
                old_tree,
                new_tree,
                *self._scope(),
            ]
        )
        return [_decode_path(p) for p in out.split(b"\0") if p]

    def blobs_at(self, rev: str, paths: Collection[str]) -> dict[str, str]:
        """Object ids of ``paths`` in commit ``rev``, in one ``ls-tree`` call.

        Paths absent from ``rev`` are absent from the result. A submodule maps
        to its commit id.
        """
        if not paths:
            return {}
        wanted = set(paths)
        # ls-tree matches its path arguments literally and as prefixes; exact
        # matching below drops the contents of folders named like a file.
        scope = sorted(wanted)
        if sum(len(p) + 1 for p in scope) > _MAX_PATHSPEC_BYTES:
            scope = [self.prefix] if self.prefix else []
        out = self._run(["ls-tree", "-r", "-z", "--full-tree", rev, "--", *scope])
        blobs: dict[str, str] = {}
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            path = _decode_path(raw_path)
            if path in wanted:
                blobs[path] = meta.split(b" ")[2].decode()
        return blobs

    def hash_files(self, paths: Sequence[str]) -> list[str]:
        """Blob ids of work-tree files as ``git add`` would store them.

        One ``git hash-object --stdin-paths`` call, so clean filters and
        end-of-line conversion configured for the repository apply.

        Raises:
            GitError: A path vanished, contains a newline, or git failed.
        """
        if not paths:
            return []
        if any("\n" in p for p in paths):
            raise GitError("git hash-object --stdin-paths cannot take a newline in a path")
        stdin = "\n".join(paths).encode("utf-8", "surrogateescape") + b"\n"
        ids = self._run(["hash-object", "--stdin-paths"], stdin=stdin).decode().split()
        if len(ids) != len(paths):
            raise GitError("git hash-object returned the wrong number of ids")
        return ids

    def submodule_head(self, path: str) -> str | None:
        """The commit checked out in a submodule or nested repository."""
        try:
            proc = run_git(["rev-parse", "HEAD"], self.top / path, timeout=self.timeout)
        except GitError:
            return None
        return proc.stdout.decode().strip() or None

    def log(self, rev: str, limit: int, *, reverse: bool = False) -> list[str]:
        """``"<short sha> <subject>"`` of up to ``limit`` commits, newest first.

        Args:
            rev: A revision or range (``"a..b"``).
            limit: How many commits at most (the newest ones).
            reverse: List those commits oldest first instead.
        """
        args = ["log", "--no-color", "--no-show-signature", "--format=%h %s", f"-n{limit}"]
        if reverse:
            args.append("--reverse")
        out = self._run([*args, rev, "--"])
        return [line for line in out.decode("utf-8", "replace").split("\n") if line]
