"""Predictive context loading: `recover --json`'s predictedContext and the prompt's section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent_continuity import SessionManager
from agent_continuity.recovery.prediction import Commit, PredictionEvidence, rank_files
from cli_support import cli, git, git_project

STORES = ["files", "sqlite"]


def project_with_history(tmp_path: Path) -> Path:
    """A git project where src/sms.py and tests/test_sms.py always change together."""
    root = git_project(tmp_path / "project")
    for path in ("src/sms.py", "tests/test_sms.py", "src/booking.py", "docs/sms.md"):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("start\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "layout")
    for n in range(3):
        for path in ("src/sms.py", "tests/test_sms.py"):
            with (root / path).open("a") as handle:
                handle.write(f"change {n}\n")
        git(root, "commit", "-q", "-am", f"sms {n}")
    with (root / "src/booking.py").open("a") as handle:
        handle.write("unrelated\n")
    git(root, "commit", "-q", "-am", "booking")
    return root


def url_for(kind: str, tmp_path: Path) -> str:
    return f"files:{tmp_path / 'tracking'}" if kind == "files" else f"sqlite:///{tmp_path / 's.db'}"


def record_sessions(root: Path, url: str) -> tuple[str, str]:
    """An earlier session on TASK-1 (ended), then one that is interrupted: their ids."""

    def ok(*args: str) -> dict[str, Any]:
        done = cli(root, url, *args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    earlier = ok("start", "--task", "TASK-1")["sessionId"]
    ok("update", "--file", "docs/sms.md", "--decision", "Send at most one SMS per booking")
    ok("end")
    current = ok("start", "--task", "TASK-1")["sessionId"]
    ok(
        "update",
        "--file",
        "src/sms.py",
        "--decision",
        "Twilio is the SMS provider",
        "--next",
        "test the sms endpoints",
    )
    ok("interrupt", "--cause", "terminal closed")
    return earlier, current


def check_predictions(predicted: list[dict[str, Any]], earlier: str) -> None:
    assert predicted, "nothing predicted"
    assert all(set(p) == {"kind", "ref", "reason", "score"} for p in predicted)
    scores = [p["score"] for p in predicted]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    by_ref = {(p["kind"], p["ref"]): p for p in predicted}
    # The session's own file first, with its reason.
    assert (predicted[0]["kind"], predicted[0]["ref"]) == ("file", "src/sms.py")
    assert "changed in this session" in predicted[0]["reason"]
    # The file git history changes with it, ahead of the one it does not.
    files = [p["ref"] for p in predicted if p["kind"] == "file"]
    assert files.index("tests/test_sms.py") < files.index("src/booking.py")
    assert "src/sms.py" in by_ref[("file", "tests/test_sms.py")]["reason"]
    # What the earlier session on the same task touched and decided, and the session itself.
    assert earlier in by_ref[("file", "docs/sms.md")]["reason"]
    assert "same task TASK-1" in by_ref[("session", earlier)]["reason"]
    twilio = by_ref[("decision", "Twilio is the SMS provider")]
    assert "sms" in twilio["reason"]
    assert ("decision", "Send at most one SMS per booking") in by_ref


@pytest.mark.parametrize("kind", STORES)
def test_recover_json_predicts_files_sessions_and_decisions(tmp_path: Path, kind: str) -> None:
    root = project_with_history(tmp_path)
    url = url_for(kind, tmp_path)
    earlier, current = record_sessions(root, url)
    done = cli(root, url, "recover", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["sessionId"] == current
    check_predictions(data["predictedContext"], earlier)
    section = data["prompt"].split("## Predicted Context:")[1].split("\n## ")[0]
    assert "file src/sms.py (" in section and "tests/test_sms.py" in section


@pytest.mark.parametrize("kind", STORES)
def test_the_public_api_gives_the_same_predictions(tmp_path: Path, kind: str) -> None:
    root = project_with_history(tmp_path)
    url = url_for(kind, tmp_path)
    earlier, current = record_sessions(root, url)
    with SessionManager(store=url, project_dir=root, user_id="alice") as mgr:
        result = mgr.analyse(current)
    wire = result.to_wire()
    check_predictions(wire["predictedContext"], earlier)
    assert result.predicted_context[0].ref == "src/sms.py"


def test_the_prompt_stays_within_its_budget_trimming_predictions_first(tmp_path: Path) -> None:
    root = project_with_history(tmp_path)
    url = url_for("sqlite", tmp_path)
    record_sessions(root, url)
    (root / "continuity.toml").write_text("[recovery]\nprompt-budget-tokens = 350\n")
    with SessionManager(store=url, project_dir=root, user_id="alice") as mgr:
        result = mgr.analyse()
    assert len(result.prompt) <= 350 * 4
    assert "test the sms endpoints" in result.prompt  # next steps are kept
    # The predictions were trimmed (the best kept), the JSON keeps every one.
    section = result.prompt.split("## Predicted Context:")[1].split("\n## ")[0]
    assert "omitted" in section and "src/sms.py" in section
    assert len(result.predicted_context) >= 5


def test_co_change_reasons_can_be_checked_against_the_history() -> None:
    commits = [  # newest first
        Commit("c5", ("setup.py",)),
        Commit("c4", ("billing.py", "ledger.py")),
        Commit("c3", ("README.md",)),
        Commit("c2", ("billing.py", "ledger.py")),
        Commit("c1", ("billing.py", "ledger.py")),
    ]
    ranked = rank_files(["billing.py"], PredictionEvidence(commits=commits), limit=4)
    assert [path for path, _, _ in ranked][:2] == ["billing.py", "ledger.py"]
    reasons = {path: reason for path, _, reason in ranked}
    # Each reason states a fact of the history above, the strongest first.
    assert reasons["ledger.py"] == (
        "changed in 3 of the last 5 commits; "
        "also changed together with billing.py in 3 of the 3 commits touching it"
    )
    # c3 followed c2 (billing.py); c2 followed c1 and c5 followed c4, both touching it too.
    assert reasons["README.md"] == (
        "changed in the commit after one touching billing.py, 1 of 3 times; "
        "also in the folder of billing.py, changed in this session"
    )
    # Without history or session files there is nothing to predict.
    assert rank_files([], PredictionEvidence()) == []


def test_the_sessions_words_and_similar_commits_bring_files_forward() -> None:
    commits = [  # newest first; the session's words name neither file's folder
        Commit("c4", ("docs/guide.md",), "docs: the guide"),
        Commit("c3", ("src/pay/refund.py", "src/pay/ledger.py"), "refunds post to the ledger"),
        Commit("c2", ("src/mail/send.py",), "mail: retry sending"),
        Commit("c1", ("billing/invoice.py",), "invoice layout"),
    ]
    evidence = PredictionEvidence(commits=commits)
    plain = rank_files(["src/mail/send.py"], evidence, limit=10)
    told = rank_files(
        ["src/mail/send.py"],
        evidence,
        text=["next: make refunds post to the ledger", None, "invoice numbers"],
        limit=10,
    )
    order = [path for path, _, _ in told]
    # Named by the session's next step and decision: ahead of what only recency suggests.
    assert order.index("billing/invoice.py") < order.index("docs/guide.md")
    assert order.index("src/pay/refund.py") < order.index("docs/guide.md")
    before = [path for path, _, _ in plain]
    assert before.index("docs/guide.md") < before.index("billing/invoice.py")
    reasons = {path: reason for path, _, reason in told}
    assert "the session's words name it (invoice)" in reasons["billing/invoice.py"]
    assert (
        "whose message shares ledger, post, refunds with the session"
        in (reasons["src/pay/ledger.py"])
    )
