"""What is searchable, per kind of item: its FTS5 table, document and filter columns.

Each kind has a document table (``search_track_docs``...) that is the external
content of its FTS5 table.  A document's rowid, ``doc``, is
``(100 - popularity) * 2**32 + the item's rowid``: FTS5 yields matches in rowid
order, so the most popular matches come first and ``LIMIT`` stops early.  The
document holds the indexed text as indexed (FTS5 needs it to delete an entry), and
``year`` holds year, decade, century and millennium tokens (``y1999 d199 c19 k1``,
each behind :data:`~hub.catalog.search.query.YEAR_MARK`) so a ``year:`` range is an FTS5
``OR`` of a few tokens instead of a scan.  Names are stored as
:func:`~hub.catalog.search.query.search_text` makes them (SQL ``legato_search_text``,
registered by ``hub.db``): folded tokens, the parser's words exactly.

The SELECTs here must build the same documents as migration 4's backfill in
``hub/schema.py`` (a test holds them to it); the migration keeps its own frozen copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hub.catalog.search.query import YEAR_MARK, Field

POPULARITY_SHIFT = 2**32


def popularity(doc: int) -> int:
    """The popularity a document was indexed with (its rowid's high part)."""
    return 100 - doc // POPULARITY_SHIFT


def year_sql(expr: str) -> str:
    """SQL for :func:`hub.catalog.search.query.year_tokens` of an integer year expression."""
    m = YEAR_MARK
    return (
        f"CASE WHEN {expr} BETWEEN 0 AND 9999 THEN '{m}y' || {expr} || ' {m}d' || ({expr} / 10)"
        f" || ' {m}c' || ({expr} / 100) || ' {m}k' || ({expr} / 1000) ELSE '' END"
    )


def _names(link: str, key: str, value: str) -> str:
    """Credited artists' names in credit order, comma-separated."""
    return (
        "(SELECT group_concat(name, ', ') FROM (SELECT a.name AS name FROM"
        f" {link} c JOIN artists a ON a.id = c.artist_id WHERE c.{key} = {value}"
        " ORDER BY c.position))"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Kind:
    name: str  # the Web API's type: "track"
    table: str  # the catalog table
    fts: str
    docs: str
    columns: tuple[str, ...]  # FTS columns, in order (also the document's)
    text_columns: tuple[str, ...]  # what an unfielded word may match
    weights: tuple[float, ...]  # bm25 weight per column
    select: str  # (doc, id, *columns) of items; append "WHERE item.id = ?" for one
    field_columns: Mapping[Field, str] = field(default_factory=dict)
    year_column: str | None = None

    @property
    def vocab(self) -> str:
        return f"{self.fts}_vocab"

    @property
    def in_vocabulary(self) -> bool:
        """Whether its words may become typo corrections: not playlists', whose names
        can be private (a correction would hint that a private playlist holds a word)."""
        return self.name != "playlist"


TRACK = Kind(
    name="track",
    table="tracks",
    fts="search_tracks",
    docs="search_track_docs",
    columns=("name", "artists", "album", "year"),
    text_columns=("name", "artists", "album"),
    weights=(10.0, 4.0, 2.0, 0.0),
    field_columns={Field.TRACK: "name", Field.ARTIST: "artists", Field.ALBUM: "album"},
    year_column="year",
    select=(
        f"SELECT (100 - item.popularity) * {POPULARITY_SHIFT} + item.rowid AS doc,"
        " item.id AS id, legato_search_text(item.name) AS name,"
        f" legato_search_text(coalesce({_names('track_artists', 'track_id', 'item.id')},"
        " item.artist)) AS artists, legato_search_text(coalesce(al.name, item.album)) AS album,"
        f" coalesce({year_sql('al.release_year')}, '') AS year"
        " FROM tracks item LEFT JOIN albums al ON al.id = item.album_id"
    ),
)
ALBUM = Kind(
    name="album",
    table="albums",
    fts="search_albums",
    docs="search_album_docs",
    columns=("name", "artists", "year"),
    text_columns=("name", "artists"),
    weights=(10.0, 4.0, 0.0),
    field_columns={Field.ALBUM: "name", Field.ARTIST: "artists"},
    year_column="year",
    select=(
        f"SELECT (100 - item.popularity) * {POPULARITY_SHIFT} + item.rowid AS doc,"
        " item.id AS id, legato_search_text(item.name) AS name,"
        f" legato_search_text({_names('album_artists', 'album_id', 'item.id')}) AS artists,"
        f" coalesce({year_sql('item.release_year')}, '') AS year"
        " FROM albums item"
    ),
)
ARTIST = Kind(
    name="artist",
    table="artists",
    fts="search_artists",
    docs="search_artist_docs",
    columns=("name", "year"),
    text_columns=("name",),
    weights=(10.0, 0.0),
    field_columns={Field.ARTIST: "name"},
    year_column="year",
    select=(
        f"SELECT (100 - item.popularity) * {POPULARITY_SHIFT} + item.rowid AS doc,"
        " item.id AS id, legato_search_text(item.name) AS name,"
        f" coalesce((SELECT group_concat({year_sql('y')}, ' ') FROM (SELECT DISTINCT"
        " al.release_year AS y FROM album_artists aa JOIN albums al ON al.id = aa.album_id"
        " WHERE aa.artist_id = item.id AND al.release_year BETWEEN 0 AND 9999)), '') AS year"
        " FROM artists item"
    ),
)
PLAYLIST = Kind(
    name="playlist",
    table="playlists",
    fts="search_playlists",
    docs="search_playlist_docs",
    columns=("name", "description"),
    text_columns=("name", "description"),
    weights=(10.0, 2.0),
    select=(
        f"SELECT 100 * {POPULARITY_SHIFT} + item.rowid AS doc, item.id AS id,"
        " legato_search_text(item.name) AS name,"
        " legato_search_text(item.description) AS description FROM playlists item"
    ),
)
KINDS: dict[str, Kind] = {k.name: k for k in (TRACK, ARTIST, ALBUM, PLAYLIST)}
