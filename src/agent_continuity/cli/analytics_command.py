"""``continuity analytics``: what happened to the store's sessions, as a table, JSON or a chart.

Only renders: the figures come from :meth:`SessionManager.analytics`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from agent_continuity.cli.options import (
    emit,
    json_option,
    manager,
    store_option,
    user_filter_option,
)
from agent_continuity.errors import StoreNotFound

STATUSES = ("active", "completed", "interrupted", "archived")

if TYPE_CHECKING:
    from agent_continuity import Analytics


def _counts(title: str, counts: dict[str, Any], indent: str = "") -> list[str]:
    shown = {k: v for k, v in counts.items() if v}
    if not shown:
        return [f"{indent}{title}: none"]
    width = max(len(k) for k in shown)
    return [f"{indent}{title}:", *(f"{indent}  {k:<{width}}  {v:>7}" for k, v in shown.items())]


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def render(result: Analytics) -> str:
    """The figures as aligned text for a terminal."""
    data = result.to_wire()
    who = data["user"] or "every user"
    since = data["since"] or "the beginning"
    lines = [f"Sessions of {who} since {since}", ""]
    lines += _counts("sessions", data["sessions"])
    lines.append("")
    if data["timeline"]:
        lines.append(
            f"{data['granularity']:<10}  {'started':>7}  {'completed':>9}  {'interrupted':>11}"
        )
        for row in data["timeline"]:
            lines.append(
                f"{row['period']:<10}  {row['started']:>7}  {row['completed']:>9}  "
                f"{row['interrupted']:>11}"
            )
        lines.append("")
    lines += _counts("interruptions by cause", data["interruptionsByCause"])
    recoveries = data["recoveries"]
    lines += ["", f"recoveries: {recoveries['total']}"]
    lines += _counts("by decision", recoveries["byDecision"], "  ")
    lines += _counts("by outcome", recoveries["byOutcome"], "  ")
    confidence = data["confidence"]
    lines += _counts("confidence", confidence["buckets"])
    ttr = data["timeToRecovery"]
    lines.append(
        f"time to recovery: median {_seconds(ttr['medianSeconds'])}, "
        f"p90 {_seconds(ttr['p90Seconds'])} (over {ttr['count']})"
    )
    risk = data["workAtRisk"]
    lines.append(
        f"work at risk: {risk['totalEvents']} events after the last recovery point "
        f"over {risk['interruptions']} interruptions (median {risk['medianEvents'] or 0}, "
        f"max {risk['maxEvents'] or 0})"
    )
    return "\n".join(lines)


@click.command()
@click.option(
    "--since",
    "since",
    metavar="DATE",
    default=None,
    help="Only what happened from DATE on: 2026-12-01, 2026-12-01T08:00:00Z, 7d or 4w.",
)
@user_filter_option
@click.option(
    "--chart",
    "chart",
    metavar="FILE",
    default=None,
    help="Also draw a chart into FILE.svg, or FILE.png (needs the [charts] extra).",
)
@store_option
@json_option
def analytics(
    since: str | None, user: str | None, chart: str | None, store: str | None, as_json: bool
) -> None:
    """Session analytics: sessions per day or week, interruptions by cause, recoveries.

    Also: recoveries by decision and outcome, their confidence, the time from
    an interruption to its recovery, and the work at risk (events after the
    last recovery point when a session died). Reads only; never creates a store.
    """
    mgr = manager(store, create=False)
    try:
        result = mgr.analytics(since=since, user=user)
    except StoreNotFound as exc:
        # Nothing happened yet is not an error, as for `list`; but say why.
        nothing = {
            "sessions": dict.fromkeys(("total", *STATUSES), 0),
            "interruptionsByCause": {},
            "recoveries": {"total": 0, "byDecision": {}},
            "timeToRecovery": {"medianSeconds": None},
            "noStore": str(exc),
        }
        emit(as_json, nothing, f"no sessions: {exc}")
        return
    if chart:
        written = result.write_chart(chart)
        if not as_json:
            click.echo(f"chart written to {written}", err=True)
    emit(as_json, result.to_wire(), lambda: render(result))


COMMANDS = [analytics]
