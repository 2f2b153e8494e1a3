"""`continuity run` and the agent it runs, through the command line as a coding agent uses it.

The agent records its own words with `continuity message` / `update` under the
lease `run` lends it; every view of the session (default recovery, `show`,
`prompt`) must hold them, however the command ends.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli_support import cli, cli_json

# The agent's own `continuity` commands, as a shell script would run them.
CLI = f"{sys.executable} -m agent_continuity.cli"
AGENT_WORDS = (
    f'{CLI} message --role assistant "I chose X" && {CLI} update --decision "use X" --next step-2'
)


@pytest.fixture(params=["files", "sqlite"])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    url = f"files:{tmp_path / 'tracking'}"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 's.db'}"
    return root, url


def _session_of(result: subprocess.CompletedProcess[str]) -> str:
    line = next(x for x in result.stderr.splitlines() if " running " in x)
    return line.rsplit(" ", 1)[1]


def _assert_agent_words_everywhere(root: Path, url: str, session_id: str, *, latest: bool) -> None:
    """`show --json`, `prompt` and `recover --json` all hold the agent's message, decision, step."""
    shown = cli_json(root, url, "show", session_id)
    assert shown["session"]["context"]["keyDecisions"] == ["use X"]
    assert shown["session"]["state"]["nextSteps"] == ["step-2"]
    assert [m["text"] for m in shown["recentMessages"]] == ["I chose X"]
    prompt_args = ("prompt",) if latest else ("prompt", session_id)
    prompt = cli(root, url, *prompt_args)
    assert prompt.returncode == 0, prompt.stderr
    assert "use X" in prompt.stdout
    assert "step-2" in prompt.stdout
    assert "I chose X" in prompt.stdout
    recover_args = ("recover", "--no") if latest else ("recover", session_id, "--no")
    recovered = cli_json(root, url, *recover_args)
    assert recovered["sessionId"] == session_id
    assert recovered["nextSteps"] == ["step-2"]
    assert "use X" in recovered["prompt"]
    assert "I chose X" in recovered["prompt"]


def test_an_agent_that_fails_leaves_its_words_in_default_recovery(
    project: tuple[Path, str],
) -> None:
    root, url = project
    result = cli(root, url, "run", "--", "sh", "-c", f"{AGENT_WORDS} && exit 3")
    assert result.returncode == 3, result.stderr
    session_id = _session_of(result)
    assert cli_json(root, url, "show", session_id)["session"]["status"] == "interrupted"
    _assert_agent_words_everywhere(root, url, session_id, latest=True)


def test_an_agent_killed_with_its_runner_leaves_its_words_in_default_recovery(
    project: tuple[Path, str],
) -> None:
    root, url = project
    # The agent kills `continuity run` itself (kill -9 of its parent), as a
    # crash of the terminal would.
    result = cli(root, url, "run", "--", "sh", "-c", f"{AGENT_WORDS} && kill -9 $PPID")
    assert result.returncode == -9
    session_id = _session_of(result)
    _assert_agent_words_everywhere(root, url, session_id, latest=True)


def test_an_agent_that_finishes_leaves_its_words_in_every_view(
    project: tuple[Path, str],
) -> None:
    root, url = project
    result = cli(root, url, "run", "--", "sh", "-c", AGENT_WORDS)
    assert result.returncode == 0, result.stderr
    session_id = _session_of(result)
    assert cli_json(root, url, "show", session_id)["session"]["status"] == "completed"
    shown = cli_json(root, url, "show", session_id)
    assert shown["session"]["context"]["keyDecisions"] == ["use X"]
    prompt = cli(root, url, "prompt", session_id)
    assert "use X" in prompt.stdout
    assert "I chose X" in prompt.stdout
    assert "step-2" in prompt.stdout


def test_a_point_made_without_an_append_holds_what_the_agent_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent_continuity import SessionManager
    from agent_continuity.lifecycle import LEASE_ENV

    url = f"files:{tmp_path / 'tracking'}"
    owner = SessionManager(store=url, project_dir=tmp_path, user_id="alice", observer=False)
    session = owner.start(auto_save=False)
    monkeypatch.setenv(LEASE_ENV, session.share_lease())
    agent = SessionManager(store=url, project_dir=tmp_path, user_id="alice", observer=False)
    agent.attach(session.id).add_message("assistant", "I chose X")
    agent.update(session.id, decisions=["use X"])
    # An interval save of the owner: no append of its own tells it the journal moved.
    point = owner.store.load_point(session.checkpoint("auto"))
    assert point.message_count == 1
    assert point.session.context.key_decisions == ["use X"]
    assert point.seq == session.view.seq == agent.load(session.id).view.seq
    session.end()
    owner.close()
    agent.close()


def _real_interrupted_session(root: Path, url: str) -> str:
    started = cli_json(root, url, "start", "--task", "TASK-7")
    session_id: str = started["sessionId"]
    assert cli(root, url, "message", "--role", "user", "add reminders").returncode == 0
    assert cli(root, url, "interrupt", "--cause", "terminal closed").returncode == 0
    return session_id


def _one_error_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("continuity: error")]
    assert len(errors) == 1, result.stderr
    assert all(w in errors[0] for w in words), errors[0]
    assert "Traceback" not in result.stderr


def test_a_mistyped_command_starts_no_session_and_recovery_finds_the_real_one(
    project: tuple[Path, str],
) -> None:
    root, url = project
    real = _real_interrupted_session(root, url)
    missing = cli(root, url, "run", "--", "no-such-agent-command", "--flag")
    _one_error_line(missing, "no-such-agent-command", "command not found")
    (root / "notes.txt").write_text("not a program\n")
    denied = cli(root, url, "run", "--", "./notes.txt")
    _one_error_line(denied, "./notes.txt", "permission denied")
    listed = cli_json(root, url, "list")["sessions"]
    assert [s["id"] for s in listed] == [real]
    recovered = cli_json(root, url, "recover", "--no")
    assert recovered["sessionId"] == real


def test_a_command_whose_interpreter_is_missing_leaves_an_archived_session(
    project: tuple[Path, str],
) -> None:
    root, url = project
    real = _real_interrupted_session(root, url)
    script = root / "agent.sh"
    script.write_text("#!/no/such/interpreter\necho hi\n")
    script.chmod(0o755)
    result = cli(root, url, "run", "--", "./agent.sh")
    _one_error_line(result, "./agent.sh", "interpreter", "archived")
    statuses = {s["id"]: s["status"] for s in cli_json(root, url, "list")["sessions"]}
    assert statuses[real] == "interrupted"
    assert sorted(statuses.values()) == ["archived", "interrupted"]
    assert cli_json(root, url, "recover", "--no")["sessionId"] == real


def test_an_empty_interrupted_session_never_outranks_one_with_content(
    project: tuple[Path, str],
) -> None:
    root, url = project
    real = _real_interrupted_session(root, url)
    # A command that ran but recorded nothing, and died: newer, and empty.
    empty = cli(root, url, "run", "--", "sh", "-c", "exit 1")
    assert empty.returncode == 1
    empty_id = _session_of(empty)
    assert cli_json(root, url, "show", empty_id)["session"]["status"] == "interrupted"
    prompt = cli(root, url, "prompt")
    assert prompt.returncode == 0, prompt.stderr
    assert real in prompt.stdout
    assert "add reminders" in prompt.stdout
    assert cli_json(root, url, "summary")["sessionId"] == real
    recovered = cli_json(root, url, "recover", "--no")
    assert recovered["sessionId"] == real
    # Named, the empty one is still there to look at.
    assert cli_json(root, url, "recover", empty_id, "--no")["sessionId"] == empty_id
