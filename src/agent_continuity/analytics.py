"""Session analytics (``continuity analytics``): what happened to a store's sessions.

Pure: :func:`compute` takes the registry's records, the recovery log's entries,
a way to find a session's recovery points and the current time, and reads
nothing itself, so every front end (the CLI, later the web dashboard) shows
the same figures and tests can feed it any history.

Where each figure comes from:

* sessions by status, and started per period: the registry (``created``);
  completed per period: a completed session's ``lastActivity`` (its end);
* interruptions, by cause and per period: the recovery log's ``interruption``
  lines (one per interruption, so a session interrupted twice counts twice),
  plus an interrupted session the log does not mention (an older store);
* recoveries by decision and outcome, and the confidence distribution: the
  log's ``recovery`` lines;
* time to recovery: from the death a recovery acted on (the interruption's
  ``lastAlive``) to the recovery that restored the session or started anew;
* work at risk: the events a session had journalled after its newest recovery
  point when it died, the ones recovery had to replay from the journal alone.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from agent_continuity.errors import InvalidInput
from agent_continuity.model import SessionRecord, SessionStatus, Trigger

#: Ranges longer than this are counted by ISO week instead of by day.
DAILY_UP_TO = timedelta(days=62)
#: Confidence buckets: [0.0, 0.1), [0.1, 0.2), ... [0.9, 1.0].
CONFIDENCE_BUCKETS = 10
#: Recovery outcomes that acted on the interrupted session (it was dealt with).
ACTED = ("restored", "new-session")
#: The triggers of the point a session's end or death itself makes: not a point
#: the session had *before* it died.
FINAL_TRIGGERS = frozenset({Trigger.INTERRUPTION, Trigger.END})
#: Interruption causes as the library writes them, by the category they count under.
_CAUSE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^exception\b"), "exception"),
    (re.compile(r"^signal\b"), "signal"),
    (re.compile(r"^exit status\b"), "command-exit"),
    (re.compile(r"^lease-expired\b"), "lease-expired"),
    (re.compile(r"^heartbeat-lost\b"), "heartbeat-lost"),
    (re.compile(r"^exit-without-end\b"), "exit-without-end"),
    (re.compile(r"compaction", re.IGNORECASE), "compaction"),
)
_RELATIVE = re.compile(r"^(\d+)([dw])$")

#: The newest recovery point seq of a session at or before a seq (0: none), final points excluded.
PointSeq = Callable[[str, int], int]


def cause_category(cause: str) -> str:
    """The category an interruption cause counts under.

    ``"exception: KeyError: 'x'"`` is ``exception``, ``"signal: SIGTERM"`` is
    ``signal``, ``"exit status 3"`` (a ``continuity run`` command that failed)
    is ``command-exit``; a cause a person typed (``continuity interrupt
    --cause "laptop closed"``) is ``other``.
    """
    text = cause.strip()
    for pattern, category in _CAUSE_PATTERNS:
        if pattern.search(text):
            return category
    return "other"


def parse_since(text: str, now: datetime) -> datetime:
    """The start of the range ``--since`` names.

    Args:
        text: An ISO date (``2026-12-01``, midnight UTC), an ISO time
            (``2026-12-01T08:00:00Z``), or a span back from now (``7d``, ``4w``).
        now: The current time.

    Raises:
        InvalidInput: If the text is none of those.
    """
    value = text.strip()
    relative = _RELATIVE.match(value)
    if relative:
        count, unit = int(relative.group(1)), relative.group(2)
        return now - timedelta(days=count * (7 if unit == "w" else 1))
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"--since {text!r} is not a date; give 2026-12-01, 2026-12-01T08:00:00Z, 7d or 4w"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile of sorted ``values`` (None when empty)."""
    if not values:
        return None
    rank = max(1, math.ceil(fraction * len(values)))
    return values[rank - 1]


def _median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    middle = len(values) // 2
    if len(values) % 2:
        return values[middle]
    return (values[middle - 1] + values[middle]) / 2


@dataclass(slots=True)
class Period:
    """The sessions started, completed and interrupted in one day or week."""

    start: date
    started: int = 0
    completed: int = 0
    interrupted: int = 0

    def to_wire(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "period": self.start.isoformat(),
            "started": self.started,
            "completed": self.completed,
            "interrupted": self.interrupted,
        }


