"""`continuity mcp` driven by the official `mcp` SDK's own client over stdio.

The server is spawned as a user's coding agent would spawn it, in a git
project, and acts on that project's default store, the one the command line
uses there too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.types import CallToolResult, TextContent

from cli_support import continuity, git_project

COMMAND_TOOLS = {
    "start",
    "message",
    "update",
    "save",
    "recover",
    "resume",
    "summary",
    "prompt",
    "emergency",
    "list",
    "show",
    "import",  # issue 12: coding agents' transcripts
    "search",
}


def drive(root: Path, script: Callable[[ClientSession], Awaitable[None]], *options: str) -> None:
    """Spawn `python -m agent_continuity.cli mcp OPTIONS` in ``root``; run ``script`` on it."""

    async def main() -> None:
        server = StdioServerParameters(
            command=sys.executable,
            args=["-m", "agent_continuity.cli", "mcp", *options],
            cwd=root,
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("CONTINUITY_")},
                "CONTINUITY_USER": "alice",
            },
        )
        with open(root.parent / "server.log", "w") as errlog:
            async with stdio_client(server, errlog=errlog) as (read, write):
                async with ClientSession(read, write) as client:
                    await client.initialize()
                    with anyio.fail_after(120):
                        await script(client)

    anyio.run(main)


async def call(client: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool's reply, which must succeed, as the object its JSON text holds."""
    result = await client.call_tool(tool, arguments)
    assert isinstance(result, CallToolResult)
    assert not result.is_error, result.content
    return reply(result)


def reply(result: CallToolResult) -> dict[str, Any]:
    """The JSON object of a tool result: its text, the same as its structured content."""
    assert isinstance(result.content[0], TextContent)
    data: dict[str, Any] = json.loads(result.content[0].text)
    assert result.structured_content == data
    return data


def test_every_command_is_a_documented_tool_and_the_recovery_prompt_a_prompt(
    tmp_path: Path,
) -> None:
    root = git_project(tmp_path / "project")
    seen: dict[str, Any] = {}

    async def script(client: ClientSession) -> None:
        seen["tools"] = (await client.list_tools()).tools
        seen["prompts"] = (await client.list_prompts()).prompts
        seen["list"] = await call(client, "list")

    drive(root, script)
    # As `list --json`: no store yet is no sessions, and reading creates none.
    assert seen["list"] == {"sessions": []}
    assert not (root / "projectDocs").exists()
    tools = {tool.name: tool for tool in seen["tools"]}
    assert set(tools) == COMMAND_TOOLS
    for tool in tools.values():
        assert tool.description, tool.name
        for name, schema in tool.input_schema.get("properties", {}).items():
            assert schema.get("description"), f"{tool.name}.{name} is not documented"
    update = tools["update"].input_schema
    assert update["properties"]["decisions"]["type"] == "array"
    assert update["properties"]["progress"]["anyOf"][0]["maximum"] == 100
    assert tools["message"].input_schema["required"] == ["role", "text"]
    assert tools["show"].input_schema["required"] == ["session_id"]
    (prompt,) = seen["prompts"]
    assert prompt.name == "recover-session"
    assert [(a.name, a.required) for a in prompt.arguments or []] == [("session_id", False)]


def test_a_session_recorded_through_the_tools_is_recovered_through_them(tmp_path: Path) -> None:
    root = git_project(tmp_path / "project")
    seen: dict[str, Any] = {}

    async def record(client: ClientSession) -> None:
        started = await call(client, "start", task="TASK-6-004", phase="phase-6")
        sid = started["sessionId"]
        assert started["session"]["context"]["currentTask"] == "TASK-6-004"
        said = await call(client, "message", role="user", text="Add SMS reminders")
        assert said == {"sessionId": sid, "seq": said["seq"]}
        updated = await call(
            client,
            "update",
            decisions=["Twilio is the SMS provider"],
            next_steps=["test-sms-endpoints"],
            progress=40,
        )
        assert updated["sessionId"] == sid and len(updated["seqs"]) == 3
        saved = await call(client, "save")
        assert saved["recoveryPointId"].startswith("RECOVERY-")
        seen["show"] = await call(client, "show", session_id=sid)
        seen["list"] = await call(client, "list")
        seen["search"] = await call(client, "search", query="twilio provider")
        seen["sid"] = sid

    drive(root, record)
    sid = seen["sid"]
    shown = seen["show"]
    assert shown["session"]["context"]["keyDecisions"] == ["Twilio is the SMS provider"]
    assert shown["session"]["state"]["nextSteps"] == ["test-sms-endpoints"]
    assert shown["messageCount"] == 1
    assert [s["id"] for s in seen["list"]["sessions"]] == [sid]
    assert seen["list"]["sessions"][0]["status"] == "active"
    # The search tool finds the decision, as `continuity search --json` would.
    (found,) = seen["search"]["results"]
    assert (found["sessionId"], found["kind"]) == (sid, "decision")
    assert found["snippet"] == "[Twilio] is the SMS [provider]"
    # The same objects as the command line's --json, read from the same store.
    cli_show = continuity(root, "show", sid, "--json")
    assert cli_show.returncode == 0, cli_show.stderr
    assert json.loads(cli_show.stdout) == shown

    killed = continuity(root, "interrupt", "--session", sid, "--cause", "terminal closed")
    assert killed.returncode == 0, killed.stderr

    async def recover(client: ClientSession) -> None:
        got = await client.get_prompt("recover-session", {"session_id": sid})
        message = got.messages[0]
        assert message.role == "user" and isinstance(message.content, TextContent)
        seen["prompt"] = message.content.text
        seen["prompt_tool"] = await call(client, "prompt", session_id=sid)
        seen["list"] = await call(client, "list", status="interrupted")
        seen["recover"] = await call(client, "recover", session_id=sid, answer=True)

    drive(root, recover)
    assert "TASK-6-004" in seen["prompt"] and "Twilio is the SMS provider" in seen["prompt"]
    assert "test-sms-endpoints" in seen["prompt"]
    assert seen["prompt_tool"] == {"sessionId": sid, "prompt": seen["prompt"]}
    assert [s["id"] for s in seen["list"]["sessions"]] == [sid]
    recovered = seen["recover"]
    assert recovered["sessionId"] == sid
    assert recovered["status"] == "success"
    assert recovered["decision"] in {"auto-resume", "prompt"}
    assert recovered["nextSteps"] == ["test-sms-endpoints"]
    assert "Twilio is the SMS provider" in recovered["prompt"]


