"""Which recovery points retention may delete."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from agent_continuity.model import RecoveryPointInfo


def prunable(
    points: Sequence[RecoveryPointInfo],
    keep_automatic: int,
    is_valid: Callable[[RecoveryPointInfo], bool],
) -> list[RecoveryPointInfo]:
    """The automatic points beyond the newest ``keep_automatic``, minus the newest valid point.

    Args:
        points: A session's points, oldest first.
        keep_automatic: How many automatic points to keep (``backupCount``).
        is_valid: Loads a point and says whether it passes its checksum. Called
            newest first, only until one valid point is found.
    """
    newest_valid: str | None = None
    for info in reversed(points):
        if is_valid(info):
            newest_valid = info.id
            break
    automatic = [p for p in points if p.automatic]
    excess = automatic[: max(0, len(automatic) - max(keep_automatic, 0))]
    return [p for p in excess if p.id != newest_valid]
