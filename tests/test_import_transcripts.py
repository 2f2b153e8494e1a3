"""`continuity import`: hand-written transcripts in the formats the agents write.

Claude Code's format is tested here line by line (the real Claude Code run
belongs to the hooks' suite); Codex and Gemini CLI are also run for real in
``test_import_real_agents.py``. The same shapes are used here for the cases a
real run does not produce on demand: a rewritten file, a rewind, a secret.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_continuity import SessionManager
from agent_continuity.errors import InvalidInput
from cli_support import cli, git_project

SID = "5f0c7b9e-2f3a-4f5e-9c1d-8b7a6e5d4c3b"
T0 = "2026-11-21T10:00:00.000Z"


def claude_line(kind: str, uuid: str, at: str, content: Any, **extra: Any) -> dict[str, Any]:
    """One line of a Claude Code transcript."""
    role = "assistant" if kind == "assistant" else "user"
    return {
        "parentUuid": None,
        "isSidechain": False,
        "userType": "external",
        "cwd": "/work/app",
        "sessionId": SID,
        "version": "2.0.30",
        "type": kind,
        "message": {"role": role, "content": content},
        "uuid": uuid,
        "timestamp": at,
        **extra,
    }


CLAUDE = [
    {"type": "summary", "summary": "SMS reminders", "leafUuid": "u0"},
    claude_line("user", "u1", "2026-11-21T10:00:00.000Z", "Add SMS reminders to bookings"),
    # Claude Code 2.1 writes its context and requests in lines of their own types.
    {
        "type": "attachment",
        "sessionId": SID,
        "uuid": "x1",
        "timestamp": T0,
        "attachment": {"type": "date", "date": "2026-11-21"},
    },
    {"type": "api-request", "sessionId": SID, "id": "r1", "timestamp": T0, "version": "2.1.337"},
    claude_line(
        "user",
        "u1m",
        "2026-11-21T10:00:00.100Z",
        "<command-name>/clear</command-name>",
        isMeta=True,
    ),
    claude_line(
        "assistant",
        "a1",
        "2026-11-21T10:00:05.000Z",
        [
            {"type": "thinking", "thinking": "look at the models first", "signature": "x"},
            {"type": "text", "text": "I will read the booking model."},
        ],
    ),
    claude_line(
        "assistant",
        "a2",
        "2026-11-21T10:00:06.000Z",
        [
            {
                "type": "tool_use",
                "id": "toolu_01",
                "name": "Bash",
                "input": {"command": "grep -n class app/models.py"},
            }
        ],
    ),
    claude_line(
        "user",
        "u2",
        "2026-11-21T10:00:07.500Z",
        [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_01",
                "content": [{"type": "text", "text": "3:class Booking:"}],
                "is_error": False,
            }
        ],
        toolUseResult={"stdout": "3:class Booking:"},
    ),
    {"type": "file-history-snapshot", "messageId": "a2", "snapshot": {}},
    claude_line("assistant", "a3", "2026-11-21T10:00:09.000Z", [{"type": "text", "text": "Done."}]),
]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def append_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return git_project(tmp_path / "app")


@pytest.fixture(params=["files", "sqlite"])
def store_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Each store the importer writes to."""
    return {"files": f"files:{tmp_path / 'store'}", "sqlite": f"sqlite:///{tmp_path / 's.db'}"}[
        request.param
    ]


@pytest.fixture
def mgr(root: Path, store_url: str) -> Iterator[SessionManager]:
    with SessionManager(store=store_url, project_dir=root, user_id="alice", observer=False) as m:
        yield m


def conversation(mgr: SessionManager, session_id: str) -> list[tuple[str, str, Any]]:
    """(kind, time, what) of each imported event, in journal order."""
    out = []
    for e in mgr.events(session_id):
        if "imported" not in e.payload:
            continue
        fields = {
            "message": ("role", "text"),
            "tool-call": ("callId", "name", "arguments"),
            "tool-result": ("callId", "output", "isError"),
        }[e.kind.value]
        what = tuple(e.payload[f] for f in fields)
        out.append((e.kind.value, e.to_wire()["at"], what))
    return out


