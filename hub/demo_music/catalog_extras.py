"""What the demo catalog knows beyond its tags: audio features, popularity, genres.

Ingest measures tempo, key, mode, loudness, energy and spectral shape, and only
estimates danceability and the other perceptual fields; the demo knows those,
because it composed the music.  So where ingest measured a track (``measured``
= 1) the measurements stay (the demo's features then behave like any
listener's own files, measurement error included) and only the style's
perceptual profile replaces the estimates.  A track without a measured row
(a catalog seeded without audio) gets the whole planted row: key, mode and
tempo from the tune, ``measured`` = 0.  Written after the demo is ingested, so
recommendations and search ranking have something real to work with on a fresh
hub.  Deterministic: the same numbers on every machine.
"""

from __future__ import annotations

import hashlib
import sqlite3

from hub.catalog import search
from hub.catalog.ids import base62_id
from hub.demo_music.compose import Tune
from hub.demo_music.library import DEMO_LIBRARY

# danceability, energy, valence, acousticness, instrumentalness, speechiness, liveness
STYLE_FEATURES: dict[str, tuple[float, ...]] = {
    "ambient": (0.25, 0.18, 0.45, 0.70, 0.95, 0.03, 0.08),
    "pop": (0.72, 0.70, 0.80, 0.25, 0.55, 0.05, 0.12),
    "groove": (0.80, 0.66, 0.62, 0.20, 0.70, 0.04, 0.10),
    "waltz": (0.42, 0.35, 0.58, 0.72, 0.85, 0.03, 0.15),
    "electronic": (0.82, 0.86, 0.50, 0.04, 0.88, 0.05, 0.09),
    "downtempo": (0.60, 0.40, 0.38, 0.30, 0.85, 0.04, 0.10),
    "swing": (0.68, 0.60, 0.76, 0.62, 0.80, 0.04, 0.20),
}


def _popularity(seed: str) -> int:
    return 20 + int.from_bytes(hashlib.sha256(seed.encode()).digest()[:2], "big") % 61


def _features(conn: sqlite3.Connection, track_id: str, tune: Tune, peak_db: float) -> None:
    """The style's perceptual profile; the tune's key and tempo unless ingest measured them."""
    features = STYLE_FEATURES.get(tune.style, STYLE_FEATURES["pop"])
    measured = conn.execute(
        "UPDATE audio_features SET danceability = ?, valence = ?, acousticness = ?,"
        " instrumentalness = ?, speechiness = ?, liveness = ? WHERE track_id = ? AND measured",
        (*features[:1], *features[2:], track_id),
    ).rowcount
    if measured:
        return
    conn.execute(
        "INSERT OR REPLACE INTO audio_features"
        " (track_id, danceability, energy, valence, acousticness, instrumentalness,"
        " speechiness, liveness, loudness, tempo, key, mode, time_signature, measured)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
        (
            track_id,
            *features,
            round(peak_db - 9.0, 1),
            tune.bpm,
            tune.tonic,
            0 if tune.minor else 1,
            3 if tune.style == "waltz" else 4,
        ),
    )


def apply(conn: sqlite3.Connection) -> int:
    """Features, popularity and genres for the demo tracks found in the catalog."""
    done = 0
    for album in DEMO_LIBRARY:
        album_id = base62_id(f"album:{album.artist}:{album.title}")
        indexed: list[str] = []
        for track in album.tracks:
            row = conn.execute(
                "SELECT id FROM tracks WHERE album_id = ? AND name = ?", (album_id, track.title)
            ).fetchone()
            if row is None:
                continue
            _features(conn, row[0], track.tune, track.peak_db)
            conn.execute(
                "UPDATE tracks SET popularity = ? WHERE id = ?",
                (_popularity(f"{album.title}/{track.title}"), row[0]),
            )
            indexed.append(row[0])
            done += 1
        conn.execute(
            "UPDATE albums SET popularity = (SELECT COALESCE(MAX(popularity), 0) FROM tracks"
            " WHERE album_id = albums.id), release_date = ?, release_year = ? WHERE id = ?",
            (str(album.year), album.year, album_id),
        )
        conn.execute(
            "UPDATE artists SET genres = ?, popularity = (SELECT COALESCE(MAX(t.popularity), 0)"
            " FROM track_artists c JOIN tracks t ON t.id = c.track_id"
            " WHERE c.artist_id = artists.id) WHERE id IN"
            " (SELECT artist_id FROM album_artists WHERE album_id = ?)",
            (album.genre.lower(), album_id),
        )
        # popularity orders the search index, and years are in it: index again
        for track_id in indexed:
            search.index_track(conn, track_id)
        search.index_album(conn, album_id)  # and its artists
    return done
