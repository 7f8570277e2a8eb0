"""Time to first audio from the offline cache with the hub stopped.

Each series is a ``NativeEngine`` of its own, writing to a real-time ``NullSink`` as the
audio bench's time-to-first-audio phase builds it, timed the same way: from
``engine.load(track, 0, True)`` to the engine's ``first_audio_ns`` (the first frame
written to the sink).  Before each play the bench waits until that engine has fetched
nothing for ``IDLE_MS`` (its buffer is full); after it, the bench pauses it and waits
until its sink has played out what it held, so every play starts from a quiet sink, as
in the audio bench (the engine does not drop the sink's queued audio on a load: a track
loaded right after another played waits ~65 ms behind it).  Every track of
the library in turn; ``WARMUP_PLAYS`` uncounted plays first.

- **cache** (the target): ``CachedMedia(HubMedia(<a closed port>), store,
  stream_cap_bytes=0)`` over the store holding the library offline.  The hub address is a
  port the bench holds bound and never listens on (a connection is refused), and the hub
  process of the baseline below has been stopped.  The ``HubMedia`` counts what it is
  asked; the run fails if the cache asks the hub anything.  The engine's options are the
  defaults (``auto``: the downloaded quality, ``very_high``, plays).
- **cache, pages evicted**: the same, with the track's blobs dropped from the page cache
  before each play (a speaker just started, or a cache bigger than its RAM).
- **plain files** (reference): the hub's plain ``.ogg`` files read by a small source
  (``audio.sources.StoreFiles``): no index, no licence, no cipher; and the same with
  their pages evicted.  Pinned to ``very_high``.
- **hub, no cache** (baseline, first, while the hub runs): ``HubMedia`` to the hub process
  (the audio bench's rig: its embedded broker, a speaker login) over loopback HTTPS with
  the hub's CA pinned, as a paired speaker fetches (``Rig.media``), the
  manifest fetched cold on every play (as the audio bench does), pinned to ``very_high``.

The cache and plain-file series run after the hub has stopped, interleaved play by play
(the order rotates).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audio.material import Library, Track
from audio.rig import start_rig
from audio.sources import Recorder, StoreFiles

from connect_protocol.media import Manifest, Quality
from connect_protocol.messages import EventKind
from device.audio.cached_source import CachedMedia
from device.audio.native import EngineOptions, NativeEngine
from device.audio.sinks import NullSink
from device.audio.source import HubMedia, SegmentSource

from . import pages
from .cache import DEVICE_ID, Offline
from .common import QUALITY, RATE, BenchError, Options, Percentiles, Progress, wait_until

WARMUP_PLAYS = 2
IDLE_MS = 150
FIRST_AUDIO_TIMEOUT_S = 10.0


class CountingHub(HubMedia):
    """A ``HubMedia`` that counts what it is asked (the cache must ask it nothing)."""

    def __init__(self, hub_url: str, device_id: str, secret: str) -> None:
        super().__init__(hub_url, device_id, secret, timeout_s=1.0)
        self.requests = 0

    def manifest(self, track_id: str) -> Manifest:
        self.requests += 1
        return super().manifest(track_id)

    def segment(
        self, manifest: Manifest, quality: Quality, n: int, *, deadline_s: float | None = None
    ) -> bytes:
        self.requests += 1
        return super().segment(manifest, quality, n, deadline_s=deadline_s)


class HeldRecorder(Recorder):
    """The audio bench's ``Recorder``, passing on the quality its source holds (an offline
    download plays at the quality downloaded; the ``Recorder`` itself answers ``None``)."""

    def held_quality(self, manifest: Manifest) -> Quality | None:
        return self.inner.held_quality(manifest)


@dataclass(frozen=True, slots=True)
class Play:
    total_ns: int  # load -> first frame written
    manifest_ns: int
    segment_ns: int  # the first segment's fetch
    after_ns: int  # first segment fetched -> first frame written
    quality: Quality


@dataclass(slots=True)
class Series:
    name: str
    label: str
    engine: NativeEngine
    recorder: Recorder
    sink: NullSink
    evict: Callable[[str], None] | None = None  # drop the track's pages before a play
    plays: list[Play] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def idle(self) -> None:
        rec = self.recorder
        await wait_until(
            lambda: rec.idle_for_ns() >= IDLE_MS * 1_000_000, 60, f"{self.name} idle", 0.005
        )

    async def play(self, track: Track) -> Play:
        engine, rec = self.engine, self.recorder
        await self.idle()
        if self.evict is not None:
            self.evict(track.id)
        before = engine.first_audio_ns
        mark = len(rec.fetches)
        t0 = time.monotonic_ns()
        engine.load(track.ref(), 0, True)

        def started() -> bool:
            first = engine.first_audio_ns
            return first is not None and first != before and first > t0

        try:
            await wait_until(started, FIRST_AUDIO_TIMEOUT_S, f"first audio of {track.name}", 0.002)
        except BenchError as exc:
            raise BenchError(f"{self.label}: {exc}; engine errors: {self.errors[-3:]}") from exc
        first = engine.first_audio_ns
        assert first is not None
        fetched = rec.fetches[mark:]
        manifest = next((f for f in fetched if f.kind == "manifest"), None)
        segment = next((f for f in fetched if f.kind == "segment"), None)
        if manifest is None or segment is None or segment.quality is None:
            raise BenchError(f"{self.label}: play of {track.name}: no manifest or segment fetch")
        await self.idle()
        engine.set_playing(False)
        sink = self.sink
        await wait_until(lambda: sink.delay_frames() == 0, 5, f"{self.name}: sink played out")
        return Play(
            total_ns=first - t0,
            manifest_ns=manifest.ended_ns - manifest.started_ns,
            segment_ns=segment.ended_ns - segment.started_ns,
            after_ns=first - segment.ended_ns,
            quality=segment.quality,
        )

    def figures(self) -> dict[str, Any]:
        ps = self.plays
        return {
            "label": self.label,
            "ms": Percentiles.of([p.total_ns for p in ps]),
            "steps_p50_ms": {
                "manifest": _p50([p.manifest_ns for p in ps]),
                "first segment": _p50([p.segment_ns for p in ps]),
                "decode, DSP, queue, first write": _p50([p.after_ns for p in ps]),
            },
            "steps_p99_ms": {
                "manifest": _p99([p.manifest_ns for p in ps]),
                "first segment": _p99([p.segment_ns for p in ps]),
                "decode, DSP, queue, first write": _p99([p.after_ns for p in ps]),
            },
            "first_segment_quality": sorted({p.quality.label for p in ps}),
            "all_ms": [round(p.total_ns / 1e6, 2) for p in ps],
        }


def _p50(ns: list[int]) -> float:
    return round(Percentiles.of(ns).p50, 2)


def _p99(ns: list[int]) -> float:
    return round(Percentiles.of(ns).p99, 2)


def _series(
    name: str,
    label: str,
    source: SegmentSource,
    options: EngineOptions,
    evict: Callable[[str], None] | None = None,
    *,
    recorder: type[Recorder] = Recorder,
    cold_manifest: bool = False,
) -> Series:
    rec = recorder(source, cold=cold_manifest)
    holder: list[Series] = []

    def on_event(kind: EventKind, uri: str | None, message: str) -> None:
        if kind is EventKind.ERROR and holder:
            holder[0].errors.append(message)

    sink = NullSink(RATE)
    engine = NativeEngine(
        lambda _uri: None,
        source=rec,
        sink=sink,
        options=options,
        on_event=on_event,
        loop=asyncio.get_running_loop(),
    )
    series = Series(name, label, engine, rec, sink, evict)
    holder.append(series)
    return series


async def _run(
    series: list[Series], tracks: tuple[Track, ...], plays: int, progress: Progress
) -> None:
    for k in range(WARMUP_PLAYS + plays):
        track = tracks[k % len(tracks)]
        shift = k % len(series)
        for s in series[shift:] + series[:shift]:
            play = await s.play(track)
            if k >= WARMUP_PLAYS:
                s.plays.append(play)
        names = ", ".join(s.name for s in series)
        progress.show(f"time to first audio ({names}): {max(0, k + 1 - WARMUP_PLAYS)}/{plays}")
    progress.finish(
        f"time to first audio ({', '.join(s.name for s in series)}): {plays} plays each"
    )


async def _close(series: list[Series]) -> None:
    for s in series:
        await asyncio.to_thread(s.engine.close)


def _closed_port() -> tuple[socket.socket, int]:
    """A loopback port held bound and never listened on: a connection to it is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return sock, port
    sock.close()
    raise BenchError(f"port {port} accepted a connection; it was meant to be closed")


