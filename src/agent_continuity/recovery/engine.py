"""The recovery engine: saved state + observation + time -> :class:`RecoveryResult`.

Pure: no disk, no clock, no git, no environment. The caller loads the saved
state, observes the project, reads the clock and passes all three in; the
engine returns what to do and why. The same inputs always give the same result.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from agent_continuity.captured import ai_agent_state, conversation_context, pending_operations
from agent_continuity.errors import InvalidIdentifier, InvalidInput
from agent_continuity.ids import make_continuation_id
from agent_continuity.model import (
    CodeContext,
    ProjectObservation,
    SessionRecord,
    SessionStatus,
    format_time,
)
from agent_continuity.replay import SessionView

from .confidence import (
    CompletenessPart,
    build_confidence,
    coherence_factor,
    completeness_factor,
    decide,
    elapsed_factor,
    no_confidence,
    task_status_factor,
)
from .integrity import (
    FILE_STATE,
    Integrity,
    apply_repairs,
    assess_integrity,
    index_problems,
    repair_events,
)
from .loading import LoadedState, load_state
from .prediction import PredictionEvidence, predict_context, session_work
from .prompt import render_prompt
from .protocols import protocol_report, restoration_steps
from .result import (
    Mode,
    RecoveryResult,
    StateDiff,
    Status,
    ValidationCheck,
    code_summary,
    describe_build,
)
from .saved_state import SavedState
from .settings import RecoverySettings
from .state_diff import describe_diff, describe_task_change, diff_state
from .summary import context_summary
from .validation import failed_critical, validate_context

MODES: tuple[Mode, ...] = ("quick", "full", "emergency")
REQUESTABLE_MODES = ("auto", *MODES)


def reference_time(record: SessionRecord) -> datetime:
    """When a session stopped: its interruption time, else its last activity.

    The elapsed-time factor and the quick/full choice both count from here.
    """
    if record.status is SessionStatus.INTERRUPTED and record.interruption is not None:
        return record.interruption.at
    return record.last_activity


def choose_mode(
    reference_time: datetime, now: datetime, settings: RecoverySettings, requested: str = "auto"
) -> Mode:
    """The recovery protocol to run.

    ``"quick"`` when less than ``quick_limit_hours`` (24 h) passed since
    ``reference_time``, else ``"full"``; an explicit request wins. Callers use
    it *before* loading, to know whether to read the whole journal.

    Args:
        reference_time: See :func:`reference_time`.
        now: The current time.
        settings: Where the quick limit comes from.
        requested: ``"auto"``, ``"quick"``, ``"full"`` or ``"emergency"``.

    Raises:
        InvalidInput: If ``requested`` is none of those.
    """
    if requested not in REQUESTABLE_MODES:
        raise InvalidInput(
            f"unknown recovery mode {requested!r}; use one of {', '.join(REQUESTABLE_MODES)}"
        )
    for mode in MODES:
        if requested == mode:
            return mode
    if now - reference_time < timedelta(hours=settings.quick_limit_hours):
        return "quick"
    return "full"


def _continuation_id(record: SessionRecord) -> str:
    state = record.state
    for step in (state.current_step, *state.next_steps[:1], "RESUME"):
        if step:
            try:
                return make_continuation_id(record.id, step)
            except InvalidIdentifier:
                # A step name with no letters or digits (e.g. only punctuation or
                # non-Latin script) cannot become an id; try the next candidate.
                continue
    return make_continuation_id(record.id, "RESUME")


def _saved_code(loaded: LoadedState, saved: SavedState) -> CodeContext | None:
    if saved.point is not None:
        if any(d.kind == FILE_STATE for d in saved.point_damage):
            return None  # its file stamps are lost: nothing to compare with
        return saved.point.code_context
    code = loaded.view.code_context
    return code if code.observed_at is not None or code.vcs != "none" else None


def _completeness_parts(
    loaded: LoadedState, integrity: Integrity, saved_code: CodeContext | None
) -> list[CompletenessPart]:
    record = loaded.view.record
    damaged = [
        d.kind for d in (*integrity.journal_damage, *integrity.point_damage) if d.kind != FILE_STATE
    ]
    journal_note = "lost; only the emergency backup survived"
    if loaded.from_journal:
        journal_note = "; ".join(
            note
            for note, present in (
                ("torn or gapped", any(k not in ("checksum", "decode") for k in damaged)),
                (
                    f"{len(integrity.lost_events)} event(s) lost to damage",
                    bool(integrity.lost_events),
                ),
                (
                    f"{len(integrity.dangling_calls)} tool call(s) without a result",
                    bool(integrity.dangling_calls),
                ),
                ("half-written assistant turn", integrity.partial_message_seq is not None),
            )
            if present
        )
    return [
        CompletenessPart("checksums", integrity.checksums_ok, "records failed verification"),
        CompletenessPart("journal", loaded.from_journal and integrity.journal_intact, journal_note),
        CompletenessPart("current task", bool(record.context.current_task), "none set"),
        CompletenessPart("next steps", bool(record.state.next_steps), "none planned"),
        CompletenessPart("code context", saved_code is not None, "not captured"),
    ]


def _status(warnings: Sequence[str], checks: Sequence[ValidationCheck], mode: Mode) -> Status:
    if warnings or mode == "emergency" or not all(c.passed for c in checks):
        return "partial"
    return "success"


def recover(
    saved: SavedState,
    observation: ProjectObservation,
    now: datetime,
    settings: RecoverySettings,
    requested_mode: str = "auto",
    evidence: PredictionEvidence | None = None,
) -> RecoveryResult:
    """Recover one session: rebuild, repair, compare, validate, score, decide, explain.

    Args:
        saved: What survived of the session (see :class:`SavedState`).
        observation: The project now, relative to the saved code context.
        now: The current time.
        settings: Weights, thresholds, limits, prompt template.
        requested_mode: ``"auto"`` (quick under 24 h, else full) or a mode to force.
        evidence: What predicting the next agent's context may use besides the
            session itself (recent commits, earlier sessions); None for nothing more.

    Returns:
        The result; ``result.view`` is the recovered state with ``result.repairs``
        applied, which the caller appends to the journal when it restores the
        session.

    Raises:
        InvalidInput: If ``requested_mode`` is unknown or the recovery point
            belongs to another session.
    """
    # The mode comes from the registry entry, exactly as the caller's own
    # choose_mode() call did, so both agree on whether the whole journal is needed.
    mode = choose_mode(reference_time(saved.record), now, settings, requested_mode)
    loaded = load_state(saved, full=mode == "full")
    if loaded is None:
        return _nothing_recovered(saved, observation, settings)
    view = loaded.view
    warnings = list(loaded.warnings)

    # Measure before repairing: the repairs are ours, not something the agent did.
    reference = reference_time(view.record)
    last_action = view.last_action
    integrity = assess_integrity(
        view, saved.journal_damage, saved.point_damage, saved.emergency_damage
    )
    warnings.extend(integrity.problems(kept_in=loaded.source if loaded.from_journal else None))
    warnings.extend(index_problems(saved.index_damage))
    if observation.code.index_limit_exceeded:
        warnings.append(
            "the project is not a git repository and holds too many files to index, so "
            "file changes since the save are unknown; use git or run from the project folder"
        )
    repairs = repair_events(integrity.dangling_calls, now)
    apply_repairs(view, repairs)

    saved_code = _saved_code(loaded, saved)
    tasks_before = {t.id: t for t in saved.point.tasks} if saved.point is not None else None
    diff = diff_state(observation, saved_code, tasks_before=tasks_before, tasks_after=view.tasks)
    checks = validate_context(view, diff, saved_code, observation, integrity)
    critical = failed_critical(checks)
    if critical:
        names = ", ".join(c.name for c in critical)
        warnings.append(
            f"critical validation failed ({names}): fell back to emergency recovery; "
            "verify the context manually before continuing"
        )
        warnings.extend(f"{check.name}: {check.detail}" for check in critical)
        mode = "emergency"
    # The prompt lists changed files under recent changes, so this warning is
    # kept out of the prompt's active issues.
    issues = list(warnings)
    if diff.changed_file_count:
        warnings.append(
            f"{diff.changed_file_count} file(s) changed since the save; review them before "
            "continuing (see stateDiff)"
        )

    confidence = build_confidence(
        elapsed_factor(reference, now, settings.half_life_hours),
        completeness_factor(_completeness_parts(loaded, integrity, saved_code)),
        task_status_factor(view.record.context.current_task, view.tasks),
        coherence_factor(diff, len(view.record.context.active_files), settings),
        settings,
    )
    # Emergency recovery is minimal context: never resume on it without asking.
    decision = decide(confidence.score, settings, ceiling="prompt" if mode == "emergency" else None)
    continuation_id = _continuation_id(view.record)
    summary = context_summary(
        view, reference=reference, now=now, diff=diff, last_action=last_action
    )
    if mode == "emergency":
        summary = "Emergency recovery (minimal context). " + summary
    code = code_summary(observation.code, saved_code)
    predicted = predict_context(session_work(view.record), evidence or PredictionEvidence())
    prompt = render_prompt(
        view,
        settings,
        diff=diff,
        issues=issues,
        last_action=last_action,
        continuation_id=continuation_id,
        mode=mode,
        build=describe_build(code),
        predicted=predicted,
    )
    knowledge = _knowledge_detail(view, diff, loaded, len(repairs), observation)
    state = view.record.state
    resume_at = state.current_step or (state.next_steps or ["the next step"])[0]
    plan = (
        f"{decision} (confidence {confidence.score:.3f}); resume at {resume_at}"
        f"; continuation id {continuation_id}"
    )
    if critical:
        plan += "; manual verification requested before continuing"
    result = RecoveryResult(
        status=_status(warnings, checks, mode),
        session_id=view.record.id,
        mode=mode,
        decision=decision,
        confidence=confidence,
        context_summary=summary,
        next_steps=list(view.record.state.next_steps),
        warnings=warnings,
        state_diff=diff,
        code_context=code,
        validation=checks,
        steps=restoration_steps(
            [
                _identification(view, reference, saved),
                f"loaded {loaded.source}; replayed {loaded.journal.describe()}",
                describe_diff(diff) + (f"; build {describe_build(code)}" if code.build else ""),
                knowledge,
                plan,
            ]
        ),
        prompt=prompt,
        continuation_id=continuation_id,
        protocol=protocol_report(
            mode, _protocol_details(loaded, checks, diff, len(repairs), knowledge, plan, summary)
        ),
        recovery_point_id=saved.point.id if saved.point is not None else None,
        recovered_seq=view.seq,
        reference_time=reference,
        agent=view.record.agent,
        ai_agent_state=ai_agent_state(view),
        conversation_context=conversation_context(view),
        user_preferences=dict(view.user_preferences),
        pending_operations=pending_operations(view),
        predicted_context=predicted,
        repairs=repairs,
        recovered_messages=list(view.recent_messages),
    )
    return result.attach_view(view)


def _protocol_details(
    loaded: LoadedState,
    checks: Sequence[ValidationCheck],
    diff: StateDiff,
    repairs: int,
    knowledge: str,
    plan: str,
    summary: str,
) -> dict[str, str]:
    """What each step of every protocol did; the report keeps the running protocol's."""
    view = loaded.view
    passed = f"{sum(c.passed for c in checks)} of {len(checks)} checks passed"
    return {
        # quick
        "load-session-snapshot": loaded.source,
        "restore-conversation-context": (
            f"{view.message_count} message(s), {len(view.recent_messages)} recent restored; "
            f"{repairs} dangling tool call(s) closed"
        ),
        "verify-project-state": passed,
        "resume-current-task": plan,
        # full
        "analyze-project-changes": describe_diff(diff),
        "rebuild-context-from-logs": (
            f"{loaded.source}; journal: {loaded.journal.describe()}"
            if loaded.full_replay
            else f"the whole journal was not loaded; used {loaded.source}"
        ),
        "update-knowledge-base": knowledge,
        "synchronize-with-current-state": f"{passed}; {describe_diff(diff)}",
        "generate-recovery-summary": "context summary and recovery prompt written",
        # emergency
        "load-critical-project-info": _critical_info(view),
        "identify-urgent-tasks": _urgent(view),
        "establish-basic-context": summary,
    }


