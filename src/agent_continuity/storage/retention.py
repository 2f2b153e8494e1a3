"""Which recovery points retention may delete.

The retention of recovery points, decided here for every store:

=================== ==========================================================
trigger             points kept
=================== ==========================================================
``auto``            the newest ``backupCount`` (default 5), as the specification
                    asks of automatic backups
any other kind      the newest :data:`KEEP_PER_TRIGGER` (10) of that kind:
                    ``task-completion``, ``major-decision``,
                    ``file-modification``, ``error-occurrence``,
                    ``user-request``, ``interruption``, ``end``, each counted
                    apart
=================== ==========================================================

and never the newest *valid* point, whatever its kind.

Why a bound on triggered points too: an agent that checkpoints every step
(LangGraph's saver, a ``user-request`` point per turn) would otherwise make
storage grow with the number of saves, not with what was said. Nothing is
lost by pruning one: a point is the journal's state at its ``seq`` (which the
journal still holds, and replaying it gives back exactly) plus the project's
code context observed then. What an old point alone held is that one past
observation of the project; the newest ten of each kind keep the recent
milestones (the last task completions, the last decisions, the last
interruptions) apart from each other, so a flood of one kind never pushes out
the few of another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from agent_continuity.model import RecoveryPointInfo

#: How many points of each trigger kind other than ``auto`` are kept.
KEEP_PER_TRIGGER = 10


def prunable(
    points: Sequence[RecoveryPointInfo],
    keep_automatic: int,
    is_valid: Callable[[RecoveryPointInfo], bool],
    keep_per_trigger: int = KEEP_PER_TRIGGER,
) -> list[RecoveryPointInfo]:
    """The points beyond what retention keeps of their kind, minus the newest valid point.

    Args:
        points: A session's points, oldest first.
        keep_automatic: How many automatic points to keep (``backupCount``).
        is_valid: Loads a point and says whether it passes its checksum. Called
            newest first, only until one valid point is found.
        keep_per_trigger: How many points of each other trigger kind to keep.

    Returns:
        The points to delete, oldest first.
    """
    by_kind: dict[str, list[RecoveryPointInfo]] = {}
    for info in points:
        by_kind.setdefault(info.trigger.value, []).append(info)
    excess: set[str] = set()
    for kind_points in by_kind.values():
        keep = keep_automatic if kind_points[0].automatic else keep_per_trigger
        excess.update(p.id for p in kind_points[: max(0, len(kind_points) - max(keep, 0))])
    if not excess:
        return []
    newest_valid: str | None = None
    for info in reversed(points):
        if is_valid(info):
            newest_valid = info.id
            break
    return [p for p in points if p.id in excess and p.id != newest_valid]
