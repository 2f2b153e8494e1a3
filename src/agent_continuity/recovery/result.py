"""What the recovery engine returns.

:class:`RecoveryResult` is the ``recover --json`` contract of DESIGN.md §4:
``to_wire()`` gives exactly that object (plus a few documented extras). The
recovered, repaired :class:`~agent_continuity.replay.SessionView`, the repair
events and the conversation tail ride along on the object for the caller but
are not part of the JSON.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PrivateAttr

from agent_continuity.model import (
    AgentInfo,
    AiAgentState,
    BuildResult,
    CodeContext,
    ConversationContext,
    EventDraft,
    Progress,
    TaskStatus,
    UtcTime,
    WireModel,
    format_time,
)
from agent_continuity.replay import SessionView

from .prediction import PredictedContext

Status = Literal["success", "partial", "failed"]
Mode = Literal["quick", "full", "emergency"]
Decision = Literal["auto-resume", "prompt", "new-session"]


class ConfidenceFactors(WireModel):
    """The four factors of the recovery confidence, each in [0, 1]."""

    elapsed: float
    completeness: float
    task_status: float
    coherence: float


class Confidence(WireModel):
    """The recovery confidence score and why it is what it is.

    Attributes:
        score: Weighted mean of the factors, rounded to three decimals.
        factors: Each factor, rounded to three decimals.
        weights: The weight each factor had.
        reasons: One line per factor saying what it was computed from.
    """

    score: float
    factors: ConfidenceFactors
    weights: ConfidenceFactors
    reasons: list[str] = Field(default_factory=list)


class TaskChange(WireModel):
    """A task whose status differs between the saved state and the recovered one.

    ``before`` is None for a task created after the save; ``after`` is None for a
    task the recovered state no longer knows.
    """

    id: str
    title: str = ""
    before: TaskStatus | None = None
    after: TaskStatus | None = None


class StateDiff(WireModel):
    """How the world moved between the save and now (the state-synchronisation output)."""

    modified_files: list[str] = Field(default_factory=list)
    added_files: list[str] = Field(default_factory=list)
    deleted_files: list[str] = Field(default_factory=list)
    branch_changed: bool = False
    saved_branch: str | None = None
    current_branch: str | None = None
    saved_head: str | None = None
    current_head: str | None = None
    saved_head_reachable: bool | None = None
    new_commits: list[str] = Field(default_factory=list)
    task_changes: list[TaskChange] = Field(default_factory=list)
    missing_active_files: list[str] = Field(default_factory=list)

    @property
    def changed_file_count(self) -> int:
        """Modified, added and deleted files together."""
        return len(self.modified_files) + len(self.added_files) + len(self.deleted_files)

    @property
    def unchanged(self) -> bool:
        """True when no file, branch, commit or task moved."""
        return not (
            self.changed_file_count
            or self.branch_changed
            or self.new_commits
            or self.task_changes
            or self.missing_active_files
        )


class CodeSummary(WireModel):
    """The specification's codeContext block of the project now, with the latest build run.

    Attributes:
        last_modified_files: The most recently modified dirty files.
        working_branch: The branch checked out.
        pending_changes: Whether there are uncommitted changes.
        build_status: ``passing``, ``failing``, ``timeout`` or ``unknown``.
        build: The latest finished run of the build command (command, exit
            code, when), or None when none is known.
    """

    last_modified_files: list[str] = Field(default_factory=list)
    working_branch: str | None = None
    pending_changes: bool = False
    build_status: str = "unknown"
    build: BuildResult | None = None


def code_summary(code: CodeContext, *also: CodeContext | None) -> CodeSummary:
    """``code``'s codeContext block with the newest build run among ``code`` and ``also``."""
    runs = [c.build for c in (code, *also) if c is not None and c.build is not None]
    build = max(runs, key=lambda run: run.finished, default=None)
    return CodeSummary(
        last_modified_files=code.last_modified_files,
        working_branch=code.working_branch,
        pending_changes=code.pending_changes,
        build_status=build.status if build is not None else code.build_status,
        build=build,
    )


