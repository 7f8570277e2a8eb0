"""The demo albums' names and lengths, for a catalog without audio (tests, and the
names the rendered demo library is tagged with)."""

from __future__ import annotations

from hub.catalog import write as catalog_write
from hub.catalog.ids import base62_id
from hub.db import Database

DEMO_ALBUMS: list[tuple[str, str, list[tuple[str, int]]]] = [
    (
        "Harbour Lights",
        "The Quay Ensemble",
        [
            ("Low Tide", 184_000),
            ("Gulls at Dawn", 201_000),
            ("Rope and Anchor", 176_000),
            ("Lanterns", 232_000),
        ],
    ),
    (
        "Night Bus",
        "Mira Okafor",
        [("Last Stop", 195_000), ("Sodium Glow", 221_000), ("Window Seat", 168_000)],
    ),
    (
        "Field Recordings",
        "Paloma Reyes Trio",
        [
            ("Meadow Waltz", 247_000),
            ("Swing Hinge", 189_000),
            ("Barley", 210_000),
            ("Evening Shift", 263_000),
            ("Coda", 122_000),
        ],
    ),
]


def seed_demo(db: Database) -> int:
    """Add the demo albums if the catalog is empty; returns tracks added."""
    with db.transaction() as conn:
        if conn.execute("SELECT COUNT(*) FROM tracks").fetchone()[0]:
            return 0
        added = 0
        for album, artist, tracks in DEMO_ALBUMS:
            album_id = base62_id(f"album:{artist}:{album}")
            for number, (name, duration) in enumerate(tracks, start=1):
                catalog_write.ensure_album(conn, album_id, album, artist)
                track_id = base62_id(f"track:{album_id}:{name}")
                conn.execute(
                    "INSERT INTO tracks (id, name, artist, album, album_id, track_number,"
                    " duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (track_id, name, artist, album, album_id, number, duration),
                )
                catalog_write.credit_track(conn, track_id, artist)
                added += 1
    return added
