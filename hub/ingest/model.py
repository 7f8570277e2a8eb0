"""What ingest passes between its steps and hands back to its caller.

Workers are sent an ``EncodeJob`` and return ``Encoded`` or ``Failed`` (plain,
picklable values); the parent turns each file into one ``IngestResult`` once
its fate is sealed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from connect_protocol.media import Loudness, Rendition
from hub.ingest.features import AudioFeatures
from hub.ingest.limits import IngestLimits
from hub.ingest.loudness import TrackLoudness
from hub.ingest.tags import FileInfo

Status = Literal["added", "present", "failed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EncodeJob:
    """One file for a worker: where it is, its content and what it may cost."""

    path: Path
    content_hash: str
    data_dir: Path
    limits: IngestLimits
    #: A track the catalog has but without measured features: measure only those,
    #: with the track's loudness (LUFS) from its manifest.
    remeasure_lufs: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Encoded:
    """A track whose segments are in the store but not yet in the catalog."""

    path: Path
    content_hash: str
    track_id: str
    frames: int
    sample_rate: int
    channels: int
    boundaries: tuple[int, ...]
    renditions: tuple[Rendition, ...]
    loudness: TrackLoudness
    features: AudioFeatures


@dataclass(frozen=True, slots=True, kw_only=True)
class Remeasured:
    """Features for a track the catalog already has (ingested before they were measured)."""

    path: Path
    track_id: str
    features: AudioFeatures


@dataclass(frozen=True, slots=True)
class Failed:
    path: Path
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """How far a run is: ``stage`` "scan" (hash and tags) or "encode"."""

    stage: Literal["scan", "encode"]
    done: int  # files
    total: int
    done_seconds: float  # audio seconds, the unit an ETA wants
    total_seconds: float
    path: Path | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestResult:
    path: Path
    status: Status
    id: str | None = None
    name: str | None = None
    artist: str | None = None
    album: str | None = None
    album_id: str | None = None
    track_number: int | None = None
    frames: int | None = None
    sample_rate: int | None = None
    channels: int | None = None
    duration_ms: int | None = None
    loudness: Loudness | None = None
    bitrates: dict[str, int] | None = None  # measured, per quality label
    error: str | None = None

    @property
    def uri(self) -> str | None:
        return f"legato:track:{self.id}" if self.id else None

    def to_json(self) -> dict[str, Any]:
        """One line of ``legato-hub ingest --json``; every key is always there."""
        loud = self.loudness
        return {
            "status": self.status,
            "path": str(self.path),
            "id": self.id,
            "uri": self.uri,
            "name": self.name,
            "artist": self.artist,
            "album": self.album,
            "album_id": self.album_id,
            "track_number": self.track_number,
            "frames": self.frames,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "duration_ms": self.duration_ms,
            "loudness": None
            if loud is None
            else {
                "track_lufs": loud.track_lufs,
                "track_peak_dbtp": loud.track_peak_dbtp,
                "album_lufs": loud.album_lufs,
                "album_peak_dbtp": loud.album_peak_dbtp,
            },
            "bitrates": self.bitrates,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Scanned:
    """A file hashed and its tags read: enough to group albums and skip known content."""

    path: Path
    content_hash: str
    info: FileInfo
