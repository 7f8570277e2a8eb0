"""Where ingested audio lives and how its manifest is kept.

Layout under the data dir::

    media/{id[:2]}/{id}/{quality}/{n}.ogg     one Ogg Vorbis stream per segment
    art/{album_id}.{jpg|png}                  embedded cover art, as found

The manifest (``connect_protocol.media.Manifest`` without URLs) is stored in
the ``media`` table, written in the same transaction as the track's catalog
row, so a track is either fully playable or absent.  Segment files are written
before that transaction; a crash in between leaves only orphan files, which
the next ingest of the same content overwrites.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from connect_protocol import codec
from connect_protocol.media import Manifest, Quality
from hub.db import Database
from hub.errors import HubError

TRACK_ID = re.compile(r"^[0-9A-Za-z]{22}$")


def media_root(data_dir: Path) -> Path:
    return data_dir / "media"


def track_dir(data_dir: Path, track_id: str) -> Path:
    if not TRACK_ID.match(track_id):
        raise ValueError(f"not a track id: {track_id[:40]!r}")
    return media_root(data_dir) / track_id[:2] / track_id


def segment_path(data_dir: Path, track_id: str, quality: Quality, n: int) -> Path:
    """The file of segment ``n``; ids are validated so no path can escape the store."""
    if n < 0:
        raise ValueError("segment numbers start at 0")
    return track_dir(data_dir, track_id) / quality.label / f"{n}.ogg"


def save_manifest(
    conn: sqlite3.Connection, manifest: Manifest, content_hash: str, source: str, now_ms: int
) -> None:
    """Record a track's manifest; call inside the transaction that adds the track."""
    conn.execute(
        "INSERT OR REPLACE INTO media (track_id, content_hash, source_path, manifest_json,"
        " ingested_ms) VALUES (?, ?, ?, ?, ?)",
        (manifest.track_id, content_hash, source, codec.encode(manifest).decode(), now_ms),
    )


def load_manifest(db: Database, track_id: str) -> Manifest | None:
    with db.reading() as conn:
        row = conn.execute(
            "SELECT manifest_json FROM media WHERE track_id = ?", (track_id,)
        ).fetchone()
    if row is None:
        return None
    manifest = codec.decode(Manifest, row[0])
    if isinstance(manifest, codec.DecodeError):
        raise HubError(f"stored manifest of {track_id} is unreadable: {manifest.message}")
    return manifest


def track_for_hash(db: Database, content_hash: str) -> str | None:
    """The track already ingested from identical content, if any (ingest is idempotent)."""
    with db.reading() as conn:
        row = conn.execute(
            "SELECT track_id FROM media WHERE content_hash = ?", (content_hash,)
        ).fetchone()
    return None if row is None else str(row[0])


def album_art(conn: sqlite3.Connection, album_id: str) -> tuple[str, str] | None:
    """(mime type, path under the data dir) of an album's original art, if it has any."""
    row = conn.execute(
        "SELECT mime, path FROM album_art WHERE album_id = ?", (album_id,)
    ).fetchone()
    return None if row is None else (row["mime"], row["path"])
