"""Full-text search across every session's journal (``continuity search``).

The index is derived from the journals and never the truth: it is kept apart
from them (a SQLite FTS5 file beside the store), caught up before each query
from per-session high-water marks, rebuilt by ``search --rebuild`` and
``verify --repair``, and thrown away and rebuilt whenever it is found damaged.
Nothing done to it can lose a journal event.

* :mod:`.text`: what of an event is searchable, and under which kind;
* :mod:`.index`: the :class:`~.index.SearchIndex` contract and its SQLite FTS5 implementation;
* :mod:`.heads`: each store's cheap per-session high-water marks;
* :mod:`.catalog`: opening the right index for a store, catching it up, querying it.
"""

from __future__ import annotations

from .catalog import SearchHit, SearchResults, rebuild_index, search_store

__all__ = ["SearchHit", "SearchResults", "rebuild_index", "search_store"]
