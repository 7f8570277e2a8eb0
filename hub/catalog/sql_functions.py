"""The catalog's rules offered to SQL, for migrations and queries that need them.

Registered on every connection by :class:`hub.db.Database`'s ``on_connect`` hook
(wired in :func:`hub.context.hub_database`): migration 3 backfills artist credits
with ``legato_artist_id``, migration 4 the search documents with ``legato_search_text``.
"""

from __future__ import annotations

import sqlite3

from hub.catalog.ids import artist_id
from hub.catalog.search.query import search_text


def register(conn: sqlite3.Connection) -> None:
    """Give ``conn`` the catalog's SQL functions (deterministic, so indexes may use them)."""
    conn.create_function("legato_artist_id", 1, artist_id, deterministic=True)
    conn.create_function("legato_search_text", 1, search_text, deterministic=True)
