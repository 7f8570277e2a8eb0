"""Catalog search: FTS5 over tracks, artists, albums and playlists.

- :mod:`hub.catalog.search.query` parses a search box's text (pure);
- :mod:`hub.catalog.search.kinds` says what each kind indexes and how its documents are built;
- :mod:`hub.catalog.search.index` keeps the index in step with the catalog;
- :mod:`hub.catalog.search.vocabulary` completes long prefixes and corrects small typos;
- :mod:`hub.catalog.search.engine` runs the queries; :mod:`hub.catalog.search.ranking` orders them.

The tables are migration 4's (:mod:`hub.schema`).  ``GET /v1/search`` is
:mod:`hub.http.routes.search`; ``bench/search_catalog.py`` measures it at 1M tracks.
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
