"""Content-based recommendations from audio features (no listening history yet).

The seeds' features are averaged into a target; candidates are the catalog's tracks
that have features, ranked by distance to the target in a space where each feature is
scaled to 0..1 (tempo over 50..200 BPM, loudness over -60..0 dB), with popularity as a
small tie-breaker; the seed tracks themselves never come back.  Tracks without
features are reached through their artists (the seed artists' and the seed tracks'
artists' most popular tracks), so a catalog with no features still answers.
``rank`` is a pure function over values, tested directly.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FEATURES = (
    "danceability",
    "energy",
    "valence",
    "acousticness",
    "instrumentalness",
    "speechiness",
    "liveness",
)
CANDIDATES = 5000  # nearest-first scan of the most popular tracks with features


@dataclass(frozen=True, slots=True)
class Point:
    id: str
    vector: tuple[float, ...]
    popularity: int


def vector(row: Mapping[str, Any]) -> tuple[float, ...]:
    tempo = min(max((float(row["tempo"]) - 50.0) / 150.0, 0.0), 1.0)
    loud = min(max((float(row["loudness"]) + 60.0) / 60.0, 0.0), 1.0)
    return (*(float(row[f]) for f in FEATURES), tempo, loud)


def centroid(points: Sequence[tuple[float, ...]]) -> tuple[float, ...]:
    n = len(points)
    return tuple(sum(p[i] for p in points) / n for i in range(len(points[0])))


def rank(
    target: tuple[float, ...], candidates: Sequence[Point], exclude: set[str], limit: int
) -> list[str]:
    """Nearest first; among near-equals the more popular; never an excluded id."""

    def score(p: Point) -> tuple[float, str]:
        distance = math.dist(target, p.vector)
        return (distance - p.popularity / 100.0 * 0.05, p.id)

    kept = [p for p in candidates if p.id not in exclude]
    return [p.id for p in sorted(kept, key=score)[:limit]]


def _in(n: int) -> str:
    return ",".join("?" * n)


def recommend(
    conn: sqlite3.Connection,
    seed_tracks: Sequence[str],
    seed_artists: Sequence[str],
    seed_genres: Sequence[str],
    limit: int,
    market: str | None = None,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Track ids to recommend, and Spotify's ``seeds`` objects."""
    artists = list(seed_artists)
    if seed_tracks:
        artists += [
            r[0]
            for r in conn.execute(
                f"SELECT artist_id FROM track_artists WHERE track_id IN ({_in(len(seed_tracks))})",
                list(seed_tracks),
            )
        ]
    seed_rows = (
        conn.execute(
            f"SELECT * FROM audio_features WHERE track_id IN ({_in(len(seed_tracks))})",
            list(seed_tracks),
        ).fetchall()
        if seed_tracks
        else []
    )
    if artists:
        seed_rows += conn.execute(
            "SELECT f.* FROM audio_features f JOIN track_artists c ON c.track_id = f.track_id"
            f" WHERE c.artist_id IN ({_in(len(artists))}) LIMIT 50",
            artists,
        ).fetchall()
    exclude = set(seed_tracks)
    picked: list[str] = []
    if seed_rows:
        target = centroid([vector(r) for r in seed_rows])
        rows = conn.execute(
            "SELECT f.*, t.popularity, t.markets FROM audio_features f"
            " JOIN tracks t ON t.id = f.track_id ORDER BY t.popularity DESC LIMIT ?",
            (CANDIDATES,),
        ).fetchall()
        points = [
            Point(r["track_id"], vector(r), r["popularity"])
            for r in rows
            if not market or not r["markets"] or market.upper() in r["markets"].split()
        ]
        picked = rank(target, points, exclude, limit)
    if len(picked) < limit and artists:  # no features: the artists' most popular tracks
        rows = conn.execute(
            "SELECT DISTINCT t.id, t.markets, t.popularity FROM track_artists c"
            " JOIN tracks t ON t.id = c.track_id"
            f" WHERE c.artist_id IN ({_in(len(artists))}) ORDER BY t.popularity DESC LIMIT ?",
            (*artists, limit * 4),
        ).fetchall()
        picked += [
            r[0]
            for r in rows
            if r[0] not in exclude
            and r[0] not in picked
            and (not market or not r[1] or market.upper() in r[1].split())
        ]
    picked = picked[:limit]
    return picked, seed_objects(seed_tracks, seed_artists, seed_genres, len(picked))


def seed_objects(
    seed_tracks: Sequence[str], seed_artists: Sequence[str], seed_genres: Sequence[str], n: int
) -> list[dict[str, Any]]:
    """Spotify's ``seeds`` objects for a list of ``n`` tracks."""
    return [
        {
            "id": i,
            "type": kind,
            "href": None,
            "initialPoolSize": n,
            "afterFilteringSize": n,
            "afterRelinkingSize": n,
        }
        for kind, ids in (("TRACK", seed_tracks), ("ARTIST", seed_artists), ("GENRE", seed_genres))
        for i in ids
    ]


def features_rows(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, sqlite3.Row]:
    """The audio features (and duration) of the ids that have them."""
    return {
        r["track_id"]: r
        for r in conn.execute(
            f"SELECT f.*, t.duration_ms FROM audio_features f JOIN tracks t ON t.id = f.track_id"
            f" WHERE f.track_id IN ({_in(len(ids))})",
            list(ids),
        )
    }
