"""A generated catalog of N tracks in a real hub database, cached between runs.

Shape: N/20 artists, N/10 albums of 1-19 tracks, one album artist and on one track in
ten a featured artist; popularity Zipf-like (an artist's rank r of A gives
``100 * (1 - ln r / ln(A + 1))``, so few are popular and most are obscure; albums and
tracks sit a little below their artist); releases 1955-2024, more of them recent;
15 % of albums sold in some markets only.  Rows go in through sqlite-utils in big
batches; the search index is left empty (the benchmark times building it).

The file is cached under ``bench/out/cache/search/`` keyed by the parameters, this
package's generator source and the hub's migrations, so a rerun only copies it.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from hub.catalog.ids import base62_id
from hub.context import hub_database
from hub.schema import MIGRATIONS

from . import names

CACHE = Path(__file__).resolve().parent.parent / "out" / "cache" / "search"
KEEP_CACHED = 2
MARKETS = names.words("US GB DE FR SE NO DK FI NL BE ES IT PT BR MX AR JP KR AU CA")
BATCH = 20_000
Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Shape:
    tracks: int
    seed: int = 1

    @property
    def artists(self) -> int:
        return max(10, self.tracks // 20)

    @property
    def albums(self) -> int:
        return max(20, self.tracks // 10)

    def key(self) -> str:
        """Changes with anything that changes the generated file."""
        digest = hashlib.sha256(f"{self.tracks}:{self.seed}".encode())
        for module in ("generate.py", "names.py"):
            digest.update((Path(__file__).parent / module).read_bytes())
        digest.update("\n".join(MIGRATIONS).encode())
        return digest.hexdigest()[:16]


@dataclass(slots=True)
class _Album:
    id: str
    name: str
    artist: int
    popularity: int


def _batches(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    while batch := list(itertools.islice(rows, size)):
        yield batch


def _popularity(rank: int, count: int) -> int:
    return max(0, min(100, round(100 * (1 - math.log(rank) / math.log(count + 1)))))


class _Catalog:
    """Row generators; albums are remembered for their tracks."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        self.rng = random.Random(shape.seed)
        self.names = names.NameMaker(self.rng, invented=max(200, shape.tracks // 20))
        ranks = list(range(1, shape.artists + 1))
        self.rng.shuffle(ranks)
        self.artist_pop = [_popularity(r, shape.artists) for r in ranks]
        self.artist_names = [self.names.artist() for _ in range(shape.artists)]
        self.artist_ids = [base62_id(f"bench-artist:{i}") for i in range(shape.artists)]
        # popular artists release more: weight by 1/sqrt(rank)
        self.artist_weights = list(itertools.accumulate(1 / math.sqrt(r) for r in ranks))
        self.albums: list[_Album] = []

    def pick_artist(self) -> int:
        return self.rng.choices(range(self.shape.artists), cum_weights=self.artist_weights)[0]

    def artist_rows(self) -> Iterator[Row]:
        for i, name in enumerate(self.artist_names):
            yield {
                "id": self.artist_ids[i],
                "name": name,
                "popularity": self.artist_pop[i],
                "followers": int(10 ** (self.artist_pop[i] / 14)),
                "genres": "",
            }

    def album_rows(self) -> Iterator[Row]:
        rng = self.rng
        years = range(1955, 2025)
        year_weights = list(itertools.accumulate(1 + (y - 1955) / 10 for y in years))
        for i in range(self.shape.albums):
            artist = self.pick_artist()
            album = _Album(
                id=base62_id(f"bench-album:{i}"),
                name=self.names.album(),
                artist=artist,
                popularity=max(0, self.artist_pop[artist] - rng.randint(0, 15)),
            )
            self.albums.append(album)
            year = rng.choices(years, cum_weights=year_weights)[0]
            restricted = rng.random() < 0.15
            yield {
                "id": album.id,
                "name": album.name,
                "album_type": rng.choice(("album", "album", "single", "compilation")),
                "release_date": str(year),
                "release_year": year,
                "popularity": album.popularity,
                "label": "Bench Records",
                "markets": " ".join(sorted(rng.sample(MARKETS, 5))) if restricted else "",
            }

    def album_artist_rows(self) -> Iterator[Row]:
        for album in self.albums:
            yield {"album_id": album.id, "artist_id": self.artist_ids[album.artist], "position": 0}

    def track_rows(self, credits: list[Row]) -> Iterator[Row]:
        """Tracks; their credits are appended to ``credits`` as they are made."""
        rng = self.rng
        made = 0
        for album in itertools.cycle(self.albums):
            for number in range(1, rng.randint(1, 19) + 1):
                if made == self.shape.tracks:
                    return
                track_id = base62_id(f"bench-track:{made}")
                artists = [album.artist]
                if rng.random() < 0.1:
                    artists.append(self.pick_artist())
                for position, artist in enumerate(dict.fromkeys(artists)):
                    credits.append(
                        {
                            "track_id": track_id,
                            "artist_id": self.artist_ids[artist],
                            "position": position,
                        }
                    )
                popularity = album.popularity - rng.randint(0, 20) + rng.randint(0, 5)
                yield {
                    "id": track_id,
                    "name": self.names.track(),
                    "artist": " feat. ".join(self.artist_names[a] for a in dict.fromkeys(artists)),
                    "album": album.name,
                    "album_id": album.id,
                    "track_number": number,
                    "duration_ms": rng.randint(90_000, 420_000),
                    "disc_number": 1,
                    "isrc": f"XXBEN{made:07d}",
                    "explicit": int(rng.random() < 0.08),
                    "popularity": max(0, min(100, popularity)),
                    "markets": "",
                }
                made += 1


def _generate(path: Path, shape: Shape, progress: Callable[[str], None]) -> None:
    hub_database(path).migrate()
    conn = hub_database(path).connect()
    try:
        # a cache file, deleted if this fails: no journal, no fsync, a big page cache
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -500000")
        db = sqlite_utils.Database(conn)
        catalog = _Catalog(shape)
        started = time.monotonic()

        def load(table: str, rows: Iterator[Row], total: int) -> None:
            for n, batch in enumerate(_batches(rows, BATCH), start=1):
                db.table(table).insert_all(batch, batch_size=BATCH // 4)
                done = min(n * BATCH, total)
                progress(
                    f"generating: {table} {done:,}/{total:,} ({time.monotonic() - started:.0f} s)"
                )

        load("artists", catalog.artist_rows(), shape.artists)
        load("albums", catalog.album_rows(), shape.albums)
        load("album_artists", catalog.album_artist_rows(), shape.albums)
        credits: list[Row] = []
        load("tracks", catalog.track_rows(credits), shape.tracks)
        load("track_artists", iter(credits), len(credits))
        conn.execute("PRAGMA journal_mode = WAL")  # as the hub keeps it
    finally:
        conn.close()


def cached_catalog(shape: Shape, progress: Callable[[str], None]) -> tuple[Path, bool]:
    """The generated catalog's file (made now if not cached), and whether it was cached."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"catalog-{shape.tracks}-{shape.key()}.db"
    if path.exists():
        path.touch()
        return path, True
    partial = path.with_suffix(".partial")
    for leftover in CACHE.glob("*.partial*"):
        leftover.unlink()
    _generate(partial, shape, progress)
    for suffix in ("-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    partial.rename(path)
    older = sorted(CACHE.glob("catalog-*.db"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in older[KEEP_CACHED:]:
        stale.unlink()
    return path, False


def working_copy(cached: Path, directory: Path) -> Path:
    """A copy the benchmark may index and query without touching the cache."""
    target = directory / "hub.db"
    shutil.copyfile(cached, target)
    return target
