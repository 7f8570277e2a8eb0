"""What a play request names, resolved into the tracks a speaker plays.

``legato:track:ID``, ``legato:album:ID`` and ``legato:playlist:ID`` (and their
``spotify:`` aliases, so clients that build Spotify URIs work unchanged) become
``TrackRef`` values in play order.
"""

from __future__ import annotations

import sqlite3

from connect_protocol.messages import TrackRef
from connect_protocol.uris import ParsedUri, split_uri
from hub.catalog.ids import base62_id
from hub.db import Database
from hub.errors import CatalogError

__all__ = [
    "ParsedUri",
    "base62_id",
    "first_album_uri",
    "parse_uri",
    "resolve_context",
    "resolve_tracks",
]


def parse_uri(uri: str) -> ParsedUri:
    """The URI's kind and id; a :class:`CatalogError` for anything else."""
    parsed = split_uri(uri)
    if parsed is None:
        raise CatalogError(
            f"Invalid URI {uri[:100]!r}: expected legato:track:ID or spotify:track:ID"
        )
    return parsed


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