def test_a_claude_code_transcript_gives_messages_tool_calls_and_results_with_their_times(
    mgr: SessionManager, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "projects" / "-work-app" / f"{SID}.jsonl", CLAUDE)
    report = mgr.import_transcripts("claude", [path]).to_wire()
    assert report["imported"] == 5
    # The summary, the attachment, the request, the meta line, the snapshot: skipped, counted.
    assert report["skipped"] == 5
    assert report["damaged"] == []
    session_id = report["sessionId"]
    assert conversation(mgr, session_id) == [
        ("message", "2026-11-21T10:00:00Z", ("user", "Add SMS reminders to bookings")),
        ("message", "2026-11-21T10:00:05Z", ("assistant", "I will read the booking model.")),
        (
            "tool-call",
            "2026-11-21T10:00:06Z",
            ("toolu_01", "Bash", {"command": "grep -n class app/models.py"}),
        ),
        ("tool-result", "2026-11-21T10:00:07.500Z", ("toolu_01", "3:class Booking:", False)),
        ("message", "2026-11-21T10:00:09Z", ("assistant", "Done.")),
    ]
    record = mgr.get(session_id)
    assert (record.agent.name, record.agent.session_id, record.agent.type) == (
        "claude",
        SID,
        "claude-code",
    )
    # The recovery sees the conversation: the user's words are the recent discussion.
    shown = mgr.details(session_id)
    assert shown["conversationContext"]["recentDiscussions"] == ["Add SMS reminders to bookings"]


def test_a_subagent_s_transcript_comes_with_its_session(
    mgr: SessionManager, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / f"{SID}.jsonl", CLAUDE[:2])
    sub = claude_line(
        "assistant",
        "s1",
        "2026-11-21T10:00:03.000Z",
        [{"type": "text", "text": "Found 3 models."}],
        isSidechain=True,
        agentId="a6f1",
    )
    write_jsonl(tmp_path / SID / "subagents" / "agent-a6f1.jsonl", [sub])
    report = mgr.import_transcripts("claude", [path]).to_wire()
    assert report["imported"] == 2
    events = [e.payload for e in mgr.events(report["sessionId"]) if "imported" in e.payload]
    assert [(p["text"], p.get("subagent")) for p in events] == [
        ("Add SMS reminders to bookings", None),
        ("Found 3 models.", "a6f1"),
    ]
    assert mgr.import_transcripts("claude", [path]).imported == 0


def test_a_subagent_beside_its_session_as_before_claude_code_2_1_2_comes_too(
    mgr: SessionManager, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / f"{SID}.jsonl", CLAUDE[:2])
    sub = claude_line("assistant", "s1", T0, "Found 3 models.", isSidechain=True, agentId="b7")
    write_jsonl(tmp_path / "agent-b7.jsonl", [sub])
    other = {**sub, "sessionId": "another-session", "uuid": "s2"}
    write_jsonl(tmp_path / "agent-c8.jsonl", [other])
    report = mgr.import_transcripts("claude", [path])
    assert report.imported == 2  # not the other session's subagent
    # Given on its own, a subagent's file goes to its main session's.
    assert mgr.import_transcripts("claude", [tmp_path / "agent-b7.jsonl"]).to_wire() == {
        **report.to_wire(),
        "imported": 0,
        "skipped": 0,
    }


def test_importing_again_adds_nothing_and_a_grown_file_adds_only_its_new_lines(
    mgr: SessionManager, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / f"{SID}.jsonl", CLAUDE[:6])
    first = mgr.import_transcripts("claude", [path])
    session_id = first.session_id
    assert session_id is not None and first.imported == 2
    count = len(mgr.events(session_id))
    again = mgr.import_transcripts("claude", [path]).to_wire()
    assert (again["sessionId"], again["imported"], again["damaged"]) == (session_id, 0, [])
    assert len(mgr.events(session_id)) == count  # not even a cursor was written
    append_jsonl(path, CLAUDE[6:])
    grown = mgr.import_transcripts("claude", [path])
    assert (grown.session_id, grown.imported, grown.skipped) == (session_id, 3, 1)
    assert [w for _, _, w in conversation(mgr, session_id)][2:] == [
        ("toolu_01", "Bash", {"command": "grep -n class app/models.py"}),
        ("toolu_01", "3:class Booking:", False),
        ("assistant", "Done."),
    ]
    assert len(mgr.sessions()) == 1


def test_a_rewritten_file_is_read_again_without_adding_anything_twice(
    mgr: SessionManager, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / f"{SID}.jsonl", CLAUDE[1:])
    assert mgr.import_transcripts("claude", [path]).imported == 5
    # Rewritten from the top (another head, shorter than the cursor): read from the start.
    write_jsonl(path, [CLAUDE[1], CLAUDE[-1]])
    assert mgr.import_transcripts("claude", [path]).imported == 0


