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

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agent_continuity.captured import (
    describe_agent,
    describe_pending,
    describe_preferences,
    technical_focus,
)
from agent_continuity.replay import SessionView

from .prediction import PredictedContext
from .result import StateDiff
from .settings import RecoverySettings
from .state_diff import describe_task_change

DEFAULT_TEMPLATE = """\
# Session Recovery Prompt Template

You are resuming work from SESSION-{SESSION-ID}.

## Previous Context:
- **Task**: {CURRENT-TASK}
- **Progress**: {PROGRESS-PERCENTAGE}
- **Current Step**: {CURRENT-STEP}
- **Last Action**: {LAST-ACTION}
- **Next Steps**: {NEXT-STEPS}

## Project State:
- **Phase**: {CURRENT-PHASE}
- **Build**: {BUILD-STATUS}
- **Recent Changes**: {RECENT-CHANGES}
- **Active Issues**: {ACTIVE-ISSUES}

## Key Decisions:
{KEY-DECISIONS}

## Predicted Context:
{PREDICTED-CONTEXT}

## Agent State:
- **Agent**: {AGENT}
- **Technical Focus**: {TECHNICAL-FOCUS}
- **Pending Operations**: {PENDING-OPERATIONS}
- **User Preferences**: {USER-PREFERENCES}

## Conversation Summary:
{CONVERSATION-SUMMARY}

## Instructions:
1. Acknowledge session recovery
2. Confirm current context understanding
3. Identify any changes since last session
4. Propose next actions
5. Ask for confirmation before proceeding

Continue from where we left off.
"""

PLACEHOLDERS = (
    "SESSION-ID",
    "CURRENT-TASK",
    "PROGRESS-PERCENTAGE",
    "CURRENT-STEP",
    "LAST-ACTION",
    "NEXT-STEPS",
    "CURRENT-PHASE",
    "RECENT-CHANGES",
    "ACTIVE-ISSUES",
    "CONVERSATION-SUMMARY",
    "KEY-DECISIONS",
    "AGENT",
    "TECHNICAL-FOCUS",
    "PENDING-OPERATIONS",
    "USER-PREFERENCES",
    "CONTINUATION-ID",
    "RECOVERY-MODE",
    "BUILD-STATUS",
    "PREDICTED-CONTEXT",
)

_PLACEHOLDER_RE = re.compile(r"\{([A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*)\}")
# The same, with the blanks before it: an inline list drops them rather than
# leaving trailing whitespace at the end of the line it breaks.
_FILL_RE = re.compile(r"(?P<blank>[ \t]*)\{(?P<name>[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*)\}")
# The specification writes "SESSION-{SESSION-ID}" while ids already start with
# "SESSION-"; filling it naively would print "SESSION-SESSION-240124-001".
_PREFIXED_ID_RE = re.compile(r"SESSION-\{SESSION-ID\}")
_MIN_CLIP = 60
#: The prompt's predicted-context section shows at most this many, the best.
PROMPT_PREDICTIONS = 8
_ELLIPSIS = "…"


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: max(1, limit - 1)] + _ELLIPSIS


@dataclass
class _Part:
    """One trimmable run of list items inside a placeholder's value.

    ``items`` is oldest first. Items are dropped from the front (the oldest)
    unless ``drop_from_end`` says the front is the most important (next steps:
    the first is the one to do now).
    """

    items: list[str]
    what: str
    protected: bool = False
    drop_from_end: bool = False
    dropped: int = 0

    def rendered_items(self) -> list[str]:
        if not self.dropped:
            return list(self.items)
        which = "more" if self.drop_from_end else "earlier"
        marker = f"({self.dropped} {which} {self.what} omitted)"
        return [*self.items, marker] if self.drop_from_end else [marker, *self.items]

    def cost(self) -> int:
        return sum(len(item) + 6 for item in self.items)

    def drop(self, chars: int) -> None:
        """Drop items worth at least ``chars`` characters, keeping the most important one."""
        freed = 0
        while len(self.items) > 1 and (freed < chars or freed == 0):
            item = self.items.pop() if self.drop_from_end else self.items.pop(0)
            freed += len(item) + 6
            self.dropped += 1


