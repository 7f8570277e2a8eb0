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


class TooSlowError(SourceError):
    """A fetch would not finish before the buffer runs dry; it was abandoned."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class SegmentSource(Protocol):
    def manifest(self, track_id: str) -> Manifest: ...

    def segment(
        self, manifest: Manifest, quality: Quality, n: int, *, deadline_s: float | None = None
    ) -> bytes:
        """The segment's bytes; raise ``TooSlowError`` rather than take over ``deadline_s``."""
        ...

    def throughput_bps(self) -> float | None: ...
    def close(self) -> None: ...


class Throughput:
    """Recent throughput (bits per second): the lower of a fast and a slow average.

    Samples are weighted by how long they took, so a slow trickle counts for
    what it cost in time; taking the lower average drops at once when the
    link collapses and rises only once it has held up for a while.
    """

    def __init__(self, fast_half_life_s: float = 1.5, slow_half_life_s: float = 8.0) -> None:
        self._half_lives = (fast_half_life_s, slow_half_life_s)
        self._averages: list[float] | None = None

    def add(self, nbytes: int, seconds: float) -> None:
        seconds = max(seconds, 1e-4)
        sample = nbytes * 8 / seconds
        if self._averages is None:
            self._averages = [sample, sample]
            return
        for i, half_life in enumerate(self._half_lives):
            alpha = 1 - 0.5 ** (seconds / half_life)
            self._averages[i] += alpha * (sample - self._averages[i])

    def collapse(self, nbytes: int, seconds: float) -> None:
        """A fetch had to be abandoned: its rate is the news, whatever came before."""
        sample = nbytes * 8 / max(seconds, 1e-4)
        if self._averages is None:
            self._averages = [sample, sample]
        else:
            self._averages = [min(a, sample) for a in self._averages]

    @property
    def bps(self) -> float | None:
        return None if self._averages is None else min(self._averages)


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

    def segment(
        self, manifest: Manifest, quality: Quality, n: int, *, deadline_s: float | None = None
    ) -> bytes:
        """Stream one segment, measuring as it comes, and give up when it cannot be in time.

        Without abandonment one big segment started on a good link can take
        longer than the whole buffer once the link collapses; the partial
        measurement then tells the ABR how bad the link has become.
        """
        seg = manifest.rendition(quality).segments[n]
        started = time.perf_counter()
        parts: list[bytes] = []
        got = 0
        try:
            with self._http.stream("GET", seg.url) as response:
                if response.status_code != 200:
                    raise self._refused(response.status_code, seg.url)
                for chunk in response.iter_bytes(16384):
                    parts.append(chunk)
                    got += len(chunk)
                    elapsed = time.perf_counter() - started
                    if deadline_s is not None and elapsed > 0.25 and got < seg.bytes:
                        projected = elapsed * seg.bytes / max(got, 1)
                        if projected > deadline_s:
                            self._throughput.collapse(got, elapsed)
                            raise TooSlowError(
                                f"segment {n} at {quality.label} would take {projected:.1f} s,"
                                f" {deadline_s:.1f} s of audio left"
                            )
        except httpx.HTTPError as exc:
            if got:
                self._throughput.add(got, time.perf_counter() - started)
            raise SourceError(f"hub unreachable: {exc}", retryable=True) from exc
        body = b"".join(parts)
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
        raise self._refused(response.status_code, url)

    @staticmethod
    def _refused(status: int, url: str) -> SourceError:
        retryable = status >= 500 or status in (403, 408, 429)
        return SourceError(f"hub answered {status} for {url.split('?', 1)[0]}", retryable=retryable)
