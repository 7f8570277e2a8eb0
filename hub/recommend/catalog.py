"""The catalog as arrays, read once per model: per track its id, primary artist,
first genre, popularity and a scaled content vector, so ranking is numpy over
columns and never a query per candidate."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: Columns of the content vector, with the range each is scaled from.
CONTENT = (
    ("danceability", 0.0, 1.0),
    ("energy", 0.0, 1.0),
    ("valence", 0.0, 1.0),
    ("acousticness", 0.0, 1.0),
    ("instrumentalness", 0.0, 1.0),
    ("speechiness", 0.0, 1.0),
    ("liveness", 0.0, 1.0),
    ("tempo", 50.0, 200.0),
    ("loudness", -60.0, 0.0),
    ("mode", 0.0, 1.0),
    ("spectral_centroid", 0.0, 8000.0),
    ("spectral_flatness", 0.0, 1.0),
    ("spectral_rolloff", 0.0, 16000.0),
)


@dataclass(frozen=True, slots=True)
class CatalogArrays:
    ids: npt.NDArray[np.str_]
    rowids: npt.NDArray[np.int64]
    artist: npt.NDArray[np.int64]  # index into artist_ids (primary artist)
    artist_ids: npt.NDArray[np.str_]
    genre: npt.NDArray[np.int64]  # index into genres; 0 = none
    genres: list[str]
    popularity: npt.NDArray[np.float32]  # 0..1
    content: npt.NDArray[np.float32]  # rows scaled to 0..1 per column, then centred
    has_content: npt.NDArray[np.bool_]

    @property
    def size(self) -> int:
        return len(self.ids)

    def index_of(self) -> dict[str, int]:
        return {str(t): i for i, t in enumerate(self.ids)}


def first_genre(text: str) -> str:
    """An artist's first genre: genres are comma (or, without commas, space) separated."""
    parts = text.split(",") if "," in text else text.split()
    return parts[0].strip().lower() if parts and parts[0].strip() else ""


def load(conn: sqlite3.Connection) -> CatalogArrays:
    cols = ", ".join(f"f.{c}" for c, _, _ in CONTENT)
    rows = conn.execute(
        f"SELECT t.id, t.rowid, COALESCE(ta.artist_id, ''), COALESCE(a.genres, ''),"
        f" t.popularity, f.track_id IS NOT NULL, {cols} FROM tracks t"
        " LEFT JOIN track_artists ta ON ta.track_id = t.id AND ta.position = 0"
        " LEFT JOIN artists a ON a.id = ta.artist_id"
        " LEFT JOIN audio_features f ON f.track_id = t.id ORDER BY t.rowid"
    ).fetchall()
    n = len(rows)
    artist_ids, artist_idx = np.unique(
        np.array([r[2] for r in rows], dtype=str), return_inverse=True
    )
    genre_names = [first_genre(r[3]) for r in rows]
    genres = ["", *sorted({g for g in genre_names if g})]
    where = {g: i for i, g in enumerate(genres)}
    raw = np.array([[np.nan if v is None else v for v in r[6:]] for r in rows], dtype=np.float64)
    raw = raw.reshape(n, len(CONTENT))
    lo = np.array([c[1] for c in CONTENT])
    hi = np.array([c[2] for c in CONTENT])
    scaled = np.clip((raw - lo) / (hi - lo), 0.0, 1.0)
    known = (~np.isnan(scaled)).sum(axis=0)
    sums = np.nansum(scaled, axis=0)
    means = np.where(known > 0, sums / np.maximum(known, 1), 0.5)
    filled = np.where(np.isnan(scaled), means, scaled) - means
    return CatalogArrays(
        ids=np.array([r[0] for r in rows], dtype=str),
        rowids=np.array([r[1] for r in rows], dtype=np.int64),
        artist=artist_idx.astype(np.int64),
        artist_ids=artist_ids,
        genre=np.array([where[g] for g in genre_names], dtype=np.int64),
        genres=genres,
        popularity=np.array([r[4] for r in rows], dtype=np.float32) / 100.0,
        content=filled.astype(np.float32),
        has_content=np.array([bool(r[5]) for r in rows], dtype=bool),
    )
