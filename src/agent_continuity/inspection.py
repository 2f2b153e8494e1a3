"""Read-only views of the store for people: session details and verification."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent_continuity import lifecycle
from agent_continuity.captured import ai_agent_state, conversation_context, pending_operations
from agent_continuity.errors import CorruptRecord
from agent_continuity.model import BuildResult, CodeContext
from agent_continuity.recovery.result import code_summary
from agent_continuity.storage import shown_url

if TYPE_CHECKING:
    from agent_continuity.runtime import Runtime


def session_details(rt: Runtime, session_id: str) -> dict[str, Any]:
    """A session as ``continuity show`` reports it.

    The state comes from the journal (newest valid recovery point plus the
    events after it), not from the registry, so it is current even when the
    registry lags. ``codeContext`` is the newest point's, with the latest
    build run known for the project.
    """
    record = lifecycle.get(rt, session_id)
    damage = []
    try:
        loaded = lifecycle.load(rt, record.id)
    except CorruptRecord as exc:
        return {
            "session": record.to_wire(),
            "damage": [{"location": exc.location, "kind": "unreadable", "detail": str(exc)}],
        }
    view = loaded.view
    damage = [d.to_wire() for d in (*loaded.journal_damage, *loaded.point_damage)]
    try:
        snapshot = rt.store.load_context_snapshot(record.id)
    except CorruptRecord as exc:
        snapshot = None
        damage.append({"location": exc.location, "kind": "checksum", "detail": str(exc)})
    return {
        "session": view.record.to_wire(),
        "tasks": [t.to_wire() for t in view.tasks.values()],
        "pendingOperations": pending_operations(view),
        "userPreferences": dict(view.user_preferences),
        "conversationContext": conversation_context(view).to_wire(),
        "aiAgentState": ai_agent_state(view).to_wire(),
        "contextSnapshot": snapshot.to_wire() if snapshot is not None else None,
        "lastAction": view.last_action,
        "messageCount": view.message_count,
        "recentMessages": list(view.recent_messages),
        "recoveryPoints": [p.to_wire() for p in rt.store.list_points(record.id)],
        "codeContext": code_summary(view.code_context, _latest_build(rt)).to_wire(),
        "damage": damage,
    }


def _latest_build(rt: Runtime) -> CodeContext | None:
    """The project's latest finished build run, which may be newer than the session's last point.

    Read from the build state file directly: ``show`` does not observe the project.
    """
    command = rt.config.build_command
    if not command:
        return None
    from agent_continuity.capture.build import default_state_file, read_result

    run = read_result(default_state_file(rt.project_root), command)
    if run is None:
        return None
    return CodeContext(build=BuildResult.model_validate(run.to_wire()))


def verify_store(rt: Runtime, *, repair: bool) -> dict[str, Any]:
    """Run the store's verification (and repair); a JSON-ready report.

    ``repairedAll`` says whether a second check after the repair found the
    store clean.
    """
    report = rt.store.verify(repair=repair)
    if repair:
        from agent_continuity.search import rebuild_index

        # The search index is derived from the journals the repair may have changed.
        rebuilt = rebuild_index(rt.store, only_if_present=True)
        if rebuilt is not None:
            report.repaired.append(f"search index rebuilt from the journals ({rebuilt} events)")
    after = rt.store.verify(repair=False) if repair else report
    return {
        "ok": report.ok,
        "store": shown_url(rt.store),
        "checked": report.checked,
        "damage": [d.to_wire() for d in report.damage],
        "repaired": report.repaired,
        "quarantined": report.quarantined,
        "repairedAll": after.ok,
    }
