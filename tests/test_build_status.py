"""`build-command` runs on project-state saves, in the background, and its result is shown.

The command runs through the shell in the project root, bounded by
``build-timeout``; no append waits for it; the latest result (status, exit
code, when) reaches the next recovery point, ``show``, ``recover --json`` and
the recovery prompt.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from agent_continuity import SessionManager
from agent_continuity.capture.build import default_state_file
from agent_continuity.config import Config
from cli_support import continuity as cli
from cli_support import git, git_project


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The latest build result is kept in the user's cache folder: keep it in the test's.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return git_project(tmp_path / "repo")


def manager(root: Path, command: str, timeout: float = 30.0) -> SessionManager:
    config = Config(user="alice", build_command=command, build_timeout=timeout)
    return SessionManager(project_dir=root, user_id="alice", config=config)


def wait_for_result(root: Path, seconds: float = 60.0) -> dict[str, object]:
    state = default_state_file(root)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if state.exists():
            data: dict[str, object] = json.loads(state.read_text())
            return data
        time.sleep(0.05)
    raise AssertionError(f"no build result in {state} after {seconds} s")


@pytest.mark.parametrize(
    ("command", "status", "exit_code"),
    [
        ("true && echo ok", "passing", 0),  # a shell line, as a user writes it
        ("test -f app.py", "passing", 0),  # run in the project root
        ("exit 3", "failing", 3),
        ("no-such-build-tool check", "failing", 127),
    ],
)
def test_a_project_state_save_runs_the_build_and_the_next_point_records_it(
    repo: Path, command: str, status: str, exit_code: int
) -> None:
    mgr = manager(repo, command)
    s = mgr.start(task="TASK-1", auto_save=False, owned_by_process=False)
    first = mgr.store.load_point(s.checkpoint())
    assert first.code_context.build_status == "unknown"  # started, not waited for
    wait_for_result(repo)

    point = mgr.store.load_point(s.checkpoint())

    assert point.code_context.build_status == status
    build = point.code_context.build
    assert build is not None
    assert (build.command, build.status, build.exit_code) == (command, status, exit_code)
    assert build.started <= build.finished
    s.end()
    mgr.close()


def test_a_build_past_its_timeout_is_killed_and_no_append_waits_for_it(repo: Path) -> None:
    timeout = 3.0
    mgr = manager(repo, "sleep 30", timeout)
    s = mgr.start(task="TASK-1", auto_save=False, owned_by_process=False)
    began = time.monotonic()
    s.add_message("user", "Add SMS reminders")
    s.complete_step("schema")  # a task-completion point: a project-state save in the append
    s.checkpoint()
    s.add_message("assistant", "Schema done")
    took = time.monotonic() - began
    assert took < timeout / 2, f"the appends waited {took:.2f} s for the build"

    result = wait_for_result(repo, seconds=30)
    elapsed = time.monotonic() - began

    assert result["status"] == "timeout" and result["exitCode"] is None
    assert elapsed < 25, "the build was not stopped at its timeout"
    point = mgr.store.load_point(s.checkpoint())
    assert point.code_context.build_status == "timeout"
    s.end()
    mgr.close()


def test_an_unchanged_project_is_not_built_again(repo: Path) -> None:
    marker = repo.parent / "runs.txt"
    mgr = manager(repo, f"echo run >> {marker}")
    s = mgr.start(task="TASK-1", auto_save=False, owned_by_process=False)
    s.checkpoint()
    assert mgr.observer is not None and mgr.observer.build is not None
    mgr.observer.build.wait(timeout=60)
    s.checkpoint()
    s.checkpoint()
    mgr.observer.build.wait(timeout=60)
    assert marker.read_text().count("run") == 1
    (repo / "app.py").write_text("print('changed')\n")
    s.checkpoint()
    mgr.observer.build.wait(timeout=60)
    assert marker.read_text().count("run") == 2
    s.end()
    mgr.close()


def test_show_recover_and_prompt_report_the_build_from_the_command_line(repo: Path) -> None:
    (repo / "continuity.toml").write_text('build-command = "exit 3"\n')
    git(repo, "add", "continuity.toml")
    git(repo, "commit", "-q", "-m", "config")
    assert cli(repo, "start", "--task", "TASK-1").returncode == 0
    assert cli(repo, "update", "--next", "fix the build").returncode == 0
    saved = cli(repo, "save")
    assert saved.returncode == 0, saved.stderr
    wait_for_result(repo)  # the build outlives the `save` that started it

    shown = json.loads(cli(repo, "show", "--json", session_id(repo)).stdout)
    code = shown["codeContext"]
    assert code["buildStatus"] == "failing"
    assert (code["build"]["command"], code["build"]["exitCode"]) == ("exit 3", 3)
    assert "build: failing, exit 3: `exit 3`" in cli(repo, "show", session_id(repo)).stdout

    assert cli(repo, "interrupt", "--cause", "laptop slept").returncode == 0
    prompt = cli(repo, "prompt")
    assert prompt.returncode == 0, prompt.stderr
    assert "- **Build**: failing (exit 3 from `exit 3`" in prompt.stdout
    recovered = cli(repo, "recover", "--json")
    assert recovered.returncode == 0, recovered.stderr
    data = json.loads(recovered.stdout)
    assert data["codeContext"]["buildStatus"] == "failing"
    assert data["codeContext"]["build"]["exitCode"] == 3
    assert "- **Build**: failing (exit 3 from `exit 3`" in data["prompt"]
    sync = next(step for step in data["steps"] if step["output"] == "state-diff")
    assert "build failing" in sync["detail"]


def session_id(root: Path) -> str:
    listed = json.loads(cli(root, "list", "--json").stdout)["sessions"]
    return str(listed[-1]["id"])