@dataclass(slots=True)
class Analytics:
    """The figures ``continuity analytics`` shows (see :func:`compute`).

    Attributes:
        generated: When they were computed.
        since: The start of the range (None: all time).
        user: Whose sessions (None: every user's).
        granularity: ``"day"`` or ``"week"``: the length of each period.
        sessions: Count by status, with ``total``.
        periods: Started, completed and interrupted per period, oldest first.
        interruptions_by_cause: Interruptions per category (:func:`cause_category`).
        interruption_causes: The most frequent causes as written, with counts.
        recoveries_by_decision: Recoveries per decision (``auto-resume``...).
        recoveries_by_outcome: Recoveries per outcome (``restored``...).
        confidence: Recoveries per confidence bucket (``"0.8-0.9"``).
        confidence_scores: Every recovery's confidence score, in log order.
        recovery_seconds: Seconds from each death to the recovery that acted on it, sorted.
        work_at_risk: Events after the newest recovery point at each death.
    """

    generated: datetime
    since: datetime | None
    user: str | None
    granularity: str
    sessions: dict[str, int]
    periods: list[Period]
    interruptions_by_cause: dict[str, int]
    interruption_causes: dict[str, int]
    recoveries_by_decision: dict[str, int]
    recoveries_by_outcome: dict[str, int]
    confidence: dict[str, int]
    confidence_scores: list[float] = field(default_factory=list)
    recovery_seconds: list[float] = field(default_factory=list)
    work_at_risk: list[int] = field(default_factory=list)

    @property
    def interruptions(self) -> int:
        """How many interruptions in the range."""
        return sum(self.interruptions_by_cause.values())

    @property
    def recoveries(self) -> int:
        """How many recoveries in the range."""
        return sum(self.recoveries_by_decision.values())

    def write_chart(self, path: str | os.PathLike[str]) -> Path:
        """Draw these figures into ``path``: ``.svg`` (no dependency) or ``.png`` (matplotlib).

        Raises:
            InvalidInput: If the file ends in neither.
            ChartUnavailable: For a PNG when matplotlib is not installed
                (``pip install 'agent-continuity[charts]'``).
        """
        from agent_continuity.analytics_chart import write_chart

        return write_chart(self, path)

    def to_wire(self) -> dict[str, Any]:
        """The ``analytics --json`` object (DESIGN.md §6, with more keys)."""
        ttr = self.recovery_seconds
        scores = sorted(self.confidence_scores)
        risk = sorted(self.work_at_risk)
        return {
            "generated": _iso(self.generated),
            "since": _iso(self.since) if self.since else None,
            "user": self.user,
            "granularity": self.granularity,
            "sessions": dict(self.sessions),
            "timeline": [p.to_wire() for p in self.periods],
            "interruptions": self.interruptions,
            "interruptionsByCause": dict(self.interruptions_by_cause),
            "interruptionCauses": dict(self.interruption_causes),
            "recoveries": {
                "total": self.recoveries,
                "byDecision": dict(self.recoveries_by_decision),
                "byOutcome": dict(self.recoveries_by_outcome),
            },
            "confidence": {
                "buckets": dict(self.confidence),
                "median": _median(scores),
                "mean": round(sum(scores) / len(scores), 4) if scores else None,
            },
            "timeToRecovery": {
                "count": len(ttr),
                "medianSeconds": _median(ttr),
                "p90Seconds": _percentile(ttr, 0.9),
                "maxSeconds": ttr[-1] if ttr else None,
            },
            "workAtRisk": {
                "interruptions": len(risk),
                "totalEvents": sum(risk),
                "medianEvents": _median(risk),
                "p90Events": _percentile(risk, 0.9),
                "maxEvents": risk[-1] if risk else None,
            },
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bucket_label(index: int) -> str:
    low = index / CONFIDENCE_BUCKETS
    return f"{low:.1f}-{low + 1 / CONFIDENCE_BUCKETS:.1f}"


def _bucket(score: float) -> str:
    index = min(CONFIDENCE_BUCKETS - 1, max(0, int(score * CONFIDENCE_BUCKETS)))
    return _bucket_label(index)


@dataclass(slots=True)
class _Death:
    session_id: str
    cause: str
    at: datetime  # when the owner was last alive
    last_seq: int | None


def _deaths(records: Sequence[SessionRecord], log: Sequence[Mapping[str, Any]]) -> list[_Death]:
    """Every interruption: the log's lines, and interrupted sessions the log misses."""
    deaths: list[_Death] = []
    logged: set[str] = set()
    for entry in log:
        if entry.get("event") != "interruption":
            continue
        session_id = str(entry.get("sessionId", ""))
        at = _time(entry.get("lastAlive")) or _time(entry.get("at"))
        if not session_id or at is None:
            continue
        seq = entry.get("lastSeq")
        deaths.append(
            _Death(session_id, str(entry.get("cause", "")), at, seq if type(seq) is int else None)
        )
        logged.add(session_id)
    for record in records:
        if record.interruption is not None and record.id not in logged:
            if record.status is SessionStatus.INTERRUPTED:
                deaths.append(
                    _Death(record.id, record.interruption.cause, record.interruption.at, None)
                )
    deaths.sort(key=lambda d: d.at)
    return deaths


def _period_start(moment: datetime, granularity: str) -> date:
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday()) if granularity == "week" else day


