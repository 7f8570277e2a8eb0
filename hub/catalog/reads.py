"""The catalog's read queries: rows for the Web API's objects, in batches.

Every batch function takes a list of ids and returns rows keyed by id (unknown ids
are left out), one query per table per batch and never one per item, in chunks
under SQLite's variable cap; so a 50-track page costs a handful of queries.  The
shapes clients see are built from these rows by :mod:`hub.http.objects`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Literal

Rows = dict[str, sqlite3.Row]
#: Credits are ordered lists of (artist id, name) per track or album.
Credits = dict[str, list[tuple[str, str]]]
_CHUNK = 500


def marks(n: int) -> str:
    return ",".join("?" * n)


def _keyed(conn: sqlite3.Connection, sql: str, ids: Sequence[str]) -> Rows:
    """Rows keyed by their first column, for ids in chunks under SQLite's variable cap."""
    out: Rows = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        for row in conn.execute(sql.format(marks=marks(len(chunk))), chunk):
            out[row[0]] = row
    return out


def _grouped(
    conn: sqlite3.Connection, sql: str, ids: Sequence[str]
) -> dict[str, list[sqlite3.Row]]:
    out: dict[str, list[sqlite3.Row]] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        for row in conn.execute(sql.format(marks=marks(len(chunk))), chunk):
            out.setdefault(row[0], []).append(row)
    return out


def credits(conn: sqlite3.Connection, of: Literal["track", "album"], ids: Sequence[str]) -> Credits:
    """Each track's or album's artists, in credit order."""
    table, key = ("track_artists", "track_id") if of == "track" else ("album_artists", "album_id")
    rows = _grouped(
        conn,
        f"SELECT c.{key}, a.id, a.name FROM {table} c JOIN artists a ON a.id = c.artist_id"
        f" WHERE c.{key} IN ({{marks}}) ORDER BY c.{key}, c.position",
        ids,
    )
    return {k: [(r[1], r[2]) for r in v] for k, v in rows.items()}


def albums_with_art(conn: sqlite3.Connection, album_ids: Sequence[str]) -> set[str]:
    return set(
        _keyed(conn, "SELECT album_id FROM album_art WHERE album_id IN ({marks})", album_ids)
    )


def albums(conn: sqlite3.Connection, ids: Sequence[str]) -> Rows:
    """Album rows with ``total_tracks``."""
    return _keyed(
        conn,
        "SELECT a.*, (SELECT COUNT(*) FROM tracks t WHERE t.album_id = a.id) AS total_tracks"
        " FROM albums a WHERE a.id IN ({marks})",
        ids,
    )


def tracks(conn: sqlite3.Connection, ids: Sequence[str]) -> Rows:
    return _keyed(conn, "SELECT * FROM tracks WHERE id IN ({marks})", ids)


def artists(conn: sqlite3.Connection, ids: Sequence[str]) -> Rows:
    return _keyed(conn, "SELECT * FROM artists WHERE id IN ({marks})", ids)


def artist_picture_albums(conn: sqlite3.Connection, artist_ids: Sequence[str]) -> dict[str, str]:
    """An artist's picture: the album, of their most popular albums, that has art."""
    rows = _grouped(
        conn,
        "SELECT aa.artist_id, aa.album_id FROM album_artists aa"
        " JOIN album_art art ON art.album_id = aa.album_id"
        " JOIN albums al ON al.id = aa.album_id"
        " WHERE aa.artist_id IN ({marks}) ORDER BY aa.artist_id, al.popularity DESC",
        artist_ids,
    )
    return {artist: found[0][1] for artist, found in rows.items()}


def album_track_page(
    conn: sqlite3.Connection, album_id: str, limit: int, offset: int
) -> tuple[list[sqlite3.Row], int]:
    """One page of an album's tracks, in disc and track order, and the album's total."""
    total = conn.execute("SELECT COUNT(*) FROM tracks WHERE album_id = ?", (album_id,))
    rows = conn.execute(
        "SELECT * FROM tracks WHERE album_id = ? ORDER BY disc_number, track_number, id"
        " LIMIT ? OFFSET ?",
        (album_id, limit, offset),
    ).fetchall()
    return rows, int(total.fetchone()[0])


def playlists(conn: sqlite3.Connection, ids: Sequence[str]) -> Rows:
    """Playlist rows with ``owner_name`` and ``total`` (items)."""
    return _keyed(
        conn,
        "SELECT p.*, u.name AS owner_name,"
        " (SELECT COUNT(*) FROM playlist_items i WHERE i.playlist_id = p.id) AS total"
        " FROM playlists p JOIN users u ON u.id = p.owner_id WHERE p.id IN ({marks})",
        ids,
    )