def _identification(view: SessionView, reference: datetime, saved: SavedState) -> str:
    record = view.record
    detail = (
        f"{record.id} ({record.type}), status {record.status.value}, "
        f"stopped {format_time(reference)}"
    )
    if record.interruption is not None:
        detail += f" (cause: {record.interruption.cause})"
    if record.user_id:
        detail += f", user {record.user_id}"
    point = saved.point
    detail += f"; recovery point {point.id}" if point is not None else "; no valid recovery point"
    if saved.point_damage:
        detail += f" ({len(saved.point_damage)} newer point(s) skipped as damaged)"
    return detail


def _knowledge_detail(
    view: SessionView,
    diff: StateDiff,
    loaded: LoadedState,
    repairs: int,
    observation: ProjectObservation,
) -> str:
    record = view.record
    open_tasks = sum(t.status.is_open for t in view.tasks.values())
    detail = (
        f"{len(record.context.key_decisions)} key decision(s), "
        f"{len(record.state.completed_steps)} completed step(s), "
        f"{open_tasks} open and {len(view.tasks) - open_tasks} closed task(s)"
    )
    if diff.task_changes:
        detail += "; task changes since the save: " + ", ".join(
            describe_task_change(t) for t in diff.task_changes
        )
    if repairs:
        detail += f"; {repairs} interrupted tool call(s) recorded as failed"
    if loaded.full_replay and loaded.journal.events:
        detail += f"; the journal says: {loaded.journal.describe()}"
    commits = observation.commits_since
    detail += f"; git history says {len(commits)} commit(s) since the save"
    if commits:
        detail += ": " + ", ".join(commits[-5:])
    return detail