@dataclass
class _ListValue:
    parts: list[_Part]
    numbered: bool = False
    empty: str = "none"

    def render(self, inline: bool) -> str:
        items = [item for part in self.parts for item in part.rendered_items()]
        if not items:
            return self.empty
        if self.numbered:
            lines = [f"  {n}. {item}" for n, item in enumerate(items, start=1)]
        else:
            lines = [f"  - {item}" for item in items]
        body = "\n".join(lines)
        # Inline ("**Next Steps**: {NEXT-STEPS}"): start the list on its own line.
        return "\n" + body if inline else body


@dataclass
class PromptContent:
    """Everything the prompt says, before it is fitted into a template.

    Build it with :func:`prompt_content`; adjust it if needed; render it with
    :func:`fill_template`.
    """

    scalars: dict[str, str] = field(default_factory=dict)
    lists: dict[str, _ListValue] = field(default_factory=dict)


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


def _substitute(template: str, content: PromptContent) -> str:
    session_id = content.scalars.get("SESSION-ID", "")
    if session_id.startswith("SESSION-"):
        template = _PREFIXED_ID_RE.sub(lambda _m: "{SESSION-ID}", template)

    def replace(match: re.Match[str]) -> str:
        name, blank = match["name"], match["blank"]
        if name in content.scalars:
            return blank + content.scalars[name]
        if name in content.lists:
            start = match.start()
            inline = start > 0 and template[start - 1] != "\n"
            value = content.lists[name].render(inline)
            return value if value.startswith("\n") else blank + value
        return match[0]

    return _FILL_RE.sub(replace, template)


def fill_template(template: str, content: PromptContent, budget_chars: int) -> str:
    """Fill ``template`` with ``content``, trimming lists until it fits ``budget_chars``.

    The order of sacrifice: the longest unprotected list loses its oldest
    items (down to its newest one), then protected lists (next steps, blockers)
    lose their least urgent items, then single over-long items are shortened,
    and only then, if the template itself is too long, the text is cut.
    """
    # A list the template never shows costs nothing; one shown twice costs double.
    uses = {name: template.count("{" + name + "}") for name in content.lists}
    parts = [
        (part, uses[name])
        for name, value in content.lists.items()
        if uses[name]
        for part in value.parts
    ]

    def render() -> str:
        return _substitute(template, content)

    text = render()
    for pick in (_pick_unprotected, _pick_protected):
        while len(text) > budget_chars:
            chosen = pick(parts)
            if chosen is None:
                break
            part, count, runner_up = chosen
            excess = len(text) - budget_chars
            # Level the longest list down to the next one before touching that
            # one, so no list is emptied while another is still long.
            part.drop(min(excess, max(1, part.cost() * count - runner_up)) // count)
            text = render()
    while len(text) > budget_chars:
        if not _shorten_longest_item(parts, len(text) - budget_chars):
            break
        text = render()
    if len(text) > budget_chars:
        text = text[: max(0, budget_chars - 1)] + _ELLIPSIS
    return text


_Pick = tuple[_Part, int, int]  # the part, how often the template shows it, the runner-up's cost


def _ranked(parts: list[tuple[_Part, int]], keep: Callable[[_Part], bool]) -> _Pick | None:
    ranked = sorted(
        ((part.cost() * count, part, count) for part, count in parts if keep(part)),
        key=lambda entry: entry[0],
        reverse=True,
    )
    if not ranked:
        return None
    runner_up = ranked[1][0] if len(ranked) > 1 else 0
    return ranked[0][1], ranked[0][2], runner_up


def _pick_unprotected(parts: list[tuple[_Part, int]]) -> _Pick | None:
    return _ranked(parts, lambda p: not p.protected and len(p.items) > 1)


def _pick_protected(parts: list[tuple[_Part, int]]) -> _Pick | None:
    return _ranked(parts, lambda p: len(p.items) > 1)


def _shorten_longest_item(parts: list[tuple[_Part, int]], excess: int) -> bool:
    best: tuple[int, _Part, int] | None = None
    for part, _count in parts:
        for index, item in enumerate(part.items):
            if len(item) > _MIN_CLIP and (best is None or len(item) > best[0]):
                best = (len(item), part, index)
    if best is None:
        return False
    length, part, index = best
    part.items[index] = _clip(part.items[index], max(_MIN_CLIP, length - excess))
    return True


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
