"""Filling the recovery prompt's template: the part of :mod:`.recovery.prompt` without the model.

The SessionStart hook renders a prepared recovery prompt (see
:mod:`agent_continuity.hooks.prepared`) without importing pydantic, so the
template, the list values and the trimming live here;
:mod:`agent_continuity.recovery.prompt` gathers what fills them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

#: Longest "last action" a session view keeps (:func:`clip`'s default).
ACTION_CHARS = 160


def clip(text: str, limit: int = ACTION_CHARS) -> str:
    """``text`` with its runs of white space made one space, cut to ``limit`` with an ellipsis."""
    text = str(text)
    if len(text) > 4 * limit:
        # A long message (an assistant's answer may be 100 KB) is only read as far
        # as the clip needs: the words of a prefix, less the last one (which the
        # cut may have split), are the start of the whole text's words; once they
        # reach the limit the result is the same as splitting everything.
        words = text[: 4 * limit].split()
        start = " ".join(words[:-1])
        if len(start) >= limit:
            return start[: limit - 1] + "…"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
