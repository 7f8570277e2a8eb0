"""Real Ogg Vorbis tracks cut the way ingest cuts them, and a source that serves them.

Engine tests need tracks whose every sample is known: these are encoded
with libvorbis (through soundfile) segment by segment on the shared
boundaries of ``connect_protocol.media``, exactly as the hub stores them.
``MemorySource`` stands in for the hub's HTTP path (covered by the delivery
and end-to-end tests) and can stall, fail or corrupt on request.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from connect_protocol.media import (
    Loudness,
    Manifest,
    Quality,
    segment_boundaries,
)
from connect_protocol.messages import TrackRef
from device.audio.source import SourceError, Throughput
from hub.ingest.encode import encode_rendition


def sweep(frames: int, rate: int, *, f0: float = 110.0, f1: float = 1760.0) -> NDArray[np.float32]:
    """A continuous stereo sine sweep at -12 dBFS (exponential in frequency)."""
    t = np.arange(frames, dtype=np.float64) / rate
    duration = frames / rate
    k = np.log(f1 / f0) / duration
    phase = 2 * np.pi * f0 * (np.exp(k * t) - 1) / k
    mono = 0.25 * np.sin(phase)
    return np.stack([mono, mono], axis=1).astype(np.float32)


def sweep_span(
    start_s: float, frames: int, rate: int, *, f0: float = 110.0, f1: float = 880.0, total_s: float
) -> NDArray[np.float32]:
    """Frames ``[start_s, start_s + frames/rate)`` of one sweep lasting ``total_s``.

    Pieces rendered at different rates from one sweep join without a jump,
    so any discontinuity in playback is the engine's.
    """
    t = start_s + np.arange(frames, dtype=np.float64) / rate
    k = np.log(f1 / f0) / total_s
    mono = 0.25 * np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k)
    return np.stack([mono, mono], axis=1).astype(np.float32)


@dataclass
class Track:
    manifest: Manifest
    blobs: dict[tuple[Quality, int], bytes]
    ref: TrackRef


def make_track(
    track_id: str,
    pcm: NDArray[np.float32],
    rate: int,
    *,
    qualities: tuple[Quality, ...] = (Quality.NORMAL,),
    album: str = "Album",
    lufs: float = -14.0,
) -> Track:
    """Encode ``pcm`` (frames, 2) into the given qualities with ingest's own encoder."""
    frames = pcm.shape[0]
    bounds = segment_boundaries(frames, rate)
    renditions = []
    blobs: dict[tuple[Quality, int], bytes] = {}
    for q in sorted(qualities):

        def keep(n: int, blob: bytes, q: Quality = q) -> None:
            blobs[(q, n)] = blob

        rendition = encode_rendition(pcm, rate, bounds, q, keep)
        segments = tuple(
            dataclasses.replace(s, url=f"{q.label}/{n}") for n, s in enumerate(rendition.segments)
        )
        renditions.append(dataclasses.replace(rendition, segments=segments))
    duration_ms = frames * 1000 // rate
    manifest = Manifest(
        track_id=track_id,
        uri=f"legato:track:{track_id}",
        album_id="album",
        frames=frames,
        sample_rate=rate,
        channels=2,
        duration_ms=duration_ms,
        loudness=Loudness(
            track_lufs=lufs, track_peak_dbtp=-6.0, album_lufs=lufs, album_peak_dbtp=-6.0
        ),
        boundaries=tuple(bounds),
        renditions=tuple(renditions),
        expires_ms=2**52,
    )
    ref = TrackRef(
        uri=manifest.uri, duration_ms=duration_ms, name=track_id, artists=("A",), album=album
    )
    return Track(manifest, blobs, ref)


@dataclass
class MemorySource:
    """Serves tracks from memory; a test can stall it, fail segments or corrupt them."""

    tracks: dict[str, Track] = field(default_factory=dict)
    stalled: threading.Event = field(default_factory=threading.Event)
    corrupt: set[tuple[str, int]] = field(default_factory=set)  # (track id, segment)
    fetches: list[tuple[str, str, int]] = field(default_factory=list)
    bytes_per_s: float | None = None  # throttle, when set
    _throughput: Throughput = field(default_factory=Throughput)

    def add(self, track: Track) -> Track:
        self.tracks[track.manifest.track_id] = track
        return track

    def manifest(self, track_id: str) -> Manifest:
        self._wait_if_stalled()
        if track_id not in self.tracks:
            raise SourceError(f"unknown track {track_id}", retryable=False)
        return self.tracks[track_id].manifest

    def segment(
        self, manifest: Manifest, quality: Quality, n: int, *, deadline_s: float | None = None
    ) -> bytes:
        self._wait_if_stalled()
        started = time.perf_counter()
        self.fetches.append((manifest.track_id, quality.label, n))
        blob = self.tracks[manifest.track_id].blobs[(quality, n)]
        if (manifest.track_id, n) in self.corrupt:
            blob = blob[: len(blob) // 2]
        if self.bytes_per_s:
            time.sleep(len(blob) / self.bytes_per_s)
        self._throughput.add(len(blob), time.perf_counter() - started)
        return blob

    def _wait_if_stalled(self) -> None:
        if self.stalled.is_set():
            time.sleep(0.05)
            raise SourceError("network down (test)", retryable=True)

    def held_quality(self, manifest: Manifest) -> Quality | None:
        return None

    def throughput_bps(self) -> float | None:
        return self._throughput.bps

    def close(self) -> None:
        pass
