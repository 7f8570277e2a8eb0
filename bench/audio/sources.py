"""Segment sources for the in-process engines: one that records, one that reads files.

``Recorder`` wraps any source and keeps a log of every manifest and segment fetch (when,
how long, which quality, how much audio), which the phases turn into a time-to-first-audio
breakdown and the seconds played at each quality.  With ``cold=True`` it makes the
wrapped ``HubMedia`` forget a manifest before fetching it, so every play starts with
nothing cached on the speaker (``HubMedia`` caches manifests only, never segments).

``StoreFiles`` reads segments straight from the hub's media store, to measure the decode
and DSP cost of the engine without HTTP in the way.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from connect_protocol.media import Manifest, Quality
from device.audio.source import HubMedia, SegmentSource
from hub.media import store


@dataclass(frozen=True, slots=True)
class Fetch:
    kind: str  # "manifest" or "segment"
    track_id: str
    started_ns: int  # time.monotonic_ns()
    ended_ns: int
    quality: Quality | None = None
    n: int = -1
    audio_s: float = 0.0  # the segment's decoded length
    nbytes: int = 0


class Recorder:
    """A ``SegmentSource`` that logs every fetch of the source it wraps (thread-safe)."""

    def __init__(self, inner: SegmentSource, *, cold: bool = False) -> None:
        self.inner = inner
        self.cold = cold
        self.fetches: list[Fetch] = []
        self.in_flight = 0
        self.last_activity_ns = time.monotonic_ns()
        self._lock = threading.Lock()

    def _begin(self) -> int:
        with self._lock:
            self.in_flight += 1
        return time.monotonic_ns()

    def _end(self, fetch: Fetch | None) -> None:
        with self._lock:
            self.in_flight -= 1
            self.last_activity_ns = time.monotonic_ns()
            if fetch is not None:
                self.fetches.append(fetch)

    def idle_for_ns(self) -> int:
        """How long no fetch has been running (0 while one is)."""
        with self._lock:
            return 0 if self.in_flight else time.monotonic_ns() - self.last_activity_ns

    def manifest(self, track_id: str) -> Manifest:
        if self.cold and isinstance(self.inner, HubMedia):
            self.inner.forget(track_id)
        t0 = self._begin()
        fetch = None
        try:
            manifest = self.inner.manifest(track_id)
            fetch = Fetch("manifest", track_id, t0, time.monotonic_ns())
            return manifest
        finally:
            self._end(fetch)

    def segment(
        self, manifest: Manifest, quality: Quality, n: int, *, deadline_s: float | None = None
    ) -> bytes:
        t0 = self._begin()
        fetch = None
        try:
            data = self.inner.segment(manifest, quality, n, deadline_s=deadline_s)
            rendition = manifest.rendition(quality)
            seconds = rendition.segments[n].frames / rendition.sample_rate
            fetch = Fetch(
                "segment",
                manifest.track_id,
                t0,
                time.monotonic_ns(),
                quality,
                n,
                seconds,
                len(data),
            )
            return data
        finally:
            self._end(fetch)

    def held_quality(self, manifest: Manifest) -> Quality | None:
        return None

    def throughput_bps(self) -> float | None:
        return self.inner.throughput_bps()

    def close(self) -> None:
        self.inner.close()

    def segments(self, since: int = 0) -> list[Fetch]:
        with self._lock:
            return [f for f in self.fetches[since:] if f.kind == "segment"]


class StoreFiles:
    """Segments read from the hub's media store; manifests as stored (no URLs)."""

    def __init__(self, data_dir: Path, manifests: dict[str, Manifest]) -> None:
        self._data = data_dir
        self._manifests = manifests

    def manifest(self, track_id: str) -> Manifest:
        return self._manifests[track_id]

    def segment(
        self, manifest: Manifest, quality: Quality, n: int, *, deadline_s: float | None = None
    ) -> bytes:
        return store.segment_path(self._data, manifest.track_id, quality, n).read_bytes()

    def held_quality(self, manifest: Manifest) -> Quality | None:
        return None

    def throughput_bps(self) -> float | None:
        return None

    def close(self) -> None:
        pass
