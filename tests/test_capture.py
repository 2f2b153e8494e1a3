"""The project observer, against real git repositories and plain folders."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent_continuity.capture import ProjectObserver, run_build
from agent_continuity.capture import observer as observer_module
from agent_continuity.capture.benchmark import benchmark_git, benchmark_index
from agent_continuity.capture.file_index import sha256_of_file
from agent_continuity.model import CodeContext

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

HOUR_NS = 3600 * 1_000_000_000


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return proc.stdout.strip()


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def age(path: Path, seconds: int = 3600) -> None:
    """Backdate a file, as if it had been written long before the save."""
    stamp = time.time_ns() - seconds * 1_000_000_000
    os.utime(path, ns=(stamp, stamp))


def rewrite_within_one_tick(path: Path, text: str) -> None:
    """Rewrite a file keeping its size and mtime, as a coarse file-system clock would."""
    before = path.stat()
    path.write_text(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "commit.gpgsign", "false")
    write(root, "a.txt", "alpha\n")
    write(root, "src/b.py", "print('b')\n")
    write(root, "docs/c.md", "# c\n")
    commit_all(root, "initial")
    return root


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "plain"
    for rel, text in {"a.txt": "alpha\n", "src/b.py": "b\n", "docs/c.md": "c\n"}.items():
        age(write(root, rel, text))
    return root


# -- git ----------------------------------------------------------------------


@needs_git
def test_clean_repository_snapshot(repo: Path) -> None:
    moment = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    code = ProjectObserver(repo, clock=lambda: moment).snapshot()
    assert code.vcs == "git"
    assert code.working_branch == "main"
    assert code.head == git(repo, "rev-parse", "HEAD")
    assert code.pending_changes is False
    assert code.files == {}
    assert code.recent_commits == [f"{git(repo, 'rev-parse', '--short', 'HEAD')} initial"]
    assert code.build_status == "unknown"
    assert code.observed_at == moment


@needs_git
def test_reports_exactly_the_files_modified_added_and_deleted(repo: Path) -> None:
    observer = ProjectObserver(repo)
    saved = observer.snapshot()
    write(repo, "a.txt", "alpha changed\n")
    write(repo, "new/untracked.txt", "u\n")
    write(repo, "staged.txt", "s\n")
    git(repo, "add", "staged.txt")
    (repo / "docs/c.md").unlink()

    seen = observer.observe(saved)

    assert seen.file_changes == {
        "a.txt": "modified",
        "docs/c.md": "deleted",
        "new/untracked.txt": "added",
        "staged.txt": "added",
    }
    assert list(seen.file_changes) == sorted(seen.file_changes)
    files = seen.code.files
    assert files["a.txt"].digest == git(repo, "hash-object", "a.txt")
    assert files["a.txt"].size == len("alpha changed\n")
    assert files["docs/c.md"].size == -1 and files["docs/c.md"].digest is None
    assert seen.code.pending_changes is True
    assert seen.commits_since == [] and seen.saved_head_reachable is True


@needs_git
def test_observing_never_writes_the_git_index(repo: Path) -> None:
    index = repo / ".git" / "index"
    before = index.read_bytes()
    age(repo / "src/b.py")  # stale stat data: a plain `git status` would rewrite the index
    write(repo, "a.txt", "changed\n")
    observer = ProjectObserver(repo)
    observer.observe(observer.snapshot())
    assert index.read_bytes() == before
    assert not (repo / ".git" / "index.lock").exists()


@needs_git
def test_touched_but_identical_files_are_not_changes(repo: Path) -> None:
    observer = ProjectObserver(repo)
    write(repo, "a.txt", "dirty\n")
    saved = observer.snapshot()
    os.utime(repo / "a.txt")
    os.utime(repo / "src/b.py")
    assert observer.observe(saved).file_changes == {}


@needs_git
def test_a_same_size_rewrite_right_after_saving_is_seen(repo: Path) -> None:
    observer = ProjectObserver(repo)
    path = write(repo, "a.txt", "aaaa\n")
    saved = observer.snapshot()
    rewrite_within_one_tick(path, "bbbb\n")
    assert observer.observe(saved).file_changes == {"a.txt": "modified"}


@needs_git
def test_dirty_file_reverted_after_saving_is_modified(repo: Path) -> None:
    observer = ProjectObserver(repo)
    write(repo, "a.txt", "work in progress\n")
    saved = observer.snapshot()
    git(repo, "checkout", "--", "a.txt")
    seen = observer.observe(saved)
    assert seen.file_changes == {"a.txt": "modified"}
    assert seen.code.files == {}


@needs_git
def test_a_change_committed_since_saving_is_unchanged(repo: Path) -> None:
    observer = ProjectObserver(repo)
    write(repo, "a.txt", "finished\n")
    saved = observer.snapshot()
    commit_all(repo, "finish a")

    seen = observer.observe(saved)

    assert seen.file_changes == {}
    assert seen.commits_since == [f"{git(repo, 'rev-parse', '--short', 'HEAD')} finish a"]
    assert seen.saved_head_reachable is True

    write(repo, "a.txt", "finished, then changed\n")
    commit_all(repo, "change a again")
    assert observer.observe(saved).file_changes == {"a.txt": "modified"}


@needs_git
def test_unusual_file_names_are_reported_literally(repo: Path) -> None:
    names = ["with space.txt", "glob*[x].txt", "ünïcode.md", "tab\tname.txt"]
    for name in names:
        write(repo, name, "v1\n")
    write(repo, "glob-match.txt", "v1\n")  # would match "glob*" as a pattern
    commit_all(repo, "odd names")
    observer = ProjectObserver(repo)
    for name in names:
        write(repo, name, "v2\n")
    saved = observer.snapshot()
    assert sorted(saved.files) == sorted(names)
    commit_all(repo, "v2")
    write(repo, "glob-match.txt", "v2\n")
    commit_all(repo, "glob-match v2")

    assert observer.observe(saved).file_changes == {"glob-match.txt": "modified"}


@needs_git
def test_commits_since_are_listed_oldest_first_with_their_files(repo: Path) -> None:
    observer = ProjectObserver(repo)
    saved = observer.snapshot()
    write(repo, "src/b.py", "print('b2')\n")
    first = commit_all(repo, "change b")
    write(repo, "added.py", "x = 1\n")
    (repo / "docs/c.md").unlink()
    second = commit_all(repo, "add, delete")

    seen = observer.observe(saved)

    short = [git(repo, "rev-parse", "--short", rev) for rev in (first, second)]
    assert seen.commits_since == [f"{short[0]} change b", f"{short[1]} add, delete"]
    assert seen.code.recent_commits[:2] == [f"{short[1]} add, delete", f"{short[0]} change b"]
    assert seen.file_changes == {
        "added.py": "added",
        "docs/c.md": "deleted",
        "src/b.py": "modified",
    }
    assert seen.saved_head_reachable is True


@needs_git
def test_branch_switch_is_reported(repo: Path) -> None:
    observer = ProjectObserver(repo)
    saved = observer.snapshot()
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo, "feature.txt", "f\n")
    commit_all(repo, "feature work")

    seen = observer.observe(saved)

    assert saved.working_branch == "main"
    assert seen.code.working_branch == "feature"
    assert seen.saved_head_reachable is True
    assert seen.file_changes == {"feature.txt": "added"}


@needs_git
def test_saved_head_on_a_deleted_branch_is_not_reachable(repo: Path) -> None:
    observer = ProjectObserver(repo)
    git(repo, "checkout", "-q", "-b", "topic")
    write(repo, "a.txt", "topic version\n")
    commit_all(repo, "topic change")
    saved = observer.snapshot()
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "-D", "topic")

    # Still in the object store: not an ancestor, but the content is comparable.
    seen = observer.observe(saved)
    assert seen.saved_head_reachable is False
    assert seen.code.working_branch == "main"
    assert seen.file_changes == {"a.txt": "modified"}

    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    seen = observer.observe(saved)
    assert seen.saved_head_reachable is False
    assert seen.commits_since == []


@needs_git
def test_symlinks_are_compared_by_their_target_as_git_stores_them(repo: Path) -> None:
    (repo / "link").symlink_to("a.txt")
    commit_all(repo, "add link")
    observer = ProjectObserver(repo)
    saved = observer.snapshot()
    (repo / "link").unlink()
    (repo / "link").symlink_to("src/b.py")

    seen = observer.observe(saved)
    assert seen.file_changes == {"link": "modified"}
    git(repo, "add", "link")
    git(repo, "commit", "-q", "-m", "retarget link")
    assert observer.observe(seen.code).file_changes == {}

    (repo / "link").unlink()
    (repo / "link").symlink_to("a.txt")
    assert observer.observe(saved).file_changes == {}
    assert observer.snapshot().files["link"].digest == git(repo, "rev-parse", "HEAD~1:link")


@needs_git
def test_ignored_folders_and_gitignored_files_are_left_out(repo: Path) -> None:
    write(repo, ".gitignore", "*.log\n")
    commit_all(repo, "ignore logs")
    observer = ProjectObserver(repo, ignore=["scratch/"])
    saved = observer.snapshot()
    write(repo, "projectDocs/tracking/sessions/session-registry.json", "{}")
    write(repo, "scratch/notes.txt", "n\n")
    write(repo, "run.log", "log\n")
    write(repo, "kept.txt", "k\n")

    seen = observer.observe(saved)

    assert seen.file_changes == {"kept.txt": "added"}
    assert set(seen.code.files) == {"kept.txt"}


@needs_git
def test_root_below_the_repository_top_reports_paths_from_the_root(repo: Path) -> None:
    observer = ProjectObserver(repo / "src")
    saved = observer.snapshot()
    write(repo, "src/b.py", "changed\n")
    write(repo, "src/pkg/new.py", "n\n")
    write(repo, "a.txt", "outside the root\n")

    seen = observer.observe(saved)

    assert seen.file_changes == {"b.py": "modified", "pkg/new.py": "added"}
    assert seen.code.working_branch == "main"


@needs_git
def test_saved_context_survives_the_wire(repo: Path) -> None:
    observer = ProjectObserver(repo)
    write(repo, "a.txt", "dirty\n")
    saved = CodeContext.model_validate(observer.snapshot().to_wire())
    commit_all(repo, "commit a")
    assert ProjectObserver(repo).observe(saved).file_changes == {}


@needs_git
def test_last_modified_files_are_the_newest_dirty_files_first(repo: Path) -> None:
    for index, rel in enumerate(["a.txt", "src/b.py", "fresh.txt"]):
        path = write(repo, rel, f"v{index}\n")
        age(path, 100 - index)
    (repo / "docs/c.md").unlink()
    code = ProjectObserver(repo).snapshot()
    assert code.last_modified_files == ["fresh.txt", "src/b.py", "a.txt"]


@needs_git
def test_a_repository_without_commits_then_its_first_commit(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    write(root, "a.txt", "a\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    observer = ProjectObserver(root)
    saved = observer.snapshot()
    assert saved.vcs == "git" and saved.head is None and saved.working_branch == "main"
    assert set(saved.files) == {"a.txt"} and saved.recent_commits == []

    write(root, "b.txt", "b\n")
    commit_all(root, "first")
    seen = observer.observe(saved)

    assert seen.file_changes == {"b.txt": "added"}
    assert seen.commits_since == [f"{git(root, 'rev-parse', '--short', 'HEAD')} first"]
    assert seen.saved_head_reachable is True


@needs_git
def test_missing_paths(repo: Path) -> None:
    (repo / "a.txt").unlink()
    seen = ProjectObserver(repo).observe(check_paths=["src/b.py", "a.txt", "gone/x.py"])
    assert seen.missing_paths == ["a.txt", "gone/x.py"]
    assert seen.file_changes == {} and seen.saved_head_reachable is None


@needs_git
def test_a_folder_that_becomes_a_repository_is_compared_file_by_file(folder: Path) -> None:
    observer = ProjectObserver(folder)
    saved = observer.snapshot()
    git(folder, "init", "-q", "-b", "main")
    write(folder, "a.txt", "changed\n")

    seen = observer.observe(saved)

    assert seen.code.vcs == "git"
    assert seen.file_changes == {"a.txt": "modified"}


def test_missing_git_binary_degrades_to_the_file_index(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "no-git-here"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    code = ProjectObserver(repo).snapshot()
    assert code.vcs == "none"
    assert "a.txt" in code.files and ".git/HEAD" not in code.files


# -- plain folders ------------------------------------------------------------


def test_plain_folder_indexes_every_file_with_sha256(folder: Path) -> None:
    code = ProjectObserver(folder).snapshot()
    assert code.vcs == "none" and code.head is None and code.working_branch is None
    assert sorted(code.files) == ["a.txt", "docs/c.md", "src/b.py"]
    assert code.files["a.txt"].digest == hashlib.sha256(b"alpha\n").hexdigest()


def test_plain_folder_reports_exactly_modified_added_and_deleted(folder: Path) -> None:
    observer = ProjectObserver(folder)
    saved = observer.snapshot()
    write(folder, "a.txt", "alpha changed\n")
    write(folder, "new/d.txt", "d\n")
    (folder / "docs/c.md").unlink()
    os.utime(folder / "src/b.py")  # touched, content identical
    write(folder, "projectDocs/tracking/x.json", "{}")

    seen = observer.observe(saved)

    assert seen.file_changes == {
        "a.txt": "modified",
        "docs/c.md": "deleted",
        "new/d.txt": "added",
    }
    assert seen.saved_head_reachable is None and seen.commits_since == []


def test_plain_folder_rehashes_only_files_whose_stat_changed(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = ProjectObserver(folder).snapshot()
    write(folder, "a.txt", "alpha changed\n")
    hashed: list[Path] = []

    def counting(path: Path) -> str:
        hashed.append(path)
        return sha256_of_file(path)

    monkeypatch.setattr(observer_module, "sha256_of_file", counting)
    observer = ProjectObserver(folder)  # a new process: only the saved digests help

    assert observer.observe(saved).file_changes == {"a.txt": "modified"}
    assert hashed == [folder.resolve() / "a.txt"]
    hashed.clear()
    age(folder / "a.txt")
    observer.snapshot()
    observer.snapshot()
    assert hashed == [folder.resolve() / "a.txt"]  # then remembered in memory


def test_plain_folder_records_symlinks_without_following_them(folder: Path) -> None:
    (folder / "link").symlink_to("a.txt")
    (folder / "loop").symlink_to(".")
    observer = ProjectObserver(folder)
    saved = observer.snapshot()
    assert sorted(saved.files) == ["a.txt", "docs/c.md", "link", "loop", "src/b.py"]
    (folder / "link").unlink()
    (folder / "link").symlink_to("src/b.py")
    assert observer.observe(saved).file_changes == {"link": "modified"}


def test_plain_folder_same_size_rewrite_is_seen(folder: Path) -> None:
    observer = ProjectObserver(folder)
    path = write(folder, "quick.txt", "aaaa")
    saved = observer.snapshot()
    rewrite_within_one_tick(path, "bbbb")
    assert observer.observe(saved).file_changes == {"quick.txt": "modified"}


# -- benchmarks ---------------------------------------------------------------


@needs_git
def test_benchmarks_run_on_a_small_tree(tmp_path: Path) -> None:
    timings = benchmark_git(tmp_path / "git", files=300, modified=10, repeat=1)
    assert set(timings) == {"git_status", "snapshot", "observe", "ratio"}
    timings = benchmark_index(tmp_path / "plain", files=300, modified=10, repeat=1)
    assert all(seconds > 0 for seconds in timings.values())


# -- build status -------------------------------------------------------------


def python_command(code: str) -> str:
    return f'"{sys.executable}" -c "{code}"'


@pytest.mark.parametrize(
    ("command", "timeout", "expected"),
    [
        (python_command("pass"), 30.0, "passing"),
        (python_command("import sys; sys.exit(3)"), 30.0, "failing"),
        (python_command("import time; time.sleep(30)"), 0.5, "timeout"),
        # Through the shell, as in a terminal: a command that is not found fails (127).
        ("no-such-command-anywhere --flag", 30.0, "failing"),
    ],
)
def test_build_status(folder: Path, command: str, timeout: float, expected: str) -> None:
    state = folder.parent / "build-state.json"
    observer = ProjectObserver(
        folder, build_command=command, build_timeout=timeout, build_state=state
    )
    assert observer.snapshot().build_status == "unknown"  # not run unless asked
    # A project-state snapshot starts the build and does not wait for it.
    assert observer.snapshot(with_build=True).build_status == "unknown"
    assert observer.build is not None
    observer.build.wait(timeout=60)
    code = observer.snapshot()
    assert code.build_status == expected
    assert code.build is not None and code.build.command == command


def test_build_runs_in_the_project_root(folder: Path) -> None:
    command = python_command("import pathlib, sys; sys.exit(not pathlib.Path('a.txt').exists())")
    assert run_build(command, folder) == "passing"


def test_a_plain_folder_past_the_index_limit_is_flagged_not_indexed(tmp_path: Path) -> None:
    for i in range(12):
        (tmp_path / f"f{i}.txt").write_text(str(i))
    small = ProjectObserver(tmp_path, max_files=10)
    code = small.snapshot()
    assert code.index_limit_exceeded and code.files == {}
    (tmp_path / "f0.txt").write_text("changed")
    observation = small.observe(since=code)
    assert observation.file_changes == {}
    assert observation.code.index_limit_exceeded
    assert not ProjectObserver(tmp_path, max_files=100).snapshot().index_limit_exceeded


def test_generated_folders_are_not_indexed_outside_git(tmp_path: Path) -> None:
    (tmp_path / "node_modules" / "pkg").mkdir(parents=True)
    (tmp_path / "node_modules" / "pkg" / "index.js").write_text("x")
    (tmp_path / "src" / "__pycache__").mkdir(parents=True)
    (tmp_path / "src" / "__pycache__" / "a.pyc").write_bytes(b"x")
    (tmp_path / "src" / "a.py").write_text("a")
    assert sorted(ProjectObserver(tmp_path).snapshot().files) == ["src/a.py"]
