"""What each command answers, as one JSON-ready dict: shared by every front end.

The command line prints these objects for ``--json`` and the MCP server returns
them from its tools, so both say the same thing. Each function runs one command
on a :class:`~agent_continuity.SessionManager` and returns its reply; the
replies of ``recover``, ``resume`` and ``emergency`` are their results'
``to_wire()``, so they need nothing here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from agent_continuity.errors import InvalidInput, StoreNotFound

if TYPE_CHECKING:
    from agent_continuity.recovery import RecoveryResult
    from agent_continuity.session import SessionManager

#: Who may say a message.
ROLES = ("user", "assistant", "system", "tool")


def start(
    mgr: SessionManager,
    *,
    session_type: str | None = None,
    task: str | None = None,
    phase: str | None = None,
    recover_from: str | None = None,
    agent_type: str | None = None,
    specialization: str | None = None,
    capabilities: Iterable[str] = (),
    preferences: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Start a command-line session (its lease expires when idle): ``start --json``.

    Args:
        mgr: The manager of the project.
        session_type: The session type (default ``general``, or the recovered session's).
        task: The task the session works on.
        phase: The project phase.
        recover_from: Seed the new session from this one; ``""`` for the user's most
            recent interrupted session; None starts a fresh session.
        agent_type: The kind of agent (default ``development-assistant``).
        specialization: What the agent specialises in.
        capabilities: What the agent can do.
        preferences: The user's preferences for the session.

    Returns:
        ``{"sessionId", "session"}``, plus ``"recoveredFrom"`` and ``"recovery"``
        when seeded from an earlier session.

    Raises:
        InvalidInput: If the agent or preferences are given with ``recover_from``
            (the recovered session's are kept).
    """
    capabilities = list(capabilities)
    if recover_from is not None:
        if agent_type or specialization or capabilities or preferences:
            raise InvalidInput(
                "--agent-type, --specialization, --capability and --preference describe a "
                "new session; with --recover the recovered session's are kept (use `update "
                "--preference` after)"
            )
        result = mgr.start_recovered(recover_from or None, session_type=session_type)
        record = mgr.get(result.new_session_id or "")
        return {
            "sessionId": record.id,
            "session": record.to_wire(),
            "recoveredFrom": record.recovered_from,
            "recovery": result.to_wire(),
        }
    from agent_continuity.model import AgentInfo

    agent = AgentInfo(capabilities=capabilities, specialization=specialization or "")
    if agent_type:
        agent.type = agent_type
    session = mgr.start(
        type=session_type or "general",
        task=task,
        phase=phase,
        agent=agent,
        preferences=dict(preferences or {}),
        owned_by_process=False,
    )
    return {"sessionId": session.record.id, "session": session.record.to_wire()}


def update(mgr: SessionManager, session_id: str | None = None, **changes: Any) -> dict[str, Any]:
    """Record progress as one atomic group: ``update --json``.

    Args:
        mgr: The manager of the project.
        session_id: The session (default: the newest active one).
        **changes: The keyword arguments of :meth:`SessionManager.update`.

    Returns:
        ``{"sessionId", "seqs", "session"}``: the journal sequence numbers written.
    """
    record, events = mgr.update(session_id, **changes)
    return {"sessionId": record.id, "seqs": [e.seq for e in events], "session": record.to_wire()}


def message(
    mgr: SessionManager, role: str, text: str, session_id: str | None = None
) -> dict[str, Any]:
    """Record a message of the conversation: ``message --json``.

    Args:
        mgr: The manager of the project.
        role: ``user``, ``assistant``, ``system`` or ``tool``.
        text: What was said.
        session_id: The session (default: the newest active one).

    Returns:
        ``{"sessionId", "seq"}``.

    Raises:
        InvalidInput: If the role is not one of :data:`ROLES`.
    """
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}")
    session = mgr.attach(session_id)
    return {"sessionId": session.id, "seq": session.add_message(role, text)}


def save(
    mgr: SessionManager, session_id: str | None = None, trigger: str = "user-request"
) -> dict[str, Any]:
    """Make a recovery point now: ``save --json``.

    Args:
        mgr: The manager of the project.
        session_id: The session (default: the newest active one).
        trigger: Why (``user-request``, ``task-completion``, ``auto``...).

    Returns:
        ``{"recoveryPointId"}``.
    """
    return {"recoveryPointId": mgr.save(session_id, trigger)}


def sessions(
    mgr: SessionManager, status: str | None = None, user: str | None = None
) -> tuple[dict[str, Any], str | None]:
    """The sessions, oldest first, dead ones marked interrupted first: ``list --json``.

    Args:
        mgr: The manager of the project (made with ``create_store=False``).
        status: Only sessions with this status.
        user: Only this user's sessions.

    Returns:
        ``{"sessions": [...]}``, plus ``"damaged"`` (id -> what is wrong) if any
        listed session is damaged; and, when there is no store yet, why (to tell
        a person): no store is no sessions, not an error.
    """
    try:
        mgr.detect_interruptions()
    except StoreNotFound as exc:
        return {"sessions": []}, str(exc)
    records = mgr.sessions(status, user)
    shown = {r.id for r in records}
    damaged = {sid: what for sid, what in mgr.damaged_sessions().items() if sid in shown}
    data: dict[str, Any] = {"sessions": [r.to_wire() for r in records]}
    if damaged:
        data["damaged"] = damaged
    return data, None


def summary(result: RecoveryResult) -> dict[str, Any]:
    """What ``summary --json`` prints of an analysis: everything but the prompt."""
    return {key: value for key, value in result.to_wire().items() if key != "prompt"}


def prompt(result: RecoveryResult) -> dict[str, Any]:
    """The recovery prompt of an analysis, with the session it is for.

    Returns:
        ``{"sessionId", "prompt"}``.
    """
    return {"sessionId": result.session_id, "prompt": result.prompt}