def _critical_info(view: SessionView) -> str:
    state = view.project_state_now()
    return (
        f"phase {state.current_phase or 'not set'}, health {state.project_health}, "
        f"{len(state.critical_issues)} critical issue(s), branch "
        f"{view.code_context.working_branch or 'unknown'}"
    )


def _urgent(view: SessionView) -> str:
    record = view.record
    items = [f"blocker: {b}" for b in record.state.blockers]
    if record.context.current_task:
        items.append(f"current task {record.context.current_task}")
    items.extend(
        f"open task {t.id}"
        for t in view.tasks.values()
        if t.status.is_open and t.id != record.context.current_task
    )
    return "; ".join(items[:10]) if items else "no open task and no blocker"


def _nothing_recovered(
    saved: SavedState, observation: ProjectObservation, settings: RecoverySettings
) -> RecoveryResult:
    record = saved.record
    reason = "no valid recovery point, no readable journal event and no emergency backup"
    warnings = [f"nothing of {record.id} could be recovered: {reason}"]
    warnings.extend(
        assess_integrity(
            None, saved.journal_damage, saved.point_damage, saved.emergency_damage
        ).problems()
    )
    warnings.extend(index_problems(saved.index_damage))
    diff = diff_state(observation, None)
    registry = (
        f"The registry entry alone says: task {record.context.current_task or 'none'}, "
        f"phase {record.context.current_phase or 'not set'}, step "
        f"{record.state.current_step or 'none'}, last active {format_time(record.last_activity)}."
    )
    missing = f"not possible: {reason}"
    return RecoveryResult(
        status="failed",
        session_id=record.id,
        mode="emergency",
        decision="new-session",
        confidence=no_confidence(f"nothing recovered: {reason}", settings),
        context_summary=f"Nothing of {record.id} could be recovered. {registry}",
        next_steps=list(record.state.next_steps),
        warnings=warnings,
        state_diff=diff,
        code_context=code_summary(observation.code),
        validation=[],
        steps=restoration_steps(
            [
                f"{record.id} found in the registry",
                missing,
                describe_diff(diff),
                missing,
                "start a new session",
            ]
        ),
        prompt="",
        continuation_id=_continuation_id(record),
        protocol=protocol_report(
            "emergency",
            {
                s: missing
                for s in (
                    "load-critical-project-info",
                    "identify-urgent-tasks",
                    "establish-basic-context",
                )
            },
        ),
        reference_time=reference_time(record),
    )
