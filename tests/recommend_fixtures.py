"""A small listening history with planted tastes, written straight into a hub database:
10 tastes (each a genre of 12 artists x 4 tracks, features clustered by taste),
listeners with 2-3 tastes each playing mostly tracks of their tastes over 180 days,
some noise plays of other tastes, most of them skipped early."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from hub.catalog.ids import base62_id
from hub.db import Database

TASTES = 10
ARTISTS_PER_TASTE = 12
TRACKS_PER_ARTIST = 4
DAY_MS = 86_400_000
NOW_MS = int(time.time() * 1000)  # the history ends now


@dataclass
class Planted:
    taste_of_track: dict[str, int] = field(default_factory=dict)
    artist_of_track: dict[str, str] = field(default_factory=dict)
    tastes_of_user: dict[int, list[int]] = field(default_factory=dict)
    artists: dict[int, list[str]] = field(default_factory=dict)  # taste -> artist ids


def catalog(db: Database, rng: random.Random, planted: Planted) -> None:
    with db.transaction() as conn:
        for taste in range(TASTES):
            centre = [rng.random() for _ in range(7)]
            for a in range(ARTISTS_PER_TASTE):
                artist = base62_id(f"artist:{taste}:{a}")
                planted.artists.setdefault(taste, []).append(artist)
                conn.execute(
                    "INSERT INTO artists (id, name, genres, popularity) VALUES (?, ?, ?, ?)",
                    (artist, f"Artist {taste}-{a}", f"genre{taste}", rng.randint(10, 90)),
                )
                album = base62_id(f"album:{taste}:{a}")
                conn.execute("INSERT INTO albums (id, name) VALUES (?, ?)", (album, f"Album {a}"))
                for n in range(TRACKS_PER_ARTIST):
                    track = base62_id(f"track:{taste}:{a}:{n}")
                    planted.taste_of_track[track] = taste
                    planted.artist_of_track[track] = artist
                    conn.execute(
                        "INSERT INTO tracks (id, name, artist, album, album_id, track_number,"
                        " duration_ms, popularity) VALUES (?, ?, ?, ?, ?, ?, 200000, ?)",
                        (track, f"Song {taste}-{a}-{n}", f"Artist {taste}-{a}", f"Album {a}",
                         album, n + 1, rng.randint(0, 100)),
                    )  # fmt: skip
                    conn.execute(
                        "INSERT INTO track_artists (track_id, artist_id, position)"
                        " VALUES (?, ?, 0)",
                        (track, artist),
                    )
                    f = [min(max(c + rng.gauss(0, 0.04), 0.0), 1.0) for c in centre]
                    conn.execute(
                        "INSERT INTO audio_features (track_id, danceability, energy, valence,"
                        " acousticness, instrumentalness, speechiness, liveness, loudness, tempo,"
                        " key, mode, time_signature)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 4)",
                        (track, *f, -30 + 20 * centre[0], 60 + 120 * centre[1], taste % 12, 1),
                    )


def listeners(db: Database, rng: random.Random, planted: Planted, n: int, first_id: int) -> None:
    tracks_of: dict[int, list[str]] = {}
    for t, taste in planted.taste_of_track.items():
        tracks_of.setdefault(taste, []).append(t)
    for pool in tracks_of.values():
        rng.shuffle(pool)  # each taste's favourites spread over its artists
    everything = list(planted.taste_of_track)
    rows: list[tuple[int, str, int, int | None, int | None, int | None]] = []
    for user in range(first_id, first_id + n):
        tastes = rng.sample(range(TASTES), rng.choice((2, 3)))
        planted.tastes_of_user[user] = tastes
        for _ in range(rng.randint(50, 90)):
            when = NOW_MS - int(rng.random() * 180 * DAY_MS)
            if rng.random() < 0.12:  # noise: mostly skipped early
                track = rng.choice(everything)
                skipped = rng.random() < 0.8
            else:
                pool = tracks_of[rng.choice(tastes)]
                track = pool[min(int(rng.expovariate(1 / 8)), len(pool) - 1)]
                skipped = rng.random() < 0.05
            ms = rng.randint(2_000, 20_000) if skipped else 200_000
            if not skipped and rng.random() < 0.2:  # as ListenBrainz says it: no ending
                rows.append((user, track, when, None, None, None))
            else:
                rows.append((user, track, when, ms, int(skipped), int(not skipped)))
    with db.transaction() as conn:
        conn.executemany(
            "INSERT OR IGNORE INTO users (id, name, password_hash, created_ms)"
            " VALUES (?, ?, 'x', 0)",
            [(u, f"listener{u}") for u in range(first_id, first_id + n)],
        )
        conn.executemany(
            "INSERT INTO plays (user_id, track_id, played_ms, ms_played, skipped, finished)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )


def planted_history(
    db: Database, listeners_n: int = 200, seed: int = 3, first_id: int = 1000
) -> Planted:
    rng = random.Random(seed)
    planted = Planted()
    catalog(db, rng, planted)
    listeners(db, rng, planted, listeners_n, first_id)
    return planted