def describe_build(summary: CodeSummary) -> str:
    """The build status in a line: ``failing (exit 3 from `make check` at 2026-…Z)``.

    ``exit None`` means the command could not be started.
    """
    run = summary.build
    if run is None:
        return summary.build_status
    how = "killed at the build timeout" if run.status == "timeout" else f"exit {run.exit_code}"
    return f"{run.status} ({how} from `{run.command}` at {format_time(run.finished)})"


class ValidationCheck(WireModel):
    """One context-validation check and its outcome."""

    name: str
    critical: bool
    passed: bool
    detail: str


class RestorationStep(WireModel):
    """One of the five restoration steps, with its named output and what it found."""

    name: str
    output: str
    detail: str


class ProtocolStep(WireModel):
    """One step of the recovery protocol that ran (quick, full or emergency)."""

    name: str
    detail: str


class ProtocolReport(WireModel):
    """The recovery protocol that ran and what each of its steps did."""

    name: str
    description: str
    steps: list[ProtocolStep] = Field(default_factory=list)


class RecoveryResult(WireModel):
    """The outcome of recovering one session (``recover --json``).

    Attributes:
        status: ``success`` (nothing lost, every check passed), ``partial``
            (warnings, damage, a failed check or emergency fallback) or ``failed``
            (nothing could be recovered).
        session_id: The session recovered.
        mode: The protocol that ran: ``quick``, ``full`` or ``emergency``.
        decision: ``auto-resume``, ``prompt`` (ask the user) or ``new-session``.
        confidence: The score, its factors and their reasons.
        context_summary: A few sentences for a person.
        next_steps: What the session planned to do next.
        warnings: Everything a user should know before trusting the result.
        state_diff: What changed in the project since the save.
        code_context: The project now (codeContext block) and its latest build.
        validation: The context-validation checks.
        steps: The five restoration steps, in order.
        prompt: The filled recovery prompt for the next agent.
        continuation_id: ``CONTINUATION-YYMMDD-NNN-STEP`` of the step to resume.
        protocol: The protocol's own steps and what each did.
        recovery_point_id: The recovery point the state was loaded from, if any.
        recovered_seq: The journal sequence number the recovered state reaches.
        reference_time: The interruption (or last activity) the elapsed time counts from.
        outcome: What was done with the decision (set by the caller, not the engine).
        new_session_id: The session started when the old one was declined or seeded.
        agent: The agent that worked in the session.
        ai_agent_state: Its knowledge level, specialization and learning progress.
        conversation_context: Topic, sub-topic, technical focus, recent discussions.
        user_preferences: The user's preferences recorded in the session.
        pending_operations: Operations begun and not finished: tool calls without a
            result and operations the agent declared pending (``kind``, ``description``).
        predicted_context: The context the next agent will most likely need, best
            first: files, related sessions and decisions, each scored with its reason.
        repairs: Events the caller appends when it restores the session (a synthetic
            tool result for each tool call that never returned). Not in the JSON.
        recovered_messages: The conversation tail, oldest first. Not in the JSON.
    """

    status: Status
    session_id: str
    mode: Mode
    decision: Decision
    confidence: Confidence
    context_summary: str
    next_steps: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    state_diff: StateDiff = Field(default_factory=StateDiff)
    code_context: CodeSummary = Field(default_factory=CodeSummary)
    validation: list[ValidationCheck] = Field(default_factory=list)
    steps: list[RestorationStep] = Field(default_factory=list)
    prompt: str = ""
    continuation_id: str
    protocol: ProtocolReport
    recovery_point_id: str | None = None
    recovered_seq: int = 0
    reference_time: UtcTime | None = None
    # What the caller did with the decision: "restored", "new-session" (the old one
    # archived), "awaiting-answer" (prompt without an answer: nothing changed),
    # "still-active", "needs-repair" (its journal is missing: nothing can be written
    # to it until `verify --repair` rebuilds it) or "none" (nothing recoverable).
    outcome: str = "none"
    new_session_id: str | None = None
    agent: AgentInfo = Field(default_factory=AgentInfo)
    ai_agent_state: AiAgentState = Field(default_factory=AiAgentState)
    conversation_context: ConversationContext = Field(default_factory=ConversationContext)
    user_preferences: dict[str, Any] = Field(default_factory=dict)
    pending_operations: list[dict[str, Any]] = Field(default_factory=list)
    predicted_context: list[PredictedContext] = Field(default_factory=list)
    repairs: list[EventDraft] = Field(default_factory=list, exclude=True)
    recovered_messages: list[dict[str, Any]] = Field(default_factory=list, exclude=True)

    _view: SessionView | None = PrivateAttr(default=None)
    _observed: CodeContext | None = PrivateAttr(default=None)

    @property
    def view(self) -> SessionView | None:
        """The recovered state with the repairs applied (None when nothing was recovered)."""
        return self._view

    def attach_view(self, view: SessionView | None) -> RecoveryResult:
        """Attach the recovered view (the engine does this); returns ``self``."""
        self._view = view
        return self

    @property
    def observed_code(self) -> CodeContext | None:
        """The project's code context as observed for this recovery, if it was."""
        return self._observed

    def attach_observation(self, code: CodeContext | None) -> RecoveryResult:
        """Keep the code context observed for this recovery; returns ``self``."""
        self._observed = code
        return self