async def measure(
    offline: Offline, library: Library, opts: Options, root: Path, progress: Progress
) -> dict[str, Any]:
    tracks = library.tracks
    pinned = EngineOptions(quality=QUALITY.label)
    out: dict[str, Any] = {"plays": opts.plays, "warmup_plays": WARMUP_PLAYS, "series": {}}

    if opts.hub_baseline:
        async with start_rig(root, library) as rig:
            cfg = await asyncio.to_thread(rig.login, "bench-offline-hub")
            hub = [
                _series(
                    "hub",
                    "hub up, no cache (HubMedia, loopback HTTPS, manifest cold)",
                    rig.media(cfg),
                    pinned,
                    cold_manifest=True,
                )
            ]
            try:
                await _run(hub, tracks, opts.plays, progress)
            finally:
                await _close(hub)
            rig.check_hub()
        for s in hub:  # the hub is stopped from here on
            out["series"][s.name] = s.figures()

    blobs: dict[str, list[Path]] = {}
    plains: dict[str, list[Path]] = {}
    for seg in offline.segments:
        blobs.setdefault(seg.track_id, []).append(seg.blob)
        plains.setdefault(seg.track_id, []).append(seg.plain)

    def evicting(files: dict[str, list[Path]]) -> Callable[[str], None]:
        def evict(track_id: str) -> None:
            for path in files[track_id]:
                pages.evict(path)

        return evict

    sock, port = _closed_port()
    hubs = [CountingHub(f"http://127.0.0.1:{port}", DEVICE_ID, "no-hub") for _ in range(2)]
    manifests = {t.id: t.manifest for t in tracks}
    series: list[Series] = []
    try:
        series = [
            _series(
                "cache",
                "offline cache, hub stopped",
                CachedMedia(hubs[0], offline.store, stream_cap_bytes=0),
                EngineOptions(),
                recorder=HeldRecorder,
            ),
            _series(
                "cache_cold",
                "offline cache, hub stopped, pages evicted",
                CachedMedia(hubs[1], offline.store, stream_cap_bytes=0),
                EngineOptions(),
                evicting(blobs),
                recorder=HeldRecorder,
            ),
            _series("files", "plain files", StoreFiles(library.dir, manifests), pinned),
            _series(
                "files_cold",
                "plain files, pages evicted",
                StoreFiles(library.dir, manifests),
                pinned,
                evicting(plains),
            ),
        ]
        await _run(series, tracks, opts.plays, progress)
    finally:
        await _close(series)
        sock.close()
    for s in series:
        out["series"][s.name] = s.figures()
    asked = sum(h.requests for h in hubs)
    out["hub_requests_from_cache"] = asked
    out["closed_port"] = port
    if asked:
        raise BenchError(f"the offline cache asked the hub {asked} times for downloaded tracks")
    for name in ("cache", "cache_cold"):
        got = out["series"][name]["first_segment_quality"]
        if got != [QUALITY.label]:
            raise BenchError(f"{name}: played {got}, not the downloaded {QUALITY.label}")
    return out