def playlist_first_albums(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, str]:
    """Each playlist's first track's album (a playlist shows that album's art)."""
    rows = _keyed(
        conn,
        "SELECT i.playlist_id, t.album_id FROM playlist_items i JOIN tracks t ON t.id = i.track_id"
        " WHERE i.playlist_id IN ({marks}) AND i.position = 0",
        ids,
    )
    return {playlist: row[1] for playlist, row in rows.items()}


def playlist_item_page(
    conn: sqlite3.Connection, playlist_id: str, limit: int, offset: int
) -> tuple[list[sqlite3.Row], int]:
    """One page of a playlist's items (track id, added when and by whom), and the total."""
    total = conn.execute(
        "SELECT COUNT(*) FROM playlist_items WHERE playlist_id = ?", (playlist_id,)
    ).fetchone()[0]
    rows = conn.execute(
        "SELECT i.track_id, i.added_ms, u.id AS uid, u.name AS uname FROM playlist_items i"
        " LEFT JOIN users u ON u.id = i.added_by WHERE i.playlist_id = ?"
        " ORDER BY i.position LIMIT ? OFFSET ?",
        (playlist_id, limit, offset),
    ).fetchall()
    return rows, int(total)


def owned_playlists(
    conn: sqlite3.Connection, owner_id: int, *, private_too: bool, limit: int, offset: int
) -> tuple[list[str], int]:
    """One page of a user's playlists, newest first (public ones only unless
    ``private_too``), and their total."""
    where = "owner_id = ?" + ("" if private_too else " AND public = 1")
    total = conn.execute(f"SELECT COUNT(*) FROM playlists WHERE {where}", (owner_id,))
    total_n = int(total.fetchone()[0])
    ids = [
        r[0]
        for r in conn.execute(
            f"SELECT id FROM playlists WHERE {where} ORDER BY created_ms DESC, id LIMIT ? OFFSET ?",
            (owner_id, limit, offset),
        )
    ]
    return ids, total_n


def album_exists(conn: sqlite3.Connection, album_id: str) -> bool:
    return conn.execute("SELECT 1 FROM albums WHERE id = ?", (album_id,)).fetchone() is not None


def artist_exists(conn: sqlite3.Connection, artist_id: str) -> bool:
    return conn.execute("SELECT 1 FROM artists WHERE id = ?", (artist_id,)).fetchone() is not None


def artist_tracks_by_popularity(
    conn: sqlite3.Connection, artist_id: str, most: int = 200
) -> list[tuple[str, str]]:
    """(track id, markets) of an artist's tracks, most popular first."""
    rows = conn.execute(
        "SELECT t.id, t.markets FROM track_artists c JOIN tracks t ON t.id = c.track_id"
        " WHERE c.artist_id = ? ORDER BY t.popularity DESC, t.name, t.id LIMIT ?",
        (artist_id, most),
    )
    return [(r[0], r[1]) for r in rows]


def artist_albums(
    conn: sqlite3.Connection, artist_id: str, album_types: Sequence[str], *, appears_on: bool
) -> list[tuple[str, str]]:
    """(album id, markets) of an artist's own albums of ``album_types``, newest first,
    then (with ``appears_on``) the albums they only guest on."""
    own = conn.execute(
        "SELECT al.id, al.markets FROM album_artists aa JOIN albums al ON al.id = aa.album_id"
        f" WHERE aa.artist_id = ? AND al.album_type IN ({marks(len(album_types))})"
        " ORDER BY al.release_date DESC, al.name",
        (artist_id, *album_types),
    ).fetchall()
    found = [(r[0], r[1]) for r in own]
    if appears_on:
        guest = conn.execute(
            "SELECT DISTINCT al.id, al.markets FROM track_artists c"
            " JOIN tracks t ON t.id = c.track_id JOIN albums al ON al.id = t.album_id"
            " WHERE c.artist_id = ? AND al.id NOT IN"
            " (SELECT album_id FROM album_artists WHERE artist_id = ?)",
            (artist_id, artist_id),
        ).fetchall()
        found += [(r[0], r[1]) for r in guest]
    return found


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """How many tracks, albums and artists the catalog holds, and tracks with audio."""
    one = conn.execute(
        "SELECT (SELECT COUNT(*) FROM tracks), (SELECT COUNT(*) FROM albums),"
        " (SELECT COUNT(*) FROM artists), (SELECT COUNT(*) FROM media)"
    ).fetchone()
    return {"tracks": one[0], "albums": one[1], "artists": one[2], "with_audio": one[3]}