def test_failures_are_tool_errors_with_the_stable_code_and_no_traceback(tmp_path: Path) -> None:
    root = git_project(tmp_path / "project")
    database = tmp_path / "elsewhere.db"
    seen: dict[str, Any] = {}

    async def script(client: ClientSession) -> None:
        await call(client, "start", task="TASK-1")
        seen["unknown"] = await client.call_tool("show", {"session_id": "SESSION-200101-999"})
        seen["malformed"] = await client.call_tool("show", {"session_id": "not-a-session"})
        seen["bad_progress"] = await client.call_tool("update", {"progress": 101})
        try:
            await client.get_prompt("recover-session", {"session_id": "SESSION-200101-999"})
        except Exception as exc:  # the SDK raises the server's JSON-RPC error
            seen["prompt"] = exc

    drive(root, script, "--store", f"sqlite:///{database}")
    # --store chose the store, as for every command.
    assert database.is_file() and not (root / "projectDocs").exists()
    unknown = seen["unknown"]
    assert unknown.is_error
    error = reply(unknown)["error"]
    assert error["code"] == "session-not-found"
    assert "SESSION-200101-999" in error["message"]
    assert "Traceback" not in error["message"]
    assert reply(seen["malformed"])["error"]["code"] == "invalid-identifier"
    # Refused by the input schema before any write, with the command line's code for it.
    refused = reply(seen["bad_progress"])["error"]
    assert refused["code"] == "usage" and "progress" in refused["message"]
    assert "session-not-found" in str(seen["prompt"].error.data)
    assert "Traceback" not in (root.parent / "server.log").read_text()


def test_without_the_mcp_extra_the_command_says_how_to_install_it(tmp_path: Path) -> None:
    root = git_project(tmp_path / "project")
    # sys.modules["mcp"] = None makes `import mcp` fail as if the SDK were not installed.
    probe = "import sys; sys.modules['mcp'] = None\nfrom agent_continuity.cli.main import main\n"
    done = subprocess.run(
        [sys.executable, "-c", probe + "main(['mcp'])"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "continuity: error [usage]: the MCP server needs the mcp extra: "
        "pip install 'agent-continuity[mcp]'"
    ]


def test_a_transcript_imported_through_the_tool_is_in_the_session(tmp_path: Path) -> None:
    root = git_project(tmp_path / "project")
    transcript = tmp_path / "rollout-2026-11-21T10-00-00-c0de.jsonl"
    lines = [
        {"timestamp": "2026-11-21T10:00:00Z", "type": "session_meta", "payload": {"id": "c0de"}},
        {
            "timestamp": "2026-11-21T10:00:01Z",
            "type": "response_item",
            "payload": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Add SMS reminders"}],
            },
        },
    ]
    transcript.write_text("".join(json.dumps(line) + "\n" for line in lines))
    seen: dict[str, Any] = {}

    async def script(client: ClientSession) -> None:
        seen["first"] = await call(client, "import", agent="codex", paths=[str(transcript)])
        seen["again"] = await call(client, "import", agent="codex", paths=[str(transcript)])
        seen["show"] = await call(client, "show", session_id=seen["first"]["sessionId"])

    drive(root, script)
    assert (seen["first"]["imported"], seen["first"]["skipped"]) == (1, 1)
    assert seen["again"]["imported"] == 0
    assert seen["again"]["sessionId"] == seen["first"]["sessionId"]
    assert seen["show"]["recentMessages"][0]["text"] == "Add SMS reminders"
    assert seen["show"]["session"]["agent"]["sessionId"] == "c0de"
