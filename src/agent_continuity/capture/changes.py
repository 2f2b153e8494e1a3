"""Pure comparison of file contents then and now, by digest.

A file's *content key* is its digest, or None when the file does not exist.
The observer gathers one key per path for the saved state and one for the
current state; :func:`classify` turns the two maps into the
``file_changes`` of a :class:`~agent_continuity.model.ProjectObservation`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from agent_continuity.model import FileStamp


class Change(StrEnum):
    """How a file differs from its saved state."""

    MODIFIED = "modified"
    ADDED = "added"
    DELETED = "deleted"


def content_key(stamp: FileStamp | None) -> str | None:
    """The content key of a recorded stamp.

    A file that existed but could not be read has no digest; its size and
    modification time stand in, so it still compares equal to itself.
    """
    if stamp is None or stamp.size < 0:
        return None
    if stamp.digest is not None:
        return stamp.digest
    return f"stat:{stamp.size}:{stamp.mtime_ns}"


def classify(
    saved: Mapping[str, str | None],
    current: Mapping[str, str | None],
    paths: Iterable[str],
) -> dict[str, str]:
    """Which of ``paths`` changed, by comparing content keys.

    Args:
        saved: Path -> content key at save time (missing: the file was absent).
        current: Path -> content key now (missing: the file is absent).
        paths: The candidate paths to compare.

    Returns:
        Path -> ``"modified"``, ``"added"`` or ``"deleted"`` for every path
        whose content differs, keys sorted.
    """
    changes: dict[str, str] = {}
    for path in sorted(set(paths)):
        before, after = saved.get(path), current.get(path)
        if before == after:
            continue
        if before is None:
            changes[path] = Change.ADDED.value
        elif after is None:
            changes[path] = Change.DELETED.value
        else:
            changes[path] = Change.MODIFIED.value
    return changes


def diff_indexes(
    saved: Mapping[str, FileStamp], current: Mapping[str, FileStamp]
) -> dict[str, str]:
    """Compare two complete file indexes (the non-git case).

    Args:
        saved: Every file at save time.
        current: Every file now.

    Returns:
        The changed paths, as :func:`classify` reports them.
    """
    # One pass over the saved index; identical stamp objects (reused from
    # the observer's cache) and equal digests are skipped without sorting.
    differing = [
        path
        for path, stamp in saved.items()
        if (now := current.get(path)) is not stamp
        and (now is None or content_key(now) != content_key(stamp))
    ]
    differing += [path for path in current.keys() - saved.keys()]
    return classify(
        {p: content_key(saved.get(p)) for p in differing},
        {p: content_key(current.get(p)) for p in differing},
        differing,
    )
