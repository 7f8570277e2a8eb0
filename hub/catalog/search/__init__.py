"""Catalog search: FTS5 over tracks, artists, albums and playlists (issue 4).

- :mod:`hub.search.query` parses a search box's text (pure);
- :mod:`hub.search.kinds` says what each kind indexes and how its documents are built;
- :mod:`hub.search.index` keeps the index in step with the catalog;
- :mod:`hub.search.vocabulary` completes long prefixes and corrects small typos;
- :mod:`hub.search.engine` runs the queries; :mod:`hub.search.ranking` orders them.

The tables are migration 4's (``hub/db.py``).  ``GET /v1/search`` is
``hub/routes/search.py``; ``bench/search_catalog.py`` measures it at 1M tracks.
"""

from hub.catalog.search.engine import Page, find, search
from hub.catalog.search.index import (
    index_album,
    index_artist,
    index_playlist,
    index_track,
    rebuild,
    unindex_playlist,
)
from hub.catalog.search.kinds import KINDS
from hub.catalog.search.query import ParsedQuery, parse

__all__ = [
    "KINDS",
    "Page",
    "ParsedQuery",
    "find",
    "index_album",
    "index_artist",
    "index_playlist",
    "index_track",
    "parse",
    "rebuild",
    "search",
    "unindex_playlist",
]
