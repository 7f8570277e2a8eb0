"""Into the catalog: one transaction per track (tracks row, manifest, features, art).

The segments are already in the store; this is the moment a track becomes
playable, and it happens whole or not at all.  Content already in the catalog
(another run got there first) is left alone and reported as present.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from connect_protocol.media import Loudness, Manifest
from hub.catalog import recommend as catalog_recommend
from hub.catalog import resolve as catalog
from hub.catalog import write as catalog_write
from hub.clock import now_ms
from hub.db import Database
from hub.files import write_atomic
from hub.ingest.features import AudioFeatures
from hub.ingest.model import Encoded, IngestResult, Remeasured, Status
from hub.ingest.tags import TrackInfo, read_art
from hub.media import store


def album_id_for(info: TrackInfo) -> str:
    """Albums are named by album artist and title, as the demo catalog names them."""
    return catalog.base62_id(f"album:{info.album_artist}:{info.album}")


def duration_ms(frames: int, rate: int) -> int:
    return max(1, round(frames * 1000 / rate))


def manifest_for(track: Encoded, album_id: str, loudness: Loudness) -> Manifest:
    return Manifest(
        track_id=track.track_id,
        uri=f"legato:track:{track.track_id}",
        album_id=album_id,
        frames=track.frames,
        sample_rate=track.sample_rate,
        channels=track.channels,
        duration_ms=duration_ms(track.frames, track.sample_rate),
        loudness=loudness,
        boundaries=track.boundaries,
        renditions=track.renditions,
    )


def _store_art(conn: sqlite3.Connection, data_dir: Path, album_id: str, source: Path) -> None:
    """The album's cover from this file, unless the album has one already."""
    if conn.execute("SELECT 1 FROM album_art WHERE album_id = ?", (album_id,)).fetchone():
        return
    art = read_art(source)
    if art is None:
        return
    relative = f"art/{album_id}.{art.extension}"
    write_atomic(data_dir / relative, art.data)
    conn.execute(
        "INSERT INTO album_art (album_id, mime, path) VALUES (?, ?, ?)",
        (album_id, art.mime, relative),
    )


def commit_track(
    db: Database, data_dir: Path, track: Encoded, info: TrackInfo, loudness: Loudness
) -> IngestResult:
    album_id = album_id_for(info)
    manifest = manifest_for(track, album_id, loudness)
    with db.transaction() as conn:
        known = conn.execute(
            "SELECT track_id FROM media WHERE content_hash = ?", (track.content_hash,)
        ).fetchone()
        if not known:
            _insert(conn, data_dir, track, info, manifest)
    if known:
        return describe(db, track.path, str(known[0]))
    return result_for(
        track.path, "added", manifest, info.name, info.artist, info.album, info.track_number
    )


def _insert(
    conn: sqlite3.Connection, data_dir: Path, track: Encoded, info: TrackInfo, manifest: Manifest
) -> None:
    catalog_write.ensure_album(
        conn, manifest.album_id, info.album, info.album_artist, year=info.year
    )
    conn.execute(
        "INSERT INTO tracks (id, name, artist, album, album_id, track_number, duration_ms,"
        " disc_number, isrc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            track.track_id,
            info.name,
            info.artist,
            info.album,
            manifest.album_id,
            info.track_number,
            manifest.duration_ms,
            info.disc_number or 1,
            info.isrc,
        ),
    )
    catalog_write.credit_track(conn, track.track_id, info.artist)
    source = str(track.path.resolve())
    store.save_manifest(conn, manifest, track.content_hash, source, now_ms())
    save_features(conn, track.track_id, track.features)
    _store_art(conn, data_dir, manifest.album_id, track.path)


#: The columns measured at ingest: the 0..1 estimates the Web API serves, then the rest.
FEATURE_COLUMNS = (
    *catalog_recommend.FEATURES,
    "loudness",
    "tempo",
    "key",
    "mode",
    "time_signature",
    "spectral_centroid",
    "spectral_flatness",
    "spectral_rolloff",
)


def save_features(conn: sqlite3.Connection, track_id: str, features: AudioFeatures) -> None:
    """The track's measured features, replacing whatever row it had (planted or older)."""
    names = ", ".join(FEATURE_COLUMNS)
    marks = ", ".join("?" * len(FEATURE_COLUMNS))
    conn.execute(
        f"INSERT OR REPLACE INTO audio_features (track_id, {names}, measured)"
        f" VALUES (?, {marks}, 1)",
        (track_id, *(getattr(features, column) for column in FEATURE_COLUMNS)),
    )


def unmeasured_lufs(db: Database, track_id: str) -> float | None:
    """The track's loudness if it has no measured features yet (it predates them), else None."""
    with db.reading() as conn:
        measured = conn.execute(
            "SELECT 1 FROM audio_features WHERE track_id = ? AND measured", (track_id,)
        ).fetchone()
    manifest = None if measured else store.load_manifest(db, track_id)
    return None if manifest is None else manifest.loudness.track_lufs


def commit_features(db: Database, found: Remeasured) -> None:
    with db.transaction() as conn:
        if conn.execute("SELECT 1 FROM tracks WHERE id = ?", (found.track_id,)).fetchone():
            save_features(conn, found.track_id, found.features)


def result_for(
    path: Path,
    status: Status,
    manifest: Manifest,
    name: str,
    artist: str,
    album: str,
    track_number: int,
) -> IngestResult:
    return IngestResult(
        path=path,
        status=status,
        id=manifest.track_id,
        name=name,
        artist=artist,
        album=album,
        album_id=manifest.album_id,
        track_number=track_number,
        frames=manifest.frames,
        sample_rate=manifest.sample_rate,
        channels=manifest.channels,
        duration_ms=manifest.duration_ms,
        loudness=manifest.loudness,
        bitrates={r.quality: r.bitrate for r in manifest.renditions},
    )


def describe(db: Database, path: Path, track_id: str) -> IngestResult:
    """A track the catalog already has, as a "present" result."""
    manifest = store.load_manifest(db, track_id)
    with db.reading() as conn:
        row = conn.execute("SELECT * FROM tracks WHERE id = ?", (track_id,)).fetchone()
    if manifest is None or row is None:
        return IngestResult(path=path, status="present", id=track_id)
    return result_for(
        path, "present", manifest, row["name"], row["artist"], row["album"], row["track_number"]
    )
