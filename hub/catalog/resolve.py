"""A minimal catalog: enough to turn Spotify-style URIs into tracks to play.

The full catalog (artists, FTS search, ingest) lands with its own issue; this
module resolves ``legato:track:ID`` and ``legato:album:ID`` — and the
``spotify:`` aliases, so clients that build Spotify URIs work unchanged — into
``TrackRef``s the speaker can play, and seeds a small demo catalog.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from connect_protocol.messages import TrackRef
from hub.catalog import write as catalog_write
from hub.catalog.ids import base62_id
from hub.db import Database
from hub.errors import CatalogError

__all__ = ["base62_id", "first_album_uri", "parse_uri", "resolve_context", "resolve_tracks"]

URI_SCHEMES = ("legato", "spotify")


@dataclass(frozen=True, slots=True)
class ParsedUri:
    kind: str
    id: str


def parse_uri(uri: str) -> ParsedUri:
    parts = uri.split(":")
    if len(parts) != 3 or parts[0] not in URI_SCHEMES or not parts[2].isalnum():
        raise CatalogError(
            f"Invalid URI {uri[:100]!r}: expected legato:track:ID or spotify:track:ID"
        )
    return ParsedUri(parts[1], parts[2])


def _ref(row: sqlite3.Row) -> TrackRef:
    return TrackRef(
        uri=f"legato:track:{row['id']}",
        duration_ms=row["duration_ms"],
        name=row["name"],
        artists=(row["artist"],),
        album=row["album"],
    )


def resolve_tracks(db: Database, uris: list[str]) -> list[TrackRef]:
    """Each track URI in order; unknown ones are an error naming the URI."""
    ids = []
    for uri in uris:
        parsed = parse_uri(uri)
        if parsed.kind != "track":
            raise CatalogError(f"{uri!r} is not a track URI")
        ids.append(parsed.id)
    with db.reading() as conn:
        rows = {
            r["id"]: r
            for r in conn.execute(
                f"SELECT * FROM tracks WHERE id IN ({','.join('?' * len(ids))})", ids
            )
        }
    missing = [uri for uri, i in zip(uris, ids, strict=True) if i not in rows]
    if missing:
        raise CatalogError(f"Unknown track {missing[0]!r}")
    return [_ref(rows[i]) for i in ids]


def resolve_context(db: Database, uri: str) -> list[TrackRef]:
    parsed = parse_uri(uri)
    if parsed.kind != "album":
        raise CatalogError(f"Unsupported context {uri!r}: only albums for now")
    with db.reading() as conn:
        rows = conn.execute(
            "SELECT * FROM tracks WHERE album_id = ? ORDER BY disc_number, track_number, id",
            (parsed.id,),
        ).fetchall()
    if not rows:
        raise CatalogError(f"Unknown context {uri!r}")
    return [_ref(r) for r in rows]


def first_album_uri(db: Database) -> str | None:
    """Something to play on a fresh hub (the banner of ``legato-hub up`` shows it)."""
    with db.reading() as conn:
        row = conn.execute(
            "SELECT album_id FROM tracks ORDER BY album, track_number LIMIT 1"
        ).fetchone()
    return f"legato:album:{row[0]}" if row else None


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
