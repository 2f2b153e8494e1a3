"""What the benchmarks feed every system: sizes, and a conversation of realistic text.

The text is generated, not downloaded: sentences of a developer talking to a
coding assistant, drawn from a seeded random generator, so every run and
every system gets the same bytes, each message 200-400 bytes (about 300 on
average) and no two messages alike.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass

_SUBJECTS = [
    "the booking service",
    "the SMS reminder job",
    "our Postgres migration",
    "the retry middleware",
    "the React settings page",
    "the webhook handler",
    "the nightly export",
    "the auth token refresh",
    "the rate limiter",
    "the invoice PDF renderer",
    "the feature flag client",
    "the search indexer",
]
_VERBS = [
    "fails intermittently when",
    "needs a test that covers what happens when",
    "should log a warning when",
    "times out in CI whenever",
    "returns a 500 if",
    "double-sends a message when",
    "could be simplified so that",
    "must stay backwards compatible when",
]
_CONDITIONS = [
    "the queue is empty",
    "two workers pick up the same row",
    "the user changes time zone mid-flow",
    "Twilio answers with a 429",
    "the config file is missing a key",
    "the cache holds a stale entry",
    "a migration is rolled back halfway",
    "the request body is larger than 1 MB",
    "the clock jumps backwards after sleep",
    "the connection pool is exhausted",
]
_FOLLOW_UPS = [
    "I checked the logs around 14:02 and saw the same stack trace three times.",
    "Let's keep the public API unchanged and fix it behind the interface.",
    "The fix in commit 4f2a9c1 only covered the happy path.",
    "Please add the regression test first, then the change.",
    "We agreed last week to prefer idempotent handlers over locks.",
    "The staging database has about 2.3 million rows in that table.",
    "Make sure the error message tells the operator what to do next.",
    "I would rather not add a new dependency for this.",
    "Use the existing backoff helper; it already handles jitter.",
    "The product owner wants this in the 6.4 release.",
]
_ASSISTANT_OPENERS = [
    "I looked at",
    "I traced the problem in",
    "Here is what I found in",
    "I changed",
    "I reproduced the issue in",
    "I refactored",
]
_ASSISTANT_DETAILS = [
    "The root cause is a missing check before the write, so a retry repeats it.",
    "I added a unique constraint and made the handler return early on conflict.",
    "The test now simulates the failure with a fake clock instead of sleeping.",
    "Both call sites go through one function, which keeps the behaviour consistent.",
    "The change is 14 lines plus a test; nothing outside the module moves.",
    "I left a comment explaining why the order of the two writes matters.",
    "The timeout is configurable now and defaults to the old value of 30 seconds.",
    "Next I will run the full suite and then update the changelog entry.",
    "Two older tests relied on the bug; I rewrote them to assert the intended result.",
    "The migration is reversible and was checked against a copy of staging.",
]


def _sized(rng: random.Random, opener: str, pool: list[str], low: int, high: int) -> str:
    target = rng.randint(low, high)
    text = opener
    while len(text.encode()) < target:
        text += " " + rng.choice(pool)
    encoded = text.encode()[:high]
    return encoded.decode("utf-8", errors="ignore").rstrip()


def conversation(turns: int, seed: int = 6) -> Iterator[tuple[str, str]]:
    """``turns`` pairs of (user message, assistant message), deterministic for ``seed``."""
    rng = random.Random(seed)
    for number in range(1, turns + 1):
        subject = rng.choice(_SUBJECTS)
        user_opener = f"Turn {number}: {subject} {rng.choice(_VERBS)} {rng.choice(_CONDITIONS)}."
        assistant_opener = f"{rng.choice(_ASSISTANT_OPENERS)} {subject} (turn {number})."
        yield (
            _sized(rng, user_opener, _FOLLOW_UPS, 200, 400),
            _sized(rng, assistant_opener, _ASSISTANT_DETAILS, 200, 400),
        )


def transcript_bytes(pairs: list[tuple[str, str]]) -> int:
    """Size of the conversation as raw JSON Lines: one ``{"role", "content"}`` per message."""
    total = 0
    for user, assistant in pairs:
        for role, text in (("user", user), ("assistant", assistant)):
            line = json.dumps({"role": role, "content": text}, ensure_ascii=False) + "\n"
            total += len(line.encode())
    return total


@dataclass(frozen=True)
class Sizes:
    """Every size the benchmarks use; ``QUICK`` shrinks them for the CI smoke run."""

    turns: int = 1_000
    window: int = 100  # turns at the start and at the end whose median is compared
    append_events: int = 2_000  # acknowledged appends timed one by one (scenario 3)
    batched_events: int = 50_000  # appends timed as one batch (scenario 3)
    recovery_messages: int = 10_000
    recovery_points: int = 1_000
    recovery_repeats: int = 7
    repo_files: int = 100_000
    repo_changed: int = 100
    repo_repeats: int = 7
    startup_repeats: int = 15
    growth_turns: int = 300  # turns with a point each (scenario 7)
    growth_files: int = 5_000  # untracked files in the project (scenario 7)
    growth_file_turns: int = 50  # turns with a point each among them (scenario 7)
    thresholds: bool = True  # judge the targets (never in quick mode)


FULL = Sizes()
QUICK = Sizes(
    turns=12,
    window=4,
    append_events=30,
    batched_events=1_000,
    recovery_messages=200,
    recovery_points=20,
    recovery_repeats=2,
    repo_files=300,
    repo_changed=5,
    repo_repeats=2,
    startup_repeats=2,
    growth_turns=12,
    growth_files=200,
    growth_file_turns=5,
    thresholds=False,
)