def test_a_torn_last_line_is_reported_by_number_and_read_once_it_is_whole(
    root: Path, tmp_path: Path
) -> None:
    url = f"files:{tmp_path / 'store'}"
    path = write_jsonl(tmp_path / f"{SID}.jsonl", CLAUDE[:2])
    whole = json.dumps(CLAUDE[5]) + "\n"  # the assistant's first words
    with path.open("a", encoding="utf-8") as f:
        f.write(whole[:40])  # the agent died mid-line
    result = cli(root, url, "import", "claude", str(path), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["imported"] == 1
    assert [(d["line"], d["reason"].split(":")[0]) for d in report["damaged"]] == [(3, "torn")]
    assert "Traceback" not in result.stderr
    # The writer finishes the line: it is imported, nothing else is.
    with path.open("a", encoding="utf-8") as f:
        f.write(whole[40:])
    report = json.loads(cli(root, url, "import", "claude", str(path), "--json").stdout)
    assert (report["imported"], report["damaged"]) == (1, [])
    # People get the same, in a line each.
    shown = cli(root, url, "import", "claude", str(path))
    assert shown.returncode == 0 and "imported 0" in shown.stdout


def test_an_invalid_line_in_the_middle_is_reported_and_the_lines_after_it_imported(
    root: Path, tmp_path: Path
) -> None:
    url = f"files:{tmp_path / 'store'}"
    path = tmp_path / f"{SID}.jsonl"
    lines = [
        json.dumps(CLAUDE[1]),
        '{"type": "user", "message": ',
        "[1, 2]",
        json.dumps(CLAUDE[-1]),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = json.loads(cli(root, url, "import", "claude", str(path), "--json").stdout)
    assert report["imported"] == 2
    assert [d["line"] for d in report["damaged"]] == [2, 3]
    assert report["damaged"][0]["reason"].startswith("invalid JSON")
    assert report["damaged"][1]["reason"] == "not a JSON object but list"


def test_secrets_in_imported_text_are_redacted(mgr: SessionManager, tmp_path: Path) -> None:
    key = "AKIA" + "IOSFODNN7EXAMPLE"
    records = [
        claude_line("user", "u1", T0, f"deploy with aws key {key}"),
        claude_line(
            "assistant",
            "a1",
            T0,
            [
                {
                    "type": "tool_use",
                    "id": "t1",
                    "name": "Bash",
                    "input": {"command": f"export K={key}"},
                }
            ],
        ),
        claude_line(
            "user",
            "u2",
            T0,
            [{"type": "tool_result", "tool_use_id": "t1", "content": f"K={key}"}],
        ),
    ]
    path = write_jsonl(tmp_path / f"{SID}.jsonl", records)
    report = mgr.import_transcripts("claude", [path])
    assert report.session_id is not None and report.imported == 3
    stored = json.dumps([e.to_wire() for e in mgr.events(report.session_id)])
    assert key not in stored
    assert stored.count("[REDACTED:aws-access-key]") == 3
    # Redaction does not make the lines new: importing again adds nothing.
    assert mgr.import_transcripts("claude", [path]).imported == 0


def test_an_ended_session_is_continued_not_written_to(mgr: SessionManager, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / f"{SID}.jsonl", CLAUDE[:2])
    first = mgr.import_transcripts("claude", [path]).session_id
    assert first is not None
    mgr.end(first)
    append_jsonl(path, CLAUDE[2:])
    report = mgr.import_transcripts("claude", [path])
    assert report.session_id != first and report.imported == 4
    continued = mgr.get(str(report.session_id))
    assert continued.recovered_from == first
    assert (continued.agent.name, continued.agent.session_id) == ("claude", SID)
    assert mgr.import_transcripts("claude", [path]).imported == 0


def test_session_option_imports_into_the_given_session(mgr: SessionManager, tmp_path: Path) -> None:
    with mgr.start(task="TASK-1", owned_by_process=False, auto_save=False) as live:
        own = live.id
        path = write_jsonl(tmp_path / f"{SID}.jsonl", CLAUDE[:2])
        report = mgr.import_transcripts("claude", [path], session_id=own)
        assert (report.session_id, report.imported) == (own, 1)
        assert mgr.import_transcripts("claude", [path], session_id=own).imported == 0


def test_gemini_records_re_written_by_id_count_once_with_their_last_state(
    mgr: SessionManager, tmp_path: Path
) -> None:
    meta = {"sessionId": "g-1", "projectHash": "h", "startTime": T0, "lastUpdated": T0}
    ask = {"id": "m1", "timestamp": T0, "type": "user", "content": [{"text": "list files"}]}
    call = {"id": "c1", "name": "run_shell_command", "args": {"command": "ls"}}
    pending = {"id": "m2", "timestamp": "2026-11-21T10:00:01Z", "type": "gemini", "content": ""}
    path = write_jsonl(
        tmp_path / "session-2026-11-21T10-00-g1.jsonl",
        [meta, ask, {"$set": {"lastUpdated": T0}}, {**pending, "toolCalls": [call]}],
    )
    first = mgr.import_transcripts("gemini", [path])
    assert (first.imported, first.skipped) == (2, 2)
    done = {
        **call,
        "status": "success",
        "timestamp": "2026-11-21T10:00:02Z",
        "result": [{"functionResponse": {"id": "c1", "response": {"output": "app.py"}}}],
    }
    append_jsonl(
        path,
        [
            {**pending, "toolCalls": [done], "tokens": {"total": 3}},
            {"$rewindTo": "m9"},
            {"id": "m3", "timestamp": "2026-11-21T10:00:03Z", "type": "gemini", "content": "One."},
        ],
    )
    grown = mgr.import_transcripts("gemini", [path])
    assert (grown.session_id, grown.imported, grown.skipped) == (first.session_id, 2, 1)
    assert conversation(mgr, str(first.session_id)) == [
        ("message", "2026-11-21T10:00:00Z", ("user", "list files")),
        ("tool-call", "2026-11-21T10:00:01Z", ("c1", "run_shell_command", {"command": "ls"})),
        ("tool-result", "2026-11-21T10:00:02Z", ("c1", "app.py", False)),
        ("message", "2026-11-21T10:00:03Z", ("assistant", "One.")),
    ]


def test_codex_context_blocks_and_terminal_events_are_not_the_conversation(
    mgr: SessionManager, tmp_path: Path
) -> None:
    def item(at: str, payload: dict[str, Any], kind: str = "response_item") -> dict[str, Any]:
        return {"timestamp": at, "type": kind, "payload": payload}

    def said(role: str, text: str) -> dict[str, Any]:
        kind = "output_text" if role == "assistant" else "input_text"
        return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}

    path = write_jsonl(
        tmp_path / "rollout-2026-11-21T10-00-00-c0de.jsonl",
        [
            item(T0, {"id": "c0de", "cwd": "/w"}, "session_meta"),
            item(T0, said("developer", "<permissions>never</permissions>")),
            item(T0, said("user", "<environment_context>\n<cwd>/w</cwd>\n</environment_context>")),
            item(T0, said("user", "run the tests")),
            item(T0, {"type": "user_message", "message": "run the tests"}, "event_msg"),
            item(
                "2026-11-21T10:00:01Z",
                {
                    "type": "function_call",
                    "name": "shell",
                    "arguments": '{"command": ["pytest"]}',
                    "call_id": "k1",
                },
            ),
            item(
                "2026-11-21T10:00:02Z",
                {
                    "type": "function_call_output",
                    "call_id": "k1",
                    "output": {"content": "1 failed", "success": False},
                },
            ),
            item("2026-11-21T10:00:03Z", said("assistant", "One test fails.")),
        ],
    )
    report = mgr.import_transcripts("codex", [path])
    assert (report.imported, report.skipped) == (4, 4)
    assert conversation(mgr, str(report.session_id)) == [
        ("message", "2026-11-21T10:00:00Z", ("user", "run the tests")),
        ("tool-call", "2026-11-21T10:00:01Z", ("k1", "shell", {"command": ["pytest"]})),
        ("tool-result", "2026-11-21T10:00:02Z", ("k1", "1 failed", True)),
        ("message", "2026-11-21T10:00:03Z", ("assistant", "One test fails.")),
    ]
    assert mgr.get(str(report.session_id)).agent.session_id == "c0de"


def test_an_unknown_agent_or_a_missing_file_is_one_error_line(
    mgr: SessionManager, root: Path, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match="agent must be one of claude, codex, gemini"):
        mgr.import_transcripts("cursor", [tmp_path])
    with pytest.raises(InvalidInput, match="is not a transcript file"):
        mgr.import_transcripts("codex", [tmp_path / "nothing.jsonl"])
    result = cli(root, f"files:{tmp_path / 'store'}", "import", "codex", str(tmp_path / "no.jsonl"))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "is not a transcript file" in result.stderr


@pytest.mark.parametrize(
    ("agent", "odd_line"),
    [
        (
            "claude",
            {
                "type": "assistant",
                "sessionId": SID,
                "message": {"content": [{"type": "tool_use", "name": {"x": 1}, "input": {}}]},
                "timestamp": 5,
                "uuid": "z",
                "isSidechain": True,
                "agentId": None,
            },
        ),
        (
            "codex",
            {
                "type": "response_item",
                "timestamp": T0,
                "payload": {"type": "message", "role": "user", "content": 7},
            },
        ),
        (
            "gemini",
            {"id": "m1", "type": "gemini", "timestamp": T0, "content": "hi", "toolCalls": 3},
        ),
        (
            "codex",
            {
                "type": "response_item",
                "timestamp": T0,
                "payload": {
                    "type": "function_call",
                    "name": "shell",
                    "arguments": "{not json",
                    "call_id": "k",
                },
            },
        ),
    ],
)
def test_records_of_an_unexpected_shape_never_stop_the_import(
    mgr: SessionManager, tmp_path: Path, agent: str, odd_line: dict[str, Any]
) -> None:
    """Fields of other types than the agents write are read as well as they can be, never raised."""
    path = write_jsonl(tmp_path / "t.jsonl", [odd_line, {"type": ["x"], "id": {"y": 1}}])
    report = mgr.import_transcripts(agent, [path]).to_wire()
    assert report["imported"] + report["skipped"] + len(report["damaged"]) >= 2
    assert all(d["line"] in (1, 2) and d["reason"] for d in report["damaged"])


def test_a_record_that_cannot_be_read_is_reported_by_line_and_the_rest_imported(
    mgr: SessionManager, tmp_path: Path
) -> None:
    codex_lines = [
        {"type": "response_item", "timestamp": T0, "payload": {"type": ["function_call"]}},
        {
            "type": "response_item",
            "timestamp": T0,
            "payload": {"type": "message", "role": "user", "content": "run the tests"},
        },
    ]
    report = mgr.import_transcripts("codex", [write_jsonl(tmp_path / "c.jsonl", codex_lines)])
    assert report.imported == 1
    assert [(d["line"], d["reason"].split(":")[0]) for d in report.damaged] == [
        (1, "unexpected record")
    ]
    gemini_lines = [
        {"sessionId": "g-2", "projectHash": "h"},
        {"id": "m1", "type": "user", "timestamp": T0, "content": "list files"},
        {
            "id": "m2",
            "type": "gemini",
            "timestamp": T0,
            "toolCalls": [{"id": "c", "status": ["?"]}],
        },
    ]
    report = mgr.import_transcripts("gemini", [write_jsonl(tmp_path / "g.jsonl", gemini_lines)])
    assert report.imported == 1
    assert [d["line"] for d in report.damaged] == [3]


def test_a_session_whose_agent_was_killed_is_continued_with_the_transcript(
    mgr: SessionManager, root: Path, tmp_path: Path, store_url: str
) -> None:
    """The hooks' session of a `kill -9`ed agent: the import continues it, never fails."""
    owner = (
        "import os, signal, sys\n"
        "from agent_continuity import AgentInfo, SessionManager\n"
        "mgr = SessionManager(store=sys.argv[1], project_dir=sys.argv[2], user_id='alice', "
        "observer=False)\n"
        f"s = mgr.start(agent=AgentInfo(type='claude-code', name='claude', session_id={SID!r}))\n"
        "s.add_message('user', 'Add SMS reminders to bookings')\n"
        "print(s.id, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", owner, store_url, str(root)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    hooked = done.stdout.strip()
    assert hooked.startswith("SESSION-"), done.stderr
    path = write_jsonl(tmp_path / f"{SID}.jsonl", CLAUDE)
    report = mgr.import_transcripts("claude", [path])
    assert report.imported == 5 and report.session_id != hooked
    assert mgr.get(hooked).status.value == "interrupted"
    assert mgr.get(str(report.session_id)).recovered_from == hooked