class TaskContext(WireModel):
    """What an agent needs to know about one task to pick it up."""

    id: str
    title: str = ""
    status: TaskStatus = TaskStatus.OPEN
    phase: str | None = None
    steps: list[str] = Field(default_factory=list)
    completed_steps: list[str] = Field(default_factory=list)
    dependencies: list[str] = Field(default_factory=list)
    is_current_task: bool = False
    blockers: list[str] = Field(default_factory=list)
    key_decisions: list[str] = Field(default_factory=list)
    conversation_summary: str = ""
    last_action: str = ""
    changed_files: list[str] = Field(default_factory=list)
    missing_files: list[str] = Field(default_factory=list)


class ResumeTaskResult(WireModel):
    """The RESUME_TASK response: ``{taskContext, currentStep, progress, nextActions}``."""

    session_id: str
    task_context: TaskContext
    current_step: str | None = None
    progress: Progress = 0
    next_actions: list[str] = Field(default_factory=list)
    continuation_id: str
    warnings: list[str] = Field(default_factory=list)


class UrgentTask(WireModel):
    """A task an emergency recovery puts in front of the user."""

    session_id: str
    task: str | None = None
    phase: str | None = None
    step: str | None = None
    progress: Progress = 0
    blockers: list[str] = Field(default_factory=list)
    next_steps: list[str] = Field(default_factory=list)
    session_status: str = ""
    updated: UtcTime
    reason: str = ""


class CriticalInfo(WireModel):
    """The critical project information of an emergency recovery."""

    current_phase: str | None = None
    project_health: str = "unknown"
    critical_issues: list[str] = Field(default_factory=list)
    recent_completions: list[str] = Field(default_factory=list)
    working_branch: str | None = None
    head: str | None = None
    build_status: str = "unknown"
    last_decisions: list[str] = Field(default_factory=list)


class EmergencyResult(WireModel):
    """The outcome of ``continuity emergency``: critical info, urgent tasks, basic context."""

    status: Status
    mode: Mode = "emergency"
    critical_info: CriticalInfo = Field(default_factory=CriticalInfo)
    urgent_tasks: list[UrgentTask] = Field(default_factory=list)
    basic_context: str = ""
    next_steps: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    sessions_considered: int = 0
    protocol: ProtocolReport
