"""``continuity search``: find words in every session's journal.

Only renders: the results come from :meth:`SessionManager.search`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from agent_continuity.cli.options import (
    emit,
    json_option,
    manager,
    store_option,
    user_filter_option,
)
from agent_continuity.errors import InvalidInput, StoreNotFound

if TYPE_CHECKING:
    from agent_continuity import SearchResults


def render(result: SearchResults) -> str:
    """The results as lines for a terminal: where each is, its kind, and its snippet."""
    lines: list[str] = []
    if result.rebuilt is not None:
        lines.append(f"search index rebuilt: {result.rebuilt} events indexed")
    if not result.query.strip():
        return "\n".join(lines)
    if result.in_memory:
        lines.append(
            "encrypted store: the search index is kept in memory only, never on disk "
            "(built from the journals for each command; `continuity serve` keeps it)"
        )
    if not result.hits:
        lines.append(f"nothing found for {result.query!r}")
    for hit in result.hits:
        lines.append(f"{hit.session_id} #{hit.seq} {hit.kind} ({hit.score:.2f})")
        lines.append(f"  {' '.join(hit.snippet.split())}")
    return "\n".join(lines)


@click.command()
@click.argument("query", required=False, default="")
@user_filter_option
@click.option(
    "--limit",
    "limit",
    metavar="N",
    type=int,
    default=20,
    show_default=True,
    help="The most results.",
)
@click.option(
    "--rebuild",
    is_flag=True,
    help="Build the search index again from the journals first (QUERY may then be omitted).",
)
@store_option
@json_option
def search(
    query: str, user: str | None, limit: int, rebuild: bool, store: str | None, as_json: bool
) -> None:
    """Search every session: messages, decisions, tasks, notes and tool calls, ranked.

    Each result names its session and journal sequence number, its kind, a
    snippet with the matched words in [brackets], and its score. The search
    index is derived from the journals and caught up before each query.
    """
    if not query.strip() and not rebuild:
        raise InvalidInput("give words to search for, e.g. continuity search 'sms provider'")
    mgr = manager(store, create=False)
    try:
        result = mgr.search(query, user=user, limit=limit, rebuild=rebuild)
    except StoreNotFound as exc:
        emit(as_json, {"query": query, "results": [], "noStore": str(exc)}, f"no sessions: {exc}")
        return
    emit(as_json, result.to_wire(), lambda: render(result))


COMMANDS = [search]
