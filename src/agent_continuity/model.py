"""The domain model: sessions, events, tasks, snapshots and recovery points.

Every model serialises with the camelCase keys of the continuity framework
specification (``currentTask``, ``lastActivity``, ...) and accepts either
spelling on input. Times are timezone-aware UTC and serialise as ISO 8601 with
``Z``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from pydantic.alias_generators import to_camel

SYSTEM_VERSION = "1.0"


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_time(value: datetime) -> str:
    """ISO 8601 UTC with ``Z``, to the millisecond when there are any.

    Less than a millisecond is written as the whole second, never as ``.000Z``:
    what is read back must be written back the same.
    """
    value = _as_utc(value)
    # isoformat is several times faster than strftime, and this runs for every event.
    if value.microsecond >= 1000:
        return value.isoformat(timespec="milliseconds")[:-6] + "Z"
    return value.isoformat(timespec="seconds")[:-6] + "Z"


UtcTime = Annotated[
    datetime,
    AfterValidator(_as_utc),
    PlainSerializer(format_time, return_type=str, when_used="json"),
]


def _parse_progress(value: object) -> object:
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d{1,3})\s*%?\s*", value)
        if match is None:
            raise ValueError(f"progress must be a percentage such as '85%', got {value!r}")
        return int(match[1])
    return value


def _check_progress(value: int) -> int:
    if not 0 <= value <= 100:
        raise ValueError(f"progress must be between 0 and 100, got {value}")
    return value


Progress = Annotated[
    int,
    BeforeValidator(_parse_progress),
    AfterValidator(_check_progress),
    PlainSerializer(lambda v: f"{v}%", return_type=str, when_used="json"),
]


def utc_now() -> datetime:
    """The current time, timezone-aware UTC. The default clock."""
    return datetime.now(UTC)


class WireModel(BaseModel):
    """Base of every model: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        validate_assignment=False,
        defer_build=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict with camelCase keys."""
        return self.model_dump(mode="json", by_alias=True)


class SessionStatus(StrEnum):
    """Where a session is in its life."""

    ACTIVE = "active"
    INTERRUPTED = "interrupted"
    COMPLETED = "completed"
    ARCHIVED = "archived"


class EventKind(StrEnum):
    """What a journal event records."""

    SESSION = "session"  # first event of every journal: who, what, where
    LIFECYCLE = "lifecycle"  # status changes: interrupted, completed, archived, resumed
    LEASE = "lease"  # a new writer took the session over (fencing)
    MESSAGE = "message"
    DECISION = "decision"
    STEP_COMPLETED = "step-completed"
    NEXT_STEP = "next-step"
    BLOCKER = "blocker"
    TASK = "task"
    STATE = "state"  # phase, current step, progress, summary, active files
    FILE = "file"
    ERROR = "error"
    TOOL_CALL = "tool-call"
    TOOL_RESULT = "tool-result"
    NOTE = "note"


class MessageRole(StrEnum):
    """Who said a message."""

    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"


class TaskStatus(StrEnum):
    """The status of a task; ``done`` and ``cancelled`` are closed."""

    OPEN = "open"
    IN_PROGRESS = "in-progress"
    BLOCKED = "blocked"
    DONE = "done"
    CANCELLED = "cancelled"

    @property
    def is_open(self) -> bool:
        """Whether work on the task can continue."""
        return self not in (TaskStatus.DONE, TaskStatus.CANCELLED)


class Trigger(StrEnum):
    """Why a recovery point was made."""

    AUTO = "auto"  # an interval elapsed
    TASK_COMPLETION = "task-completion"
    MAJOR_DECISION = "major-decision"
    FILE_MODIFICATION = "file-modification"
    ERROR_OCCURRENCE = "error-occurrence"
    USER_REQUEST = "user-request"
    INTERRUPTION = "interruption"  # the final state of a session that died
    END = "end"
    COMPACTION = "compaction"  # a coding agent is about to compact its context

    @property
    def automatic(self) -> bool:
        """Automatic points are pruned down to ``backupCount``; the others are kept."""
        return self is Trigger.AUTO


class AgentInfo(WireModel):
    """The agent working in a session."""

    type: str = "development-assistant"
    capabilities: list[str] = Field(default_factory=list)
    specialization: str = ""
    # A coding agent's own name (``claude``, ``codex``, ``gemini``) and its own
    # session id: hooks and transcript imports find the session they feed by these.
    name: str = ""
    session_id: str = ""

    @model_serializer(mode="wrap")
    def _drop_unmapped(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Sessions no coding agent feeds keep the shape they always had.
        data: dict[str, Any] = handler(self)
        for key in ("name", "session_id", "sessionId"):
            if key in data and not data[key]:
                del data[key]
        return data


class SessionContext(WireModel):
    """What the session is about."""

    current_task: str | None = None
    current_phase: str | None = None
    working_directory: str = ""
    active_files: list[str] = Field(default_factory=list)
    conversation_summary: str = ""
    key_decisions: list[str] = Field(default_factory=list)


class SessionState(WireModel):
    """How far the session got."""

    completed_steps: list[str] = Field(default_factory=list)
    current_step: str | None = None
    next_steps: list[str] = Field(default_factory=list)
    blockers: list[str] = Field(default_factory=list)
    progress: Progress = 0


class PersistenceSettings(WireModel):
    """How the session is saved."""

    auto_save: bool = True
    save_interval: str = "30s"
    last_save: UtcTime | None = None
    backup_count: int = Field(default=5, ge=1)


class Lease(WireModel):
    """The right to append to one session's journal.

    ``token`` grows by one at every takeover; a store refuses an append made
    under an older token (fencing), so two writers never interleave one
    session's history.
    """

    session_id: str
    token: int = Field(ge=1)
    holder: str  # "pid@host" for a process owner, "cli" for command-line sessions
    pid: int | None = None
    host: str = ""
    acquired: UtcTime
    heartbeat: UtcTime
    expires: UtcTime


class Interruption(WireModel):
    """Why and when a session stopped without ending."""

    cause: str
    at: UtcTime


class SessionRecord(WireModel):
    """A session as the registry lists it (the specification's shape plus ours)."""

    id: str
    type: str = "general"
    status: SessionStatus = SessionStatus.ACTIVE
    created: UtcTime
    last_activity: UtcTime
    user_id: str = ""
    project_dir: str = ""
    agent: AgentInfo = Field(default_factory=AgentInfo)
    context: SessionContext = Field(default_factory=SessionContext)
    state: SessionState = Field(default_factory=SessionState)
    persistence: PersistenceSettings = Field(default_factory=PersistenceSettings)
    interruption: Interruption | None = None
    recovered_from: str | None = None
    continuation_id: str | None = None
    last_seq: int = 0


class EventDraft(WireModel):
    """An event before the store gives it a sequence number."""

    kind: EventKind
    at: UtcTime
    payload: dict[str, Any] = Field(default_factory=dict)


class Event(EventDraft):
    """One entry of a session's journal."""

    seq: int = Field(ge=1)


class Task(WireModel):
    """A unit of work the session tracks."""

    id: str
    title: str = ""
    status: TaskStatus = TaskStatus.OPEN
    phase: str | None = None
    steps: list[str] = Field(default_factory=list)
    dependencies: list[str] = Field(default_factory=list)


class ToolCall(WireModel):
    """A tool call that has (or has not yet) received its result."""

    call_id: str
    name: str
    arguments: Any = None
    seq: int = 0


class LostEvent(WireModel):
    """A journal event lost to damage, whose number ``verify --repair`` closed with a tombstone."""

    seq: int
    reason: str  # "checksum", "torn", "truncated" or "missing"
    quarantine: str | None = None  # where the damaged bytes were moved, if any


class ProjectState(WireModel):
    """The specification's projectState block."""

    current_phase: str | None = None
    active_tasks: list[str] = Field(default_factory=list)
    recent_completions: list[str] = Field(default_factory=list)
    project_health: str = "unknown"
    critical_issues: list[str] = Field(default_factory=list)


class ConversationContext(WireModel):
    """The specification's conversationContext block."""

    topic: str = ""
    sub_topic: str = ""
    technical_focus: str = ""
    recent_discussions: list[str] = Field(default_factory=list)


class FileStamp(WireModel):
    """What is known of one file at observation time."""

    size: int = -1  # -1: the file does not exist (deleted in the work tree)
    mtime_ns: int = 0
    # Git projects: the git blob id of the content; elsewhere: sha256 hex.
    digest: str | None = None


class BuildResult(WireModel):
    """The latest finished run of the project's build command (``build-command``).

    Attributes:
        command: The command as configured (run through the shell).
        status: ``passing``, ``failing``, ``timeout`` or ``unknown``.
        exit_code: Its exit status; None on timeout or when it could not start.
        started: When it started.
        finished: When it finished (or was killed at the timeout).
        fingerprint: The state of the project it built (HEAD and dirty files).
    """

    command: str
    status: str
    exit_code: int | None = None
    started: UtcTime
    finished: UtcTime
    fingerprint: str = ""


class CodeContext(WireModel):
    """The specification's codeContext block, plus what change detection needs."""

    last_modified_files: list[str] = Field(default_factory=list)
    working_branch: str | None = None
    pending_changes: bool = False
    build_status: str = "unknown"
    build: BuildResult | None = None
    vcs: str = "none"  # "git" or "none"
    head: str | None = None
    recent_commits: list[str] = Field(default_factory=list)
    # For git: the dirty files only; outside git: every file. Relative POSIX paths.
    files: dict[str, FileStamp] = Field(default_factory=dict)
    # Outside git, a folder with more files than the observer indexes is not
    # indexed at all (a home folder is not a project); changes go untracked.
    index_limit_exceeded: bool = False
    observed_at: UtcTime | None = None


class ProjectObservation(WireModel):
    """What the project observer saw, relative to a saved code context.

    The observer does the I/O (git, stat, hashing); the recovery engine only
    reads this object.
    """

    observed_at: UtcTime
    code: CodeContext
    # Path (relative, POSIX) -> "modified" | "added" | "deleted", since the saved context.
    file_changes: dict[str, str] = Field(default_factory=dict)
    # "<short sha> <subject>" of commits made since the saved HEAD, oldest first.
    commits_since: list[str] = Field(default_factory=list)
    # Whether the saved HEAD is still an ancestor of HEAD (None: not a git project
    # or nothing saved to compare with).
    saved_head_reachable: bool | None = None
    # Of the paths the caller asked about, those that no longer exist.
    missing_paths: list[str] = Field(default_factory=list)


class AiAgentState(WireModel):
    """The specification's aiAgentState block."""

    knowledge_level: str = ""
    specialization: str = ""
    learning_progress: dict[str, str] = Field(default_factory=dict)


class ContextSnapshot(WireModel):
    """The latest context snapshot of a session (plain JSON on disk)."""

    session_id: str
    timestamp: UtcTime
    seq: int = 0
    project_state: ProjectState = Field(default_factory=ProjectState)
    conversation_context: ConversationContext = Field(default_factory=ConversationContext)
    code_context: CodeContext = Field(default_factory=CodeContext)
    ai_agent_state: AiAgentState = Field(default_factory=AiAgentState)
    # When each auto-save kind last refreshed its part: "context", "conversation",
    # "projectState".
    updated: dict[str, UtcTime] = Field(default_factory=dict)


#: The recovery point format this code writes (see :class:`RecoveryPoint`).
POINT_VERSION = 2


class RecoveryPoint(WireModel):
    """A session's materialised state at one journal sequence number.

    Recovery loads the newest valid point and replays the journal after
    ``seq``. The conversation itself stays in the journal, so a point costs
    the same at turn 10 and at turn 10,000.

    ``version`` 1 (points written before version 2; a point without the key)
    holds its recent messages in ``recent_messages``. Version 2 refers to the
    journal instead: the recent messages are the journal's message events
    from ``messages_from`` up to ``seq``, replayed on loading
    (``recent_messages`` then holds only the window's messages older than
    ``messages_from``, when the window reached further back than
    :data:`~agent_continuity.replay.WINDOW_EVENTS` events).
    """

    version: int = 1
    id: str
    session_id: str
    seq: int = Field(ge=0)
    created: UtcTime
    trigger: Trigger = Trigger.AUTO
    session: SessionRecord
    project_state: ProjectState = Field(default_factory=ProjectState)
    conversation_context: ConversationContext = Field(default_factory=ConversationContext)
    code_context: CodeContext = Field(default_factory=CodeContext)
    ai_agent_state: AiAgentState = Field(default_factory=AiAgentState)
    tasks: list[Task] = Field(default_factory=list)
    user_preferences: dict[str, Any] = Field(default_factory=dict)
    pending_operations: list[ToolCall] = Field(default_factory=list)
    # Operations the agent declared pending (``update --pending``), not yet done.
    declared_operations: list[str] = Field(default_factory=list)
    last_action: str = ""
    message_count: int = 0
    recent_messages: list[dict[str, Any]] = Field(default_factory=list)
    messages_from: int | None = None
    # Events the state above never saw: a later recovery still warns of them.
    lost_events: list[LostEvent] = Field(default_factory=list)
    # What loading the point found damaged without rejecting it (a file-state
    # chunk of its code context): never stored, only reported.
    damage: list[Damage] = Field(default_factory=list, exclude=True)

    @property
    def automatic(self) -> bool:
        """Whether retention may prune this point."""
        return self.trigger.automatic

    @property
    def replay_from(self) -> int:
        """The journal must be read after this seq to rebuild the point's view.

        ``seq`` for a point holding its messages; one before ``messages_from``
        for one whose recent messages are the journal's.
        """
        if self.messages_from is None:
            return self.seq
        return max(0, min(self.seq, self.messages_from - 1))


class RecoveryPointInfo(WireModel):
    """A recovery point as listed, without its body."""

    id: str
    session_id: str
    seq: int
    created: UtcTime
    trigger: Trigger
    location: str = ""

    @property
    def automatic(self) -> bool:
        """Whether retention may prune this point."""
        return self.trigger.automatic


class EmergencyBackup(WireModel):
    """The critical facts of a session, kept apart from everything else."""

    session_id: str
    updated: UtcTime
    status: SessionStatus
    user_id: str = ""
    project_dir: str = ""
    current_task: str | None = None
    current_phase: str | None = None
    current_step: str | None = None
    progress: Progress = 0
    next_steps: list[str] = Field(default_factory=list)
    blockers: list[str] = Field(default_factory=list)
    last_decision: str | None = None
    conversation_summary: str = ""
    seq: int = 0


class Damage(WireModel):
    """A record that failed its checksum, or a journal tail that was torn."""

    location: str
    # "torn-tail", "checksum", "decode", "gap", "missing", "truncated"; "file-state":
    # a point's code context chunk is lost, the point itself is intact.
    kind: str
    detail: str
    offset: int | None = None
