"""Text for people, made from the commands' JSON replies (never the other way round)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def started(session: Mapping[str, Any]) -> str:
    """What `start` prints, from the session's JSON."""
    current = session["context"].get("currentTask")
    task = f" on {current}" if current else ""
    return f"started {session['id']}{task} (user {session.get('userId') or '-'})"


def session_table(records: list[dict[str, Any]], damaged: Mapping[str, str] | None = None) -> str:
    """One line per session; a damaged one is marked, and what is wrong follows the table."""
    if not records:
        return "no sessions; `continuity start` begins one"
    damaged = damaged or {}
    rows = [("ID", "STATUS", "USER", "TASK", "LAST ACTIVITY", "CAUSE")]
    for r in records:
        rows.append(
            (
                r["id"],
                r["status"] + (" DAMAGED" if r["id"] in damaged else ""),
                r.get("userId") or "-",
                r["context"].get("currentTask") or "-",
                r["lastActivity"],
                (r.get("interruption") or {}).get("cause", ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    ]
    shown = {r["id"] for r in records}
    lines += [f"DAMAGED {sid}: {detail}" for sid, detail in damaged.items() if sid in shown]
    return "\n".join(lines)


def _items(title: str, items: list[Any]) -> list[str]:
    if not items:
        return []
    return [f"{title}:"] + [f"  - {item}" for item in items]


def _build_line(code: dict[str, Any]) -> str:
    run = code.get("build")
    if not run:
        return str(code["buildStatus"])
    how = "killed at the timeout" if run["status"] == "timeout" else f"exit {run['exitCode']}"
    return f"{run['status']}, {how}: `{run['command']}`, finished {run['finished']}"


def session_details(details: dict[str, Any]) -> str:
    """What `show` prints."""
    s = details["session"]
    ctx, state = s["context"], s["state"]
    lines = [
        f"{s['id']}  {s['status']}  ({s['type']}, user {s.get('userId') or '-'})",
        f"created {s['created']}, last activity {s['lastActivity']}",
    ]
    if s.get("interruption"):
        lines.append(f"interrupted at {s['interruption']['at']}: {s['interruption']['cause']}")
    lines += [
        f"task: {ctx.get('currentTask') or '-'}   phase: {ctx.get('currentPhase') or '-'}   "
        f"progress: {state['progress']}",
        f"current step: {state.get('currentStep') or '-'}",
    ]
    agent = s.get("agent") or {}
    known = details.get("aiAgentState") or {}
    about = [agent.get("type") or "-"]
    if known.get("specialization"):
        about.append(f"specialised in {known['specialization']}")
    if agent.get("capabilities"):
        about.append("can do " + ", ".join(agent["capabilities"]))
    if known.get("knowledgeLevel"):
        about.append(f"knowledge level {known['knowledgeLevel']}")
    lines.append("agent: " + "; ".join(about))
    focus = (details.get("conversationContext") or {}).get("technicalFocus")
    if focus:
        lines.append(f"technical focus: {focus}")
    if details.get("lastAction"):
        lines.append(f"last action: {details['lastAction']}")
    lines += _items("next steps", state["nextSteps"])
    lines += _items("completed steps", state["completedSteps"])
    lines += _items("blockers", state["blockers"])
    lines += _items("decisions", ctx["keyDecisions"])
    lines += _items("active files", ctx["activeFiles"])
    lines += _items(
        "pending operations", [op["description"] for op in details.get("pendingOperations", [])]
    )
    preferences = details.get("userPreferences") or {}
    lines += _items("user preferences", [f"{k}: {preferences[k]}" for k in sorted(preferences)])
    points = details.get("recoveryPoints", [])
    if points:
        lines.append(
            f"recovery points: {len(points)}, newest {points[-1]['id']} "
            f"({points[-1]['trigger']}, seq {points[-1]['seq']})"
        )
    lines.append(f"messages: {details.get('messageCount', 0)}")
    if details.get("codeContext"):
        lines.append(f"build: {_build_line(details['codeContext'])}")
    snapshot = details.get("contextSnapshot")
    if snapshot:
        lines.append(f"context snapshot: {snapshot['timestamp']} (seq {snapshot['seq']})")
    lines += _items("DAMAGE", [f"{d['location']}: {d['detail']}" for d in details["damage"]])
    return "\n".join(lines)


def verify_report(report: dict[str, Any]) -> str:
    """What `verify` prints."""
    lines = [f"checked {report['checked']} records in {report['store']}"]
    if report["damage"]:
        lines.append(f"{len(report['damage'])} damaged:")
        lines += [f"  {d['location']}: {d['detail']}" for d in report["damage"]]
    else:
        lines.append("no damage found")
    lines += [f"repaired: {item}" for item in report["repaired"]]
    lines += [f"quarantined: {item}" for item in report["quarantined"]]
    if report.get("hookErrors"):
        errors = report["hookErrors"]
        lines.append(f"{errors['count']} coding-agent hook errors; newest:")
        lines += [f"  {e.get('at', '?')} {e.get('error')}" for e in errors["newest"]]
    if report["damage"] and not report["repaired"]:
        lines.append(
            "run `continuity verify --repair` to rebuild the registry and quarantine "
            "damaged records (nothing is deleted)"
        )
    return "\n".join(lines)