def compute(
    records: Iterable[SessionRecord],
    log: Iterable[Mapping[str, Any]],
    now: datetime,
    *,
    since: datetime | None = None,
    user: str | None = None,
    point_seq: PointSeq | None = None,
) -> Analytics:
    """Analytics over a store's sessions and recovery log.

    Args:
        records: Every session's registry entry.
        log: The recovery log's entries, oldest first.
        now: The current time (the end of the range).
        since: Count only what happened from then on (sessions created, deaths,
            recoveries); None for everything.
        user: Only this user's sessions and log lines; None for every user's.
        point_seq: The newest recovery point of a session at or before a journal
            seq (final points excluded), 0 for none; None skips work at risk.

    Returns:
        The figures.
    """
    by_id: dict[str, SessionRecord] = {}
    for record in records:
        if user is None or record.user_id == user:
            by_id[record.id] = record
    entries = [e for e in log if user is None or _entry_user(e, by_id) == user]

    def in_range(moment: datetime | None) -> bool:
        return moment is not None and (since is None or moment >= since)

    chosen = [r for r in by_id.values() if in_range(r.created)]
    deaths = [d for d in _deaths(list(by_id.values()), entries) if in_range(d.at)]

    first = since or min((r.created for r in chosen), default=now)
    granularity = "week" if now - first > DAILY_UP_TO else "day"
    periods: dict[date, Period] = {}

    def period(moment: datetime) -> Period:
        start = _period_start(moment, granularity)
        found = periods.get(start)
        if found is None:
            found = periods[start] = Period(start)
        return found

    status = Counter(r.status.value for r in chosen)
    for record in chosen:
        period(record.created).started += 1
    for record in by_id.values():  # one created before the range may end inside it
        if record.status is SessionStatus.COMPLETED and in_range(record.last_activity):
            period(record.last_activity).completed += 1
    for death in deaths:
        period(death.at).interrupted += 1

    decisions: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    buckets: Counter[str] = Counter({_bucket_label(i): 0 for i in range(CONFIDENCE_BUCKETS)})
    scores: list[float] = []
    waits: list[float] = []
    deaths_of: dict[str, list[_Death]] = {}
    for death in deaths:  # oldest first, so each list is too
        deaths_of.setdefault(death.session_id, []).append(death)
    for entry in entries:
        at = _time(entry.get("at"))
        if entry.get("event") != "recovery" or not in_range(at):
            continue
        decisions[str(entry.get("decision", "unknown"))] += 1
        outcome = str(entry.get("outcome", "unknown"))
        outcomes[outcome] += 1
        score = entry.get("score")
        if isinstance(score, int | float) and not isinstance(score, bool):
            scores.append(float(score))
            buckets[_bucket(float(score))] += 1
        died = _death_before(deaths_of.get(str(entry.get("sessionId", "")), []), at)
        if outcome in ACTED and died is not None and at is not None:
            waits.append(max(0.0, (at - died.at).total_seconds()))

    risk: list[int] = []
    if point_seq is not None:
        for death in deaths:
            last = death.last_seq
            if last is None:
                dead = by_id.get(death.session_id)
                last = dead.last_seq if dead is not None else None
            if last is None:
                continue
            if not death.cause.endswith("(journal missing)"):
                # The journal's last event is the death's own ``interrupted``
                # record, written with the final point: not work the agent did.
                last -= 1
            risk.append(max(0, last - point_seq(death.session_id, last)))

    causes = Counter(cause_category(d.cause) for d in deaths)
    written = Counter(d.cause for d in deaths)
    return Analytics(
        generated=now,
        since=since,
        user=user,
        granularity=granularity,
        sessions={
            "total": len(chosen),
            **{s.value: status.get(s.value, 0) for s in SessionStatus},
        },
        periods=[periods[k] for k in sorted(periods)],
        interruptions_by_cause=dict(causes.most_common()),
        interruption_causes=dict(written.most_common(10)),
        recoveries_by_decision=dict(decisions.most_common()),
        recoveries_by_outcome=dict(outcomes.most_common()),
        confidence=dict(buckets),
        confidence_scores=scores,
        recovery_seconds=sorted(waits),
        work_at_risk=risk,
    )


def _entry_user(entry: Mapping[str, Any], by_id: Mapping[str, SessionRecord]) -> str | None:
    """Whose a log line is: its ``userId``, else its session's user."""
    written = entry.get("userId")
    if isinstance(written, str) and written:
        return written
    record = by_id.get(str(entry.get("sessionId", "")))
    return record.user_id if record is not None else None


def _death_before(deaths: Sequence[_Death], at: datetime | None) -> _Death | None:
    """The latest of one session's deaths (oldest first) at or before ``at``."""
    found: _Death | None = None
    for death in deaths:
        if at is not None and death.at > at:
            break
        found = death
    return found
