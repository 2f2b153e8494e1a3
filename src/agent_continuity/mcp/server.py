"""The tools and the prompt of ``continuity mcp``, on the official ``mcp`` SDK.

Each tool is one command of the command line, run on the project of the
server's working directory: a fresh :class:`~agent_continuity.SessionManager`
per call, closed after it, exactly as one ``continuity`` command. A tool
returns the command's ``--json`` object (as structured content and as its JSON
text); a failure is a tool error whose content is the command line's
``{"error": {"code": ..., "message": ...}}``, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolResult, InputRequiredResult, TextContent
from pydantic import Field

from agent_continuity import SessionManager, find_project_root, load_config, replies
from agent_continuity.errors import ContinuityError

if TYPE_CHECKING:
    from pathlib import Path

#: The codes of failures that are not library errors (as the command line's).
USAGE = "usage"
OS_ERROR = "os-error"
INTERNAL = "internal-error"

SessionArg = Annotated[
    str | None,
    Field(description="Session id, SESSION-YYMMDD-NNN (default: the newest active session)."),
]
UserArg = Annotated[
    str | None,
    Field(description="Whose sessions (default: CONTINUITY_USER, the config file, the login)."),
]
# Module-level, not local: the SDK evaluates the tools' (string) annotations here.
RecoveredArg = Annotated[
    str | None,
    Field(description="Session id (default: the most recent interrupted session)."),
]


def _reply(data: dict[str, Any], *, error: bool = False) -> CallToolResult:
    text = json.dumps(data, ensure_ascii=False)
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=data, is_error=error
    )


def failure(code: str, message: str) -> CallToolResult:
    """A tool error carrying the stable error code, as ``--json`` prints an error."""
    first = " ".join(str(message).split()) or "unknown error"
    return _reply({"error": {"code": code, "message": first}}, error=True)


class Project:
    """The project of the server's working directory, and the store chosen for it."""

    def __init__(self, root: Path, store: str | None) -> None:
        self.root = root
        self.store = store

    def manager(self, user: str | None = None, *, create: bool = True) -> SessionManager:
        """A manager for one call (``create=False`` for calls that only read)."""
        config = load_config(self.root, store=self.store, user=user)
        return SessionManager(project_dir=self.root, config=config, create_store=create)

    def call(
        self,
        command: Callable[[SessionManager], dict[str, Any]],
        *,
        user: str | None = None,
        create: bool = True,
    ) -> CallToolResult:
        """Run one command on a fresh manager; its reply, or a tool error with its code."""
        try:
            mgr = self.manager(user, create=create)
            try:
                return _reply(command(mgr))
            finally:
                # Flushes batched appends now, not in a daemon thread later.
                mgr.close()
        except ContinuityError as exc:
            return failure(exc.code, str(exc))
        except OSError as exc:
            return failure(
                OS_ERROR,
                f"{exc.strerror or exc} ({exc.filename or 'I/O'}); "
                "check the path and its permissions",
            )
        except Exception as exc:
            return failure(
                INTERNAL,
                f"internal error: {type(exc).__name__}: {exc}. This is a bug; please report it",
            )


