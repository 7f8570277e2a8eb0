"""Writing the catalog: artists, albums and ordered credits, inside the caller's transaction.

One place decides how a track's tags become rows, so ingest, the demo catalog and the
benchmark's generated catalog agree: artists are named by name (``hub.ids.artist_id``),
an artist string with several names ("A, B & C", "A feat. B") credits each in order,
and the display strings stay on the track row for the speaker.  Each function also
brings the search index up to date for what it wrote (``hub.search.index``).
"""

from __future__ import annotations

import re
import sqlite3

from hub.catalog.ids import artist_id
from hub.catalog.search import index as search_index

_SPLIT = re.compile(r"\s*(?:,|;|&|\bfeat\.?|\bft\.?|\bfeaturing\b)\s*", re.IGNORECASE)


def split_artists(text: str) -> list[str]:
    """The names in an artist credit, in order, without duplicates; never empty."""
    names: list[str] = []
    for part in _SPLIT.split(text):
        name = part.strip()
        if name and name not in names:
            names.append(name)
    return names or [text.strip() or "Unknown artist"]


def ensure_artists(conn: sqlite3.Connection, credit: str) -> list[str]:
    """Rows for every artist in ``credit`` (added if new); their ids in order."""
    ids = []
    for name in split_artists(credit):
        aid = artist_id(name)
        added = conn.execute(
            "INSERT OR IGNORE INTO artists (id, name) VALUES (?, ?)", (aid, name)
        ).rowcount
        if added:
            search_index.index_artist(conn, aid)
        ids.append(aid)
    return ids


def ensure_album(
    conn: sqlite3.Connection,
    album_id: str,
    name: str,
    album_artist: str,
    *,
    year: int | None = None,
) -> None:
    """The album row and its credits, unless the album is known already."""
    if conn.execute("SELECT 1 FROM albums WHERE id = ?", (album_id,)).fetchone():
        return
    conn.execute(
        "INSERT INTO albums (id, name, release_date, release_year) VALUES (?, ?, ?, ?)",
        (album_id, name, str(year) if year else "", year),
    )
    for position, aid in enumerate(ensure_artists(conn, album_artist)):
        conn.execute(
            "INSERT INTO album_artists (album_id, artist_id, position) VALUES (?, ?, ?)",
            (album_id, aid, position),
        )
    search_index.index_album(conn, album_id)


def credit_track(conn: sqlite3.Connection, track_id: str, credit: str) -> None:
    """The track's artists, in the order the credit names them."""
    conn.execute("DELETE FROM track_artists WHERE track_id = ?", (track_id,))
    for position, aid in enumerate(ensure_artists(conn, credit)):
        conn.execute(
            "INSERT INTO track_artists (track_id, artist_id, position) VALUES (?, ?, ?)",
            (track_id, aid, position),
        )
    search_index.index_track(conn, track_id)
