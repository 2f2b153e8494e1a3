"""Secrets are redacted before anything is written (issue 17), on every entry point."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent_continuity import SessionManager
from agent_continuity.config import Config, load_config
from agent_continuity.errors import ConfigError
from agent_continuity.redaction import Redactor
from cli_support import continuity, git_project

AWS = "AKIAIOSFODNN7EXAMPLE"
GITHUB = "ghp_R7kX2mQ9vL4tB8nW1cY6zH3jF5sD0aE2pU7i"
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n"
    "aFDrBz9vFqU4yQ1x8ZZhLbM5p9Tt3tzw4VbHC+Qw4Y3t8m2cJzA3k6bOkP7dW9xE\n"
    "-----END RSA PRIVATE KEY-----"
)
LOOK_ALIKES = [
    "commit 3f786850e387550fdab836ed7e6dc881de23001b fixed it",
    "request id 123e4567-e89b-12d3-a456-426614174000",
    "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "img data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk",
    "call build_session_registry_from_journal_entries_with_checksums() next",
    "the password: stored in the vault; f(password=password); token: str",
]


def _raw_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


# -- through the command line -------------------------------------------


def test_cli_stores_shows_and_prompts_only_the_placeholder(tmp_path: Path) -> None:
    repo = git_project(tmp_path / "repo")
    started = continuity(repo, "start", "--task", "TASK-1", "--json")
    assert started.returncode == 0, started.stderr
    session_id = json.loads(started.stdout)["sessionId"]
    said = continuity(repo, "message", "--role", "user", f"my key is {AWS}, use it")
    assert said.returncode == 0, said.stderr
    updated = continuity(
        repo,
        "update",
        "--decision",
        f"deploy with {AWS} and {GITHUB}",
        "--summary",
        f"the user gave {AWS}",
        "--next",
        f"rotate {AWS}",
    )
    assert updated.returncode == 0, updated.stderr
    assert continuity(repo, "save").returncode == 0

    shown = continuity(repo, "show", session_id, "--json")
    prompt = continuity(repo, "prompt", session_id)
    for out in (shown, prompt):
        assert out.returncode == 0, out.stderr
        assert AWS not in out.stdout and GITHUB not in out.stdout
        assert "[REDACTED:aws-access-key]" in out.stdout
    assert "[REDACTED:github-token]" in prompt.stdout
    assert AWS.encode() not in _raw_bytes(repo / "projectDocs")


def test_cli_off_switch_and_allow_list_come_from_the_config(tmp_path: Path) -> None:
    repo = git_project(tmp_path / "repo")
    (repo / "continuity.toml").write_text(f'redact-allow = ["{AWS}"]\n')
    assert continuity(repo, "start").returncode == 0
    assert continuity(repo, "message", "--role", "user", f"{AWS} {GITHUB}").returncode == 0
    stored = _raw_bytes(repo / "projectDocs")
    assert AWS.encode() in stored and GITHUB.encode() not in stored

    (repo / "continuity.toml").write_text("redact = false\n")
    assert continuity(repo, "message", "--role", "user", f"now {GITHUB}").returncode == 0
    assert GITHUB.encode() in _raw_bytes(repo / "projectDocs")


def test_a_bad_pattern_in_the_config_stops_the_command(tmp_path: Path) -> None:
    repo = git_project(tmp_path / "repo")
    (repo / "continuity.toml").write_text('[redact-patterns]\ninternal = "itk_[0-9"\n')
    result = continuity(repo, "start")
    assert result.returncode == 1
    assert "redact_patterns" in result.stderr and "not a valid regular expression" in result.stderr


# -- through the Python API --------------------------------------------


@pytest.mark.parametrize("kind", ["files", "sqlite"])
def test_api_redacts_every_kind_of_text_an_agent_records(tmp_path: Path, kind: str) -> None:
    url = f"files:{tmp_path / 'store'}" if kind == "files" else f"sqlite:///{tmp_path / 'c.db'}"
    db_url = "postgres://app:Sup3rS3cret@db.internal:5432/orders"
    with SessionManager(url, tmp_path, "alice", observer=False) as mgr:
        with mgr.start(task="T-1") as session:
            session.add_message("user", f"here: {AWS}")
            call = session.record_tool_call(
                "shell", {"cmd": f"git push https://{GITHUB}@github.com/x/y", "password": "hunter2"}
            )
            session.record_tool_result(call, {"stdout": PEM, "lines": [f"key {AWS}"]})
            session.decide(f"use {db_url}")
            session.note(f"OPENAI_API_KEY=sk-proj-{'Ab1' * 20}")
            session.block(f"blocked on {GITHUB}")
            session.complete_step(f"rotated {AWS}")
            session.set_summary(f"summary with {AWS}")
            sid = session.id
        events = json.dumps([e.to_wire() for e in mgr.events(sid)])
        state = json.dumps(mgr.details(sid), default=str)
    for text in (events, state):
        assert AWS not in text and GITHUB not in text and "hunter2" not in text
        assert "MIIEowIBAAKCAQEA" not in text and "Sup3rS3cret" not in text
    assert "postgres://app:[REDACTED:url-password]@db.internal:5432/orders" in events
    assert '"password": "[REDACTED:password]"' in events
    for placeholder in ("aws-access-key", "github-token", "private-key", "openai-api-key"):
        assert f"[REDACTED:{placeholder}]" in events
    store_files = tmp_path / "store" if kind == "files" else tmp_path
    raw = _raw_bytes(store_files)
    assert AWS.encode() not in raw and b"hunter2" not in raw


def test_an_interruption_cause_is_redacted_in_the_recovery_log_too(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with SessionManager(f"files:{root}", tmp_path, "alice", observer=False) as mgr:
        session = mgr.start(auto_save=False)
        session.interrupt(f"exception: AccessDenied for {AWS}")
        assert mgr.get(session.id).status.value == "interrupted"
    raw = _raw_bytes(root)
    assert AWS.encode() not in raw and b"[REDACTED:aws-access-key]" in raw


def test_api_keeps_look_alikes_and_honours_allow_list_extra_patterns_and_off(
    tmp_path: Path,
) -> None:
    config = Config(redact_allow=(GITHUB,), redact_patterns={"internal-token": r"itk_[0-9a-f]{16}"})
    with SessionManager(
        f"files:{tmp_path / 's'}", tmp_path, "a", config=config, observer=False
    ) as mgr:
        with mgr.start() as session:
            for text in LOOK_ALIKES:
                session.note(text)
            session.note(f"{GITHUB} itk_0123456789abcdef {AWS}")
            notes = [e.payload["text"] for e in mgr.events(session.id) if e.kind.value == "note"]
    assert notes[: len(LOOK_ALIKES)] == LOOK_ALIKES
    assert notes[-1] == f"{GITHUB} [REDACTED:internal-token] [REDACTED:aws-access-key]"

    off = Config(redact=False)
    with SessionManager(
        f"files:{tmp_path / 'o'}", tmp_path, "a", config=off, observer=False
    ) as mgr:
        with mgr.start() as session:
            session.note(AWS)
            assert mgr.events(session.id)[-1].payload["text"] == AWS


def test_config_checks_redaction_settings_when_read(tmp_path: Path) -> None:
    (tmp_path / "continuity.toml").write_text('redact = "maybe"\n')
    with pytest.raises(ConfigError, match="true or false"):
        load_config(tmp_path)
    (tmp_path / "continuity.toml").write_text('redact-allow = ["(unclosed"]\n')
    with pytest.raises(ConfigError, match="redact_allow"):
        load_config(tmp_path)
    (tmp_path / "continuity.toml").unlink()
    assert (
        load_config(tmp_path, environ={"CONTINUITY_REDACT": "off"}, redact_allow=[]).redact is False
    )


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws-secret-key"),
        ("key=AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "google-api-key"),
        (
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey="
            + "A" * 86
            + "==;EndpointSuffix=core.windows.net",
            "azure-storage-key",
        ),
        ("glpat-xK9mP2vL8qR4tW6yB1nZ", "gitlab-token"),
        ("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "slack-token"),
        (
            "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
            "slack-webhook",
        ),
        ("sk-ant-api03-" + "x1Y2z3" * 15, "anthropic-api-key"),
        ("hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh", "huggingface-token"),
        ("sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "stripe-key"),
        ("SG." + "a" * 22 + "." + "b1" * 21 + "c", "sendgrid-api-key"),
        ("npm_" + "a1B2c3D4e5" * 3 + "F6g7h8", "npm-token"),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlF",
            "jwt",
        ),
        ('DB_PASSWORD="correct horse battery"', "password"),
    ],
)
def test_each_provider_shape_gets_its_typed_placeholder(text: str, kind: str) -> None:
    redacted = Redactor().text(text)
    assert f"[REDACTED:{kind}]" in redacted
    assert Redactor().text(redacted) == redacted  # already redacted text stays as it is


def test_the_readme_redaction_example_is_a_valid_configuration(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Privacy: secrets and file modes") :]
    block = section[
        section.index("```toml\n") + 8 : section.index("```", section.index("```toml") + 7)
    ]
    (tmp_path / "pyproject.toml").write_text(block)
    config = load_config(tmp_path)
    redactor = Redactor(config.redact_patterns, config.redact_allow)
    assert redactor.text("AKIAIOSFODNN7EXAMPLE itk_0123456789abcdef vault:kv/prod") == (
        "AKIAIOSFODNN7EXAMPLE [REDACTED:internal-token] vault:[REDACTED:vault-path]"
    )


def test_the_benchmark_corpus_meets_the_detection_targets() -> None:
    out = subprocess.run(
        [sys.executable, "benchmarks/redaction.py", "--quick"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    recall, false_positives = (
        float(x) for x in re.findall(r"\| \*\*all\*\* \| \d+ \| \*\*([\d.]+)%\*\* \|", out)
    )
    assert recall >= 99.0 and false_positives < 1.0, out
    assert "| redaction on |" in out and "| redaction off |" in out
