"""Sessions shaped for the journal-mark tests of both stores."""

from __future__ import annotations

from agent_continuity import SessionManager


def session_with_point(mgr: SessionManager, before: int = 30, after: int = 5) -> tuple[str, str]:
    """A closed session: ``before`` messages, a recovery point, ``after`` more messages.

    Returns:
        The session id and the point's id; ``mgr`` is closed.
    """
    session = mgr.start(type="test", auto_save=False)
    for number in range(before):
        session.add_message("user", f"message {number}")
    point = session.checkpoint()
    for number in range(after):
        session.add_message("assistant", f"reply {number}")
    session.end()
    mgr.close()
    return session.id, point