class _Server(MCPServer[Any]):
    """The SDK's server, whose own refusals (unknown tool, bad arguments) carry a code too."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc, UnexpectedToolError):
                raise
            return failure(USAGE, str(exc))


def build_server(project: Project) -> MCPServer[Any]:
    """The MCP server with every command as a tool and the recovery prompt as a prompt."""
    server = _Server(
        name="continuity",
        instructions="Crash-safe sessions for this project: record the task, decisions and "
        "next steps as you work (start, message, update, save); after a crash or a new "
        "conversation, `recover` (or the recover-session prompt) briefs you to continue.",
    )
    _session_tools(server, project)
    _recovery_tools(server, project)
    return server


def _session_tools(server: MCPServer[Any], project: Project) -> None:
    @server.tool()
    def start(
        task: Annotated[str | None, Field(description="The task, e.g. TASK-6-004.")] = None,
        phase: Annotated[str | None, Field(description="The project phase, e.g. phase-6.")] = None,
        session_type: Annotated[
            str | None, Field(description="Session type (default general, or the recovered one's).")
        ] = None,
        recover_from: Annotated[
            str | None,
            Field(
                description='Seed the new session from this session; "" for your most recent '
                "interrupted one. Omit to start afresh."
            ),
        ] = None,
        agent_type: Annotated[str | None, Field(description="The kind of agent.")] = None,
        specialization: Annotated[str | None, Field(description="What the agent does.")] = None,
        capabilities: Annotated[list[str], Field(description="What the agent can do.")] = [],  # noqa: B006
        preferences: Annotated[
            dict[str, str], Field(description="The user's preferences, e.g. {language: en}.")
        ] = {},  # noqa: B006
        user: UserArg = None,
    ) -> CallToolResult:
        """Start a session (as `start --json`); its lease expires after 30 idle minutes."""
        return project.call(
            lambda mgr: replies.start(
                mgr,
                session_type=session_type,
                task=task,
                phase=phase,
                recover_from=recover_from,
                agent_type=agent_type,
                specialization=specialization,
                capabilities=capabilities,
                preferences=preferences,
            ),
            user=user,
        )

    @server.tool()
    def message(
        role: Annotated[
            Literal["user", "assistant", "system", "tool"], Field(description="Who said it.")
        ],
        text: Annotated[str, Field(description="What was said.")],
        session_id: SessionArg = None,
    ) -> CallToolResult:
        """Record a message of the conversation (as `continuity message --json`)."""
        return project.call(lambda mgr: replies.message(mgr, role, text, session_id))

    @server.tool()
    def update(
        session_id: SessionArg = None,
        task: Annotated[str | None, Field(description="Set the current task.")] = None,
        phase: Annotated[str | None, Field(description="Set the project phase.")] = None,
        step: Annotated[str | None, Field(description="Set the step being worked on.")] = None,
        complete: Annotated[list[str], Field(description="Steps done.")] = [],  # noqa: B006
        next_steps: Annotated[list[str], Field(description="Next steps to add.")] = [],  # noqa: B006
        blockers: Annotated[list[str], Field(description="Blockers to add.")] = [],  # noqa: B006
        unblock: Annotated[list[str], Field(description="Blockers resolved.")] = [],  # noqa: B006
        decisions: Annotated[list[str], Field(description="Decisions made.")] = [],  # noqa: B006
        progress: Annotated[int | None, Field(ge=0, le=100, description="Progress, 0-100.")] = None,
        summary: Annotated[str | None, Field(description="The conversation summary.")] = None,
        files: Annotated[list[str], Field(description="Files being worked on.")] = [],  # noqa: B006
        preferences: Annotated[dict[str, str], Field(description="User preferences to set.")] = {},  # noqa: B006
        pending: Annotated[list[str], Field(description="Operations begun and not finished.")] = [],  # noqa: B006
        pending_done: Annotated[
            list[str], Field(description="Pending operations now finished.")
        ] = [],  # noqa: B006
    ) -> CallToolResult:
        """Record progress as one atomic group of changes (as `continuity update --json`)."""
        changes: dict[str, Any] = {
            "task": task,
            "phase": phase,
            "step": step,
            "complete": complete,
            "next_steps": next_steps,
            "blockers": blockers,
            "unblock": unblock,
            "decisions": decisions,
            "progress": progress,
            "summary": summary,
            "files": files,
            "preferences": preferences,
            "pending": pending,
            "pending_done": pending_done,
        }
        return project.call(lambda mgr: replies.update(mgr, session_id, **changes))

    @server.tool()
    def save(
        session_id: SessionArg = None,
        trigger: Annotated[
            str,
            Field(
                description="Why: task-completion, major-decision, file-modification, "
                "error-occurrence, user-request, or auto (pruned to backupCount)."
            ),
        ] = "user-request",
    ) -> CallToolResult:
        """Make a recovery point now (as `continuity save --json`)."""
        return project.call(lambda mgr: replies.save(mgr, session_id, trigger))

    @server.tool(name="list")
    def list_(
        status: Annotated[
            Literal["active", "interrupted", "completed", "archived"] | None,
            Field(description="Only sessions with this status."),
        ] = None,
        user: Annotated[
            str | None, Field(description="Only this user's sessions (default: every user's).")
        ] = None,
    ) -> CallToolResult:
        """List sessions, oldest first, marking dead ones interrupted (as `list --json`)."""
        return project.call(lambda mgr: replies.sessions(mgr, status, user)[0], create=False)

    @server.tool()
    def show(
        session_id: Annotated[str, Field(description="Session id, SESSION-YYMMDD-NNN.")],
    ) -> CallToolResult:
        """One session: context, state, recovery points, damage (as `continuity show --json`)."""
        return project.call(lambda mgr: mgr.details(session_id), create=False)

    @server.tool(name="import")
    def import_(
        agent: Annotated[
            Literal["claude", "codex", "gemini"], Field(description="The agent that wrote them.")
        ],
        paths: Annotated[list[str], Field(description="The transcript .jsonl files.")],
        session_id: Annotated[
            str | None,
            Field(description="Import into this session (default: the agent session's own)."),
        ] = None,
    ) -> CallToolResult:
        """Import coding-agent transcripts (as `continuity import --json`)."""
        return project.call(lambda mgr: mgr.import_transcripts(agent, paths, session_id).to_wire())

    @server.tool()
    def search(
        query: Annotated[str, Field(description="Words to find in every session's journal.")],
        user: Annotated[
            str | None, Field(description="Only this user's sessions (default: every user's).")
        ] = None,
        limit: Annotated[int, Field(description="The most results (1 to 1000).")] = 20,
    ) -> CallToolResult:
        """Search messages, decisions, tasks, notes and tool calls of every session, ranked,
        with snippets (as `continuity search --json`)."""
        return project.call(
            lambda mgr: mgr.search(query, user=user, limit=limit).to_wire(), create=False
        )


def _recovery_tools(server: MCPServer[Any], project: Project) -> None:

    @server.tool()
    def recover(
        session_id: RecoveredArg = None,
        mode: Annotated[
            Literal["auto", "quick", "full", "emergency"],
            Field(description="auto: quick under 24 h, full beyond; emergency: critical facts."),
        ] = "auto",
        answer: Annotated[
            bool | None,
            Field(
                description="If the decision is to ask: true resumes, false archives the old "
                "session and starts a new one; omit to leave it open."
            ),
        ] = None,
        user: UserArg = None,
    ) -> CallToolResult:
        """Recover a session: detect, diff, validate, score, decide, brief (as `recover --json`).

        The reply's "prompt" briefs the agent that continues the work.
        """
        return project.call(
            lambda mgr: mgr.recover(session_id, user=user, mode=mode, answer=answer).to_wire(),
            user=user,
            create=False,
        )

    @server.tool()
    def resume(
        task_id: Annotated[str, Field(description="The task, e.g. TASK-6-004.")],
        session_id: Annotated[
            str | None,
            Field(description="The session to resume from (default: the newest on the task)."),
        ] = None,
        from_step: Annotated[str | None, Field(description="Resume from this step.")] = None,
    ) -> CallToolResult:
        """Resume a task from its last checkpoint (as `continuity resume --json`)."""
        return project.call(
            lambda mgr: mgr.resume_task(task_id, session_id, from_step).to_wire(), create=False
        )

    @server.tool()
    def summary(session_id: RecoveredArg = None) -> CallToolResult:
        """A session's context and the project now; changes nothing (as `summary --json`)."""
        return project.call(lambda mgr: replies.summary(mgr.analyse(session_id)), create=False)

    @server.tool()
    def prompt(session_id: RecoveredArg = None) -> CallToolResult:
        """The recovery prompt for the next agent, {"sessionId", "prompt"}; changes nothing."""
        return project.call(lambda mgr: replies.prompt(mgr.analyse(session_id)), create=False)

    @server.tool()
    def emergency(user: UserArg = None) -> CallToolResult:
        """Emergency recovery from the emergency backups only (as `emergency --json`)."""
        return project.call(lambda mgr: mgr.emergency().to_wire(), user=user, create=False)

    @server.prompt(name="recover-session", title="Recover an interrupted session")
    def recover_session(session_id: RecoveredArg = None) -> str:
        """The recovery prompt: the task, decisions, next steps and what changed since."""
        reply = project.call(lambda mgr: replies.prompt(mgr.analyse(session_id)), create=False)
        data = reply.structured_content or {}
        if reply.is_error:
            raise MCPError(INVALID_PARAMS, data["error"]["message"], data["error"])
        return str(data["prompt"])


def serve(store: str | None = None) -> None:
    """Serve the project of the working directory on stdio until the client hangs up.

    Args:
        store: The store URL (default: CONTINUITY_STORE, the config file, then files).
    """
    from pathlib import Path

    build_server(Project(find_project_root(Path.cwd()), store)).run("stdio")
