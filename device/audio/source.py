"""Where segments come from: the hub over HTTP (later also the offline cache).

``SegmentSource`` is what the engines read through, so a signed URL, a cached
file and (for the mpv engine) a stream protocol all look alike.  ``HubMedia``
keeps one HTTP connection to the hub, authenticates as the speaker (HTTP Basic
with its broker credentials), re-fetches a manifest before its signed URLs
expire, and measures throughput for the ABR from every segment it fetches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import httpx

from connect_protocol import codec
from connect_protocol.media import Manifest, Quality

logger = logging.getLogger(__name__)

#: Re-fetch a manifest when its URLs have less than this left.
MANIFEST_MARGIN_MS = 5 * 60 * 1000


class SourceError(Exception):
    """A fetch failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class SegmentSource(Protocol):
    def manifest(self, track_id: str) -> Manifest: ...
    def segment(self, manifest: Manifest, quality: Quality, n: int) -> bytes: ...
    def throughput_bps(self) -> float | None: ...
    def close(self) -> None: ...


class Throughput:
    """Exponentially weighted throughput over recent fetches (bits per second).

    Tiny fetches are dominated by latency, so each sample is weighted by its
    size: a 2 KB segment barely moves the estimate, a 200 KB one does.
    """

    def __init__(self, half_life_bytes: float = 256_000) -> None:
        self._half_life = half_life_bytes
        self._bps: float | None = None

    def add(self, nbytes: int, seconds: float) -> None:
        sample = nbytes * 8 / max(seconds, 1e-4)
        if self._bps is None:
            self._bps = sample
            return
        alpha = 1 - 0.5 ** (nbytes / self._half_life)
        self._bps += alpha * (sample - self._bps)

    @property
    def bps(self) -> float | None:
        return self._bps


class HubMedia:
    def __init__(
        self,
        hub_url: str,
        device_id: str,
        secret: str,
        *,
        timeout_s: float = 5.0,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self._base = hub_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self._base,
            auth=httpx.BasicAuth(device_id, secret),
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 3.0)),
            headers={"User-Agent": "legato-speaker"},
        )
        self._clock_ms = clock_ms
        self._manifests: dict[str, Manifest] = {}
        self._lock = threading.Lock()
        self._throughput = Throughput()

    def manifest(self, track_id: str) -> Manifest:
        with self._lock:
            cached = self._manifests.get(track_id)
        if cached is not None and cached.expires_ms - self._clock_ms() > MANIFEST_MARGIN_MS:
            return cached
        body = self._get(f"/v1/audio/{track_id}/manifest")
        manifest = codec.decode(Manifest, body)
        if isinstance(manifest, codec.DecodeError):
            raise SourceError(f"bad manifest for {track_id}: {manifest.message}", retryable=False)
        with self._lock:
            if len(self._manifests) > 64:
                self._manifests.clear()
            self._manifests[track_id] = manifest
        return manifest

    def segment(self, manifest: Manifest, quality: Quality, n: int) -> bytes:
        seg = manifest.rendition(quality).segments[n]
        started = time.perf_counter()
        body = self._get(seg.url)
        self._throughput.add(len(body), time.perf_counter() - started)
        return body

    def throughput_bps(self) -> float | None:
        return self._throughput.bps

    def forget(self, track_id: str) -> None:
        """Drop a cached manifest (its URLs were refused: keys rotated out, or it expired)."""
        with self._lock:
            self._manifests.pop(track_id, None)

    def close(self) -> None:
        self._http.close()

    def _get(self, url: str) -> bytes:
        try:
            response = self._http.get(url)
        except httpx.HTTPError as exc:
            raise SourceError(f"hub unreachable: {exc}", retryable=True) from exc
        if response.status_code == 200:
            return response.content
        retryable = response.status_code >= 500 or response.status_code in (403, 408, 429)
        raise SourceError(
            f"hub answered {response.status_code} for {url.split('?', 1)[0]}",
            retryable=retryable,
        )
