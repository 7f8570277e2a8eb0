"""A small catalog with everything the Web API shows: credits, popularity, markets,
audio features, a guest appearance, explicit tracks.  Written through
``hub.catalog_write`` as ingest writes, plus the columns ingest leaves at defaults."""

from __future__ import annotations

import io
import random
from pathlib import Path

from hub.catalog import search
from hub.catalog import write as catalog_write
from hub.catalog.ids import base62_id
from hub.db import Database

#: (album, album artist, year, markets, [(track, credit, popularity, explicit)])
ALBUMS = [
    (
        "Copper Skies",
        "Aurora Vale",
        2019,
        "",
        [
            ("Northern Lights", "Aurora Vale", 81, False),
            ("Slow Burn", "Aurora Vale feat. Kito Mensah", 64, True),
            ("Glass River", "Aurora Vale", 40, False),
        ],
    ),
    (
        "Midnight Ferry",
        "Kito Mensah",
        2021,
        "GB DE",
        [
            ("Harbour Wall", "Kito Mensah", 55, False),
            ("Salt & Tar", "Kito Mensah", 70, False),
        ],
    ),
    (
        "Café Rêverie",
        "Zoë Ångström",
        2008,
        "",
        [("Déjà Vu", "Zoë Ångström", 90, False), ("Crème", "Zoë Ångström", 20, False)],
    ),
]


def cover_png(size: int = 800) -> bytes:
    """A gradient square, as an album cover from ingest might be."""
    from PIL import Image

    image = Image.new("RGB", (size, size))
    image.putdata(
        [(x * 255 // size, y * 255 // size, 128) for y in range(size) for x in range(size)]
    )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def populate(db: Database, seed: int = 7, art_dir: Path | None = None) -> dict[str, str]:
    """Write the catalog; returns names → ids for tracks, albums and artists.

    With ``art_dir`` (the hub's data dir), the first album gets cover art there."""
    rng = random.Random(seed)
    ids: dict[str, str] = {}
    with db.transaction() as conn:
        for album, artist, year, markets, tracks in ALBUMS:
            album_id = base62_id(f"album:{artist}:{album}")
            ids[album] = album_id
            catalog_write.ensure_album(conn, album_id, album, artist, year=year)
            conn.execute(
                "UPDATE albums SET markets = ?, popularity = ?, label = 'Fixture Records'"
                " WHERE id = ?",
                (markets, max(t[2] for t in tracks), album_id),
            )
            for number, (name, credit, popularity, explicit) in enumerate(tracks, start=1):
                track_id = base62_id(f"track:{album_id}:{name}")
                ids[name] = track_id
                conn.execute(
                    "INSERT INTO tracks (id, name, artist, album, album_id, track_number,"
                    " duration_ms, popularity, explicit, markets, isrc)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        track_id,
                        name,
                        credit,
                        album,
                        album_id,
                        number,
                        180_000 + number * 1000,
                        popularity,
                        int(explicit),
                        markets,
                        f"XXLEG{year % 100:02d}{number:05d}",
                    ),
                )
                catalog_write.credit_track(conn, track_id, credit)
                conn.execute(
                    "INSERT INTO audio_features (track_id, danceability, energy, valence,"
                    " acousticness, instrumentalness, speechiness, liveness, loudness, tempo,"
                    " key, mode, time_signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        track_id,
                        *(round(rng.random(), 3) for _ in range(7)),
                        round(-20 + rng.random() * 15, 1),
                        round(70 + rng.random() * 100, 1),
                        rng.randrange(12),
                        rng.randrange(2),
                        4,
                    ),
                )
        if art_dir is not None:
            first = ids[ALBUMS[0][0]]
            (art_dir / "art").mkdir(parents=True, exist_ok=True)
            (art_dir / "art" / f"{first}.png").write_bytes(cover_png())
            conn.execute(
                "INSERT INTO album_art (album_id, mime, path) VALUES (?, 'image/png', ?)",
                (first, f"art/{first}.png"),
            )
        for row in conn.execute("SELECT id, name FROM artists"):
            ids[row["name"]] = row["id"]
        conn.execute(
            "UPDATE artists SET popularity = (SELECT MAX(t.popularity) FROM track_artists c"
            " JOIN tracks t ON t.id = c.track_id WHERE c.artist_id = artists.id)"
        )
        search.rebuild(conn)  # popularity, set after the rows, orders the index
    return ids
