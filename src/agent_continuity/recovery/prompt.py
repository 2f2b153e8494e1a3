"""The session recovery prompt: the specification's template, filled and kept within budget.

Placeholders are written ``{NAME}``; the known ones are listed in
:data:`PLACEHOLDERS`. A user template may use any of them, any number of
times; an unknown placeholder (or any other brace) is left exactly as written,
so a template can never make rendering fail.

The prompt is kept under ``prompt_budget_tokens`` (about four characters per
token). When it would be longer, list items are dropped from the longest list
first, oldest items first, and a marker says how many were left out; next
steps and blockers are trimmed only when nothing else is left to trim, and the
current task, progress and phase are never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent_continuity.captured import (
    describe_agent,
    describe_pending,
    describe_preferences,
    technical_focus,
)

# The template and its filling live in prompt_text (no model); re-exported here.
from agent_continuity.prompt_text import DEFAULT_TEMPLATE as DEFAULT_TEMPLATE
from agent_continuity.prompt_text import PLACEHOLDERS as PLACEHOLDERS
from agent_continuity.prompt_text import PromptContent, _clip, _ListValue, _Part, fill_template
from agent_continuity.replay import SessionView

from .prediction import PredictedContext
from .result import StateDiff
from .settings import RecoverySettings
from .state_diff import describe_task_change

#: The prompt's predicted-context section shows at most this many, the best.
PROMPT_PREDICTIONS = 8


def _task_line(view: SessionView) -> str:
    task_id = view.record.context.current_task
    if not task_id:
        return "none set"
    task = view.tasks.get(task_id)
    if task is None:
        return task_id
    title = f" — {task.title}" if task.title else ""
    return f"{task.id}{title} ({task.status.value})"


def _changes(diff: StateDiff | None, limit: int) -> list[_Part]:
    if diff is None:
        return [_Part(["not checked (the project was not observed)"], "changes")]
    if diff.unchanged:
        return [_Part(["none detected since the last save"], "changes")]
    repo: list[str] = []
    if diff.branch_changed:
        repo.append(f"branch changed: {diff.saved_branch} -> {diff.current_branch or 'detached'}")
    if diff.saved_head_reachable is False:
        repo.append("the saved commit is no longer in the history of HEAD")
    repo.extend(f"task {describe_task_change(t)}" for t in diff.task_changes)
    commits = [_clip(f"commit {c}", limit) for c in diff.new_commits]
    files = [
        *(f"modified: {p}" for p in diff.modified_files),
        *(f"added: {p}" for p in diff.added_files),
        *(f"deleted: {p}" for p in diff.deleted_files),
    ]
    return [
        _Part(repo, "repository changes", protected=True),
        _Part(commits, "commits"),
        _Part([_clip(f, limit) for f in files], "changed files", drop_from_end=True),
    ]


def prompt_content(
    view: SessionView,
    settings: RecoverySettings,
    *,
    diff: StateDiff | None = None,
    issues: Sequence[str] = (),
    last_action: str | None = None,
    continuation_id: str | None = None,
    mode: str | None = None,
    build: str | None = None,
    predicted: Sequence[PredictedContext] = (),
) -> PromptContent:
    """Gather what the recovery prompt says about a session.

    Args:
        view: The recovered session.
        settings: Item length and message count limits.
        diff: What changed in the project since the save; None when not observed.
        issues: Extra active issues (recovery warnings, failed checks).
        last_action: Overrides ``view.last_action`` (the engine passes the action
            before its own repairs, which are not something the agent did).
        continuation_id: Fills ``{CONTINUATION-ID}``.
        mode: Fills ``{RECOVERY-MODE}``.
        build: Fills ``{BUILD-STATUS}`` (the latest build run); ``unknown`` without.
        predicted: Fills ``{PREDICTED-CONTEXT}``, best first (the first trimmed last).
    """
    limit = settings.prompt_item_chars
    record = view.record
    state, context = record.state, record.context
    scalars = {
        "SESSION-ID": record.id,
        "CURRENT-TASK": _clip(_task_line(view), limit),
        "PROGRESS-PERCENTAGE": f"{state.progress}%",
        "CURRENT-STEP": _clip(state.current_step or "none", limit),
        "LAST-ACTION": _clip(last_action or view.last_action or "unknown", limit),
        "CURRENT-PHASE": _clip(context.current_phase or "not set", limit),
        "AGENT": _clip(describe_agent(view), limit),
        "TECHNICAL-FOCUS": _clip(technical_focus(view) or "not known", limit),
        "CONTINUATION-ID": continuation_id or "",
        "RECOVERY-MODE": mode or "",
        "BUILD-STATUS": _clip(build or "unknown", limit),
    }
    other_issues = [f"error: {e}" for e in view.recent_errors]
    other_issues.extend(issues)
    if context.conversation_summary:
        conversation = [_Part([_clip(context.conversation_summary, limit * 4)], "summary")]
    else:
        recent = list(view.recent_messages)[-settings.recent_messages_in_prompt :]
        if settings.recent_messages_in_prompt == 0:
            recent = []
        lines = [
            _clip(f"{m.get('role', '?')}: {m.get('text', '')}", limit)
            + (" [cut off]" if m.get("partial") else "")
            for m in recent
        ]
        conversation = [_Part(lines, "messages")]
    lists = {
        "NEXT-STEPS": _ListValue(
            [
                _Part(
                    [_clip(s, limit) for s in state.next_steps],
                    "next steps",
                    protected=True,
                    drop_from_end=True,
                )
            ],
            numbered=True,
        ),
        "RECENT-CHANGES": _ListValue(_changes(diff, limit)),
        "ACTIVE-ISSUES": _ListValue(
            [
                _Part(
                    [_clip(f"BLOCKER: {b}", limit) for b in state.blockers],
                    "blockers",
                    protected=True,
                ),
                _Part([_clip(i, limit) for i in other_issues], "issues"),
            ]
        ),
        "KEY-DECISIONS": _ListValue(
            [_Part([_clip(d, limit) for d in context.key_decisions], "decisions")]
        ),
        "PREDICTED-CONTEXT": _ListValue(
            [
                _Part(
                    [
                        _clip(f"{p.kind} {p.ref} ({p.score:.2f}): {p.reason}", limit)
                        for p in predicted[:PROMPT_PREDICTIONS]
                    ],
                    "predictions",
                    drop_from_end=True,
                )
            ],
            empty="nothing predicted",
        ),
        "CONVERSATION-SUMMARY": _ListValue(conversation, empty="no conversation recorded"),
        "PENDING-OPERATIONS": _ListValue(
            [_Part([_clip(op, limit) for op in describe_pending(view)], "operations", True)]
        ),
        "USER-PREFERENCES": _ListValue(
            [
                _Part(
                    [_clip(p, limit) for p in describe_preferences(view.user_preferences)],
                    "preferences",
                )
            ]
        ),
    }
    return PromptContent(scalars=scalars, lists=lists)


def render_prompt(
    view: SessionView,
    settings: RecoverySettings,
    *,
    diff: StateDiff | None = None,
    issues: Sequence[str] = (),
    last_action: str | None = None,
    continuation_id: str | None = None,
    mode: str | None = None,
    build: str | None = None,
    predicted: Sequence[PredictedContext] = (),
) -> str:
    """The filled session recovery prompt for the next agent.

    Uses ``settings.prompt_template`` when set (the template's text), else the
    specification's template, and keeps the result within
    ``settings.prompt_budget_tokens``.

    Args:
        view: The recovered session.
        settings: Template, budget and limits.
        diff: What changed in the project since the save; None when not observed.
        issues: Extra active issues to list (warnings, failed checks).
        last_action: What the agent did last, if not ``view.last_action``.
        continuation_id: Fills ``{CONTINUATION-ID}``.
        mode: Fills ``{RECOVERY-MODE}``.
        build: Fills ``{BUILD-STATUS}``: the latest build run, described.
        predicted: Fills ``{PREDICTED-CONTEXT}``: the predicted context, best first.

    Returns:
        The prompt text, at most ``settings.prompt_budget_chars`` characters.
    """
    content = prompt_content(
        view,
        settings,
        diff=diff,
        issues=issues,
        last_action=last_action,
        continuation_id=continuation_id,
        mode=mode,
        build=build,
        predicted=predicted,
    )
    template = settings.prompt_template if settings.prompt_template else DEFAULT_TEMPLATE
    return fill_template(template, content, settings.prompt_budget_chars)
