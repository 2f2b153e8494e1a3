"""``postgresql://``: PostgreSQL's dialect of the shared SQL store (:mod:`..sql`).

Needs psycopg 3 and its pool (``pip install 'agent-continuity[postgres]'``);
they are imported only when a ``postgresql://`` store is opened.
"""

from __future__ import annotations

from .store import PostgresStore

__all__ = ["PostgresStore"]
