"""The file-change watcher, with real file writes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from agent_continuity.capture import ProjectWatcher

DEBOUNCE = 0.3


class Recorder:
    """Collects callbacks and lets a test wait for them."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self._event = threading.Event()

    def __call__(self, paths: list[str]) -> None:
        self.calls.append(paths)
        self._event.set()

    def wait(self, timeout: float = 10.0) -> bool:
        return self._event.wait(timeout)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "projectDocs" / "tracking").mkdir(parents=True)
    (project / "src").mkdir()
    return project


def settle(debounce: float = DEBOUNCE) -> None:
    """Long enough for any late callback to have arrived."""
    time.sleep(debounce * 4)


def test_a_burst_of_writes_produces_one_callback(root: Path) -> None:
    recorder = Recorder()
    # The default quiet period: a busy CI machine must not split the burst.
    with ProjectWatcher(root, recorder):
        for index in range(50):
            (root / "src" / f"f{index:02d}.py").write_text(f"x = {index}\n")
        assert recorder.wait()
        settle(1.0)
    assert len(recorder.calls) == 1
    assert recorder.calls[0] == sorted(f"src/f{index:02d}.py" for index in range(50))


def test_writes_in_git_store_ignored_folders_and_temp_files_are_not_reported(
    root: Path,
) -> None:
    recorder = Recorder()
    (root / "build").mkdir()
    with ProjectWatcher(root, recorder, ignore=["build"], debounce=DEBOUNCE):
        (root / ".git" / "index.lock").write_text("x")
        (root / ".git" / "objects").mkdir()
        (root / ".git" / "objects" / "ab").write_text("x")
        (root / "projectDocs" / "tracking" / "session-registry.json").write_text("{}")
        (root / "build" / "out.o").write_text("o")
        (root / "src" / ".main.py.swp").write_text("swap")
        (root / "src" / "main.py~").write_text("backup")
        (root / "src" / ".#main.py").write_text("lock")
        settle()
    assert recorder.calls == []


def test_separate_bursts_produce_separate_callbacks(root: Path) -> None:
    recorder = Recorder()
    with ProjectWatcher(root, recorder, debounce=DEBOUNCE):
        (root / "one.txt").write_text("1")
        assert recorder.wait()
        settle()
        (root / "src" / "two.txt").write_text("2")
        settle()
    assert recorder.calls == [["one.txt"], ["src/two.txt"]]


def test_moves_and_deletions_report_both_names(root: Path) -> None:
    (root / "old.txt").write_text("o")
    (root / "doomed.txt").write_text("d")
    recorder = Recorder()
    with ProjectWatcher(root, recorder, debounce=DEBOUNCE):
        (root / "old.txt").rename(root / "src" / "new.txt")
        (root / "doomed.txt").unlink()
        assert recorder.wait()
        settle()
    assert recorder.calls == [["doomed.txt", "old.txt", "src/new.txt"]]


def test_stop_reports_the_pending_burst_and_joins_its_threads(root: Path) -> None:
    recorder = Recorder()
    before = set(threading.enumerate())
    watcher = ProjectWatcher(root, recorder, debounce=30.0)
    watcher.start()
    assert watcher.running
    (root / "late.txt").write_text("l")
    time.sleep(0.5)  # let the event reach the watcher, well inside the debounce
    watcher.stop()
    assert not watcher.running
    assert recorder.calls == [["late.txt"]]
    assert set(threading.enumerate()) <= before


def test_a_failing_callback_does_not_stop_the_watcher(root: Path) -> None:
    calls: list[list[str]] = []
    done = threading.Event()

    def flaky(paths: list[str]) -> None:
        calls.append(paths)
        if len(calls) == 1:
            raise RuntimeError("callback bug")
        done.set()

    with ProjectWatcher(root, flaky, debounce=DEBOUNCE):
        (root / "a.txt").write_text("a")
        settle()
        (root / "b.txt").write_text("b")
        assert done.wait(10.0)
    assert calls == [["a.txt"], ["b.txt"]]
