"""Where segments come from: the hub over HTTP (``device.audio.cached_source`` puts the
encrypted offline cache in front of it).

``SegmentSource`` is what the engines read through, so a signed URL and a
cached blob look alike.  ``HubMedia``
keeps one HTTP connection to the hub, authenticates as the speaker (HTTP Basic
with its broker credentials), re-fetches a manifest before its signed URLs
expire, and measures throughput for the ABR from every segment it fetches.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import logging
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from connect_protocol import codec
from connect_protocol.media import Manifest, Quality
from connect_protocol.tls import pinned_context
from device.errors import DeviceError

logger = logging.getLogger(__name__)

#: Re-fetch a manifest when its URLs have less than this left.
MANIFEST_MARGIN_MS = 5 * 60 * 1000


class SourceError(DeviceError):
    """A fetch failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Authenticated(bytes):
    """Segment bytes whose integrity is already proven: read from the encrypted cache,
    where the AES-GCM tag shows they are the very bytes whose Ogg pages were checked
    before they were sealed.  The engine skips its page check for these."""


def needs_page_check(data: bytes) -> bool:
    """Whether the engine must check a segment's Ogg pages (CRCs, length) itself."""
    return not isinstance(data, Authenticated)


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

    def held_quality(self, manifest: Manifest) -> Quality | None:
        """A quality the source holds the whole track at (an offline download): the
        engine plays that one instead of asking the ABR; ``None`` lets the ABR choose."""
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


@dataclass(frozen=True, slots=True)
class HubAnswer:
    status: int
    body: bytes
    headers: dict[str, str]  # names in lower case


class HubMedia:
    """The hub's manifests and segments over one kept-alive HTTP connection.

    Plain ``http.client`` rather than a client library: a speaker fetches a
    few URLs from one host, and every MiB of resident memory counts there.
    One lock serialises requests (the engine's fetcher and, rarely, a
    re-fetch after a failed decode share the connection).
    """

    def __init__(
        self,
        hub_url: str,
        device_id: str,
        secret: str,
        *,
        ca_pem: str = "",
        timeout_s: float = 5.0,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        parts = urllib.parse.urlsplit(hub_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"hub URL must be http(s)://host[:port], not {hub_url!r}")
        self._https = parts.scheme == "https"
        # https: the hub must hold a certificate its pinned CA signed (the system's CAs
        # when the config pins none) before the credentials below are sent
        self._tls = (
            (pinned_context(ca_pem) if ca_pem else ssl.create_default_context())
            if self._https
            else None
        )
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._timeout_s = timeout_s
        token = base64.b64encode(f"{device_id}:{secret}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}", "User-Agent": "legato-speaker"}
        self._conn: http.client.HTTPConnection | None = None
        self._http_lock = threading.Lock()
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
        with self._http_lock:
            started = time.perf_counter()
            response = self._request(seg.url)
            if response.status != 200:
                self._drain(response)
                raise self._refused(response.status, seg.url)
            body = bytearray()
            try:
                while response.length != 0 and (chunk := response.read1(16384)):
                    body += chunk
                    got = len(body)
                    elapsed = time.perf_counter() - started
                    if deadline_s is not None and elapsed > 0.25 and got < seg.bytes:
                        projected = elapsed * seg.bytes / max(got, 1)
                        if projected > deadline_s:
                            self._throughput.collapse(got, elapsed)
                            self._drop()  # the rest of the body is not wanted
                            raise TooSlowError(
                                f"segment {n} at {quality.label} would take {projected:.1f} s,"
                                f" {deadline_s:.1f} s of audio left"
                            )
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                if body:
                    self._throughput.add(len(body), time.perf_counter() - started)
                raise SourceError(f"hub unreachable: {exc}", retryable=True) from exc
            response.close()  # read to its end: the connection is free for the next request
            if response.will_close:
                self._drop()
            self._throughput.add(len(body), time.perf_counter() - started)
        return bytes(body)

    def held_quality(self, manifest: Manifest) -> Quality | None:
        return None  # the hub holds every quality: the ABR chooses

    def throughput_bps(self) -> float | None:
        return self._throughput.bps

    def forget(self, track_id: str) -> None:
        """Drop a cached manifest (its URLs were refused: keys rotated out, or it expired)."""
        with self._lock:
            self._manifests.pop(track_id, None)

    def close(self) -> None:
        with self._http_lock:
            self._drop()

    # --- HTTP (hold self._http_lock) ------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._tls is not None:
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout_s, context=self._tls
                )
            else:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout_s
                )
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _request(
        self,
        url: str,
        *,
        method: str = "GET",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> http.client.HTTPResponse:
        """Send a request; once more on a fresh connection if a kept-alive one was closed."""
        for attempt in (0, 1):
            reused = self._conn is not None
            try:
                conn = self._connection()
                conn.request(
                    method,
                    self._prefix + url,
                    body=body,
                    headers={**self._headers, **(headers or {})},
                )
                return conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self._drop()  # the hub closed an idle connection: not a failure
                if not reused or attempt:
                    raise SourceError(f"hub unreachable: {exc}", retryable=True) from exc
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                raise SourceError(f"hub unreachable: {exc}", retryable=True) from exc
        raise AssertionError("unreachable")

    def _drain(self, response: http.client.HTTPResponse) -> None:
        try:
            response.read()
        except (OSError, http.client.HTTPException):
            self._drop()

    def _get(self, url: str) -> bytes:
        with self._http_lock:
            response = self._request(url)
            try:
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                raise SourceError(f"hub unreachable: {exc}", retryable=True) from exc
        if response.status == 200:
            return body
        raise self._refused(response.status, url)

    def call(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> HubAnswer:
        """Any request to the hub as this speaker; ``SourceError`` when the hub cannot be
        reached."""
        with self._http_lock:
            response = self._request(url, method=method, body=body, headers=headers)
            try:
                answer = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                raise SourceError(f"hub unreachable: {exc}", retryable=True) from exc
            if response.will_close:
                self._drop()
        return HubAnswer(response.status, answer, {k.lower(): v for k, v in response.getheaders()})

    @contextlib.contextmanager
    def streaming(
        self, url: str, headers: dict[str, str] | None = None
    ) -> Iterator[http.client.HTTPResponse]:
        """A GET as this speaker whose body the caller reads as it arrives (a release
        bundle: too big to hold).  Errors while reading become ``SourceError``; a body
        left unread closes the connection."""
        with self._http_lock:
            response = self._request(url, headers=headers)
            try:
                yield response
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                raise SourceError(f"hub unreachable: {exc}", retryable=True) from exc
            finally:
                if not response.isclosed() or response.will_close:
                    self._drop()

    @staticmethod
    def _refused(status: int, url: str) -> SourceError:
        retryable = status >= 500 or status in (403, 408, 429)
        return SourceError(f"hub answered {status} for {url.split('?', 1)[0]}", retryable=retryable)
