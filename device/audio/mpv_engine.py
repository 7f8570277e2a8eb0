"""The mpv engine: the ``Engine`` interface on libmpv (python-mpv), segment by segment.

How it plays.  Every segment of a track is one entry of mpv's playlist,
``legato://{gen}/{n}/{serial}``, opened through a registered stream protocol
that serves the segment's bytes from memory.  A prefetch thread fetches
segments from the ``SegmentSource`` (the hub, or the offline cache) up to
30 s ahead, choosing each one's quality with ``device.abr.choose`` as the
native engine does, and checks every segment (Ogg page CRCs, Vorbis header,
final granule = the manifest's frame count) before mpv sees it, so bad bytes
are an error and never noise.  mpv plays the entries gaplessly
(``gapless-audio``, ``prefetch-playlist``) into a fixed output format (s16
stereo at the sink's rate); ``set_next`` appends the next track's entries, so
a track join is just one more segment join.

Why one entry per segment rather than one chained Ogg stream per track: mpv
0.35 (FFmpeg 5.1) does not reset the Vorbis decoder between the links of a
chained stream, so every segment join inserts the overlap of the previous
link (128 frames at 44.1 kHz with libvorbis' 256-frame short blocks) and
each track grows by that much per segment.  Separate entries decode to
exactly ``Segment.frames`` each (measured: two-track and seek totals exact to
the frame), and they let the quality change per segment: mpv reconfigures its
filters between entries (22.05 kHz mono ``low`` <-> 44.1 kHz stereo) without
losing a frame, as the ao stays open.

Seek restarts the playlist at the segment holding the target with the
per-file option ``start=`` and ``hr-seek=yes``: mpv seeks within that
segment and drops the decoded frames before the target (exact to the frame
over 20 random targets; the target is sent a quarter frame late so that
mpv's rounding never keeps the frame before it).  Position is mpv's
``time-pos`` (which already subtracts the audio output's delay, so it is
negative for the ~0.2-0.4 s that the previous entry is still being heard)
plus the segment's start, moved on the monotonic clock between updates.

Underruns are the engine's own finding: mpv has moved on to an entry whose
segment is not fetched yet.  mpv's ``paused-for-cache`` never fires, since
every entry is whole in memory before mpv opens it.

Guarantees of the native engine that this one does NOT meet, and why:

- File and alsa-lib ``file``/``null`` sinks are not paced to real time:
  ``ao=pcm`` is an "untimed" output that mpv writes as fast as it decodes
  (no option paces it; ``ao-pcm-append`` only appends), and alsa-lib's
  clockless PCMs accept data at once.  Only ``null`` (``ao=null``) keeps real
  time.  On those sinks position and track ends run ahead of the wall clock.
- Track ends are reported when mpv's ``time-pos`` in the next track's first
  entry reaches 0 (or when mpv goes idle after draining).  mpv publishes
  ``time-pos`` every ~50-100 ms, so ``on_track_ended`` comes up to ~0.1 s
  late (measured 57 ms), where the native sink-delay accounting is exact.
- When the sink rate differs from a rendition's rate, mpv resamples every
  segment separately (its filter chain is rebuilt per entry): the length
  stays exact but each join carries a resampler restart, a transient of about
  -60 dBFS (measured 1e-3 at 48 kHz against 2.4e-5 elsewhere).  The native
  engine resamples a track continuously.
- The limiter is FFmpeg's ``alimiter`` (5 ms look-ahead, latency-compensated,
  80 ms release, -1 dBFS), used only when the manifest's true peak plus the
  normalisation gain exceeds -1 dBFS; like every filter it restarts at each
  segment, so a join inside a limited passage can step the gain.  The native
  limiter is zero-latency and continuous across a track.
- Mono (``low``) renditions are widened with a ``pan`` filter at full level:
  FFmpeg's default upmix would play them 3 dB quieter than stereo.
- Volume uses mpv's software volume (cubic: ``volume = 100 * gain ** (1/3)``
  reproduces ``dsp.volume_gain``), applied without the native ramp; no
  hardware mixer; no crossfade (mpv has none between playlist entries).
- An audio output that fails to open is retried every second from where the
  track was, as the native engine waits on its sink; a device that fails
  while playing is left to mpv's own handling (not exercised here).
- A segment that is a single Ogg page decodes short (libavcodec does not trim
  the end of such a stream); the ingest keeps segments longer than one page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mpv

from connect_protocol.media import Manifest, Quality
from connect_protocol.messages import EventKind, TrackRef
from connect_protocol.ogg import BadSegmentError, check_segment
from device import abr
from device.audio import dsp
from device.audio.sinks import SinkError
from device.audio.source import SegmentSource, SourceError, needs_page_check
from device.config import SpeakerConfig
from device.engine_api import EventCallback, ReportCallback

logger = logging.getLogger(__name__)


SCHEME = "legato"
LOW_WATERMARK_S = 5.0
TARGET_S = 20.0  # start fetching the next track when less than this is fetched ahead
HIGH_WATERMARK_S = 30.0
RETRY_MAX_S = 2.0
LIMITER_CEILING_DBFS = -1.0
#: How long mpv may wait on a segment that should already be playing before it
#: counts as an underrun: the audio output's buffer still plays meanwhile.
DRY_AFTER_S = 0.25
#: ``time-pos`` arrives every 50-100 ms; between updates position moves on the clock.
EXTRAPOLATE_MAX_S = 0.5
OUTPUT_RETRY_S = 1.0
_URL = re.compile(rf"^{SCHEME}://(\d+)/(\d+)/(\d+)$")


def track_id_of(uri: str) -> str:
    return uri.rsplit(":", 1)[-1]


def mpv_volume(percent: int) -> float:
    """mpv's ``volume`` for a percentage: mpv's gain is ``(volume/100)**3``."""
    return float(100.0 * dsp.volume_gain(percent) ** (1.0 / 3.0))


def output_options(sink: str, rate: int, fast: bool) -> dict[str, Any]:
    """mpv options for a sink spec (``alsa[:PCM]``, ``file:PATH``, ``null``)."""
    common: dict[str, Any] = {
        "audio_format": "s16",
        "audio_samplerate": rate,
        "audio_channels": "stereo",
    }
    if sink == "null":
        return {"ao": "null", "ao_null_untimed": fast, **common}
    if sink.startswith("file:") and len(sink) > len("file:"):
        # append: mpv reopens the file when the output is reinitialised, and
        # must not truncate what was written before (the engine truncates once)
        return {
            "ao": "pcm",
            "ao_pcm_file": sink[len("file:") :],
            "ao_pcm_waveheader": False,
            "ao_pcm_append": True,
            **common,
        }
    if sink == "alsa" or (sink.startswith("alsa:") and len(sink) > len("alsa:")):
        pcm = sink[len("alsa:") :] if sink.startswith("alsa:") else "default"
        return {"ao": "alsa", "audio_device": f"alsa/{pcm}", **common}
    raise ValueError(f"unknown audio sink {sink!r}; expected alsa[:PCM], file:PATH or null")


# --- what mpv reads ------------------------------------------------------------------


class _SegmentStream:
    """One segment's bytes for mpv's stream callbacks: seekable, never raises, no locks
    (mpv's core may close it while the engine's lock is held elsewhere)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def size(self) -> int:
        return len(self._data)

    def read(self, size: int) -> bytes:
        out = self._data[self._pos : self._pos + size]
        self._pos += len(out)
        return out

    def seek(self, offset: int) -> int:
        self._pos = max(0, min(offset, len(self._data)))
        return self._pos

    def close(self) -> None:
        self._data = b""


# --- the plan ------------------------------------------------------------------------


@dataclass(eq=False)
class _Item:
    """One track as planned: where it starts, and what mpv and the fetcher know of it."""

    track: TrackRef
    gen: int
    start_ms: int
    track_id: str = ""
    manifest: Manifest | None = None
    failed: str | None = None
    queued: bool = False  # its entries are in mpv's playlist
    ready: bool = False  # mpv has opened its first entry and can play it
    started: bool = False  # it has been heard
    mpv_done: bool = False  # mpv has finished its last entry
    quality: Quality | None = None  # the ABR's latest choice for it
    held_ms: int = 0  # position before mpv reports one

    def __post_init__(self) -> None:
        self.track_id = track_id_of(self.track.uri)
        self.held_ms = self.start_ms

    @property
    def first(self) -> int:
        """The segment playback starts in."""
        assert self.manifest is not None
        return self.manifest.segment_at(self._start_frame())

    @property
    def segments(self) -> int:
        assert self.manifest is not None
        return len(self.manifest.boundaries) - 1

    def _start_frame(self) -> int:
        assert self.manifest is not None
        m = self.manifest
        return max(0, min(self.start_ms * m.sample_rate // 1000, m.frames - 1))

    def offset_s(self) -> float:
        """Where in its first segment playback starts; a quarter frame late so that
        mpv's hr-seek rounding never keeps the frame before the target."""
        assert self.manifest is not None
        off = self._start_frame() - self.manifest.boundaries[self.first]
        return (off + 0.25) / self.manifest.sample_rate if off else 0.0

    def seg_start_ms(self, n: int) -> float:
        assert self.manifest is not None
        return self.manifest.boundaries[n] * 1000 / self.manifest.sample_rate

    def seg_s(self, n: int) -> float:
        assert self.manifest is not None
        b = self.manifest.boundaries
        return (b[n + 1] - b[n]) / self.manifest.sample_rate


@dataclass(frozen=True, slots=True)
class _Fetched:
    quality: Quality
    data: bytes
    bad: str | None = None  # why the segment is skipped


@dataclass
class _Shared:
    """What the loop, mpv's threads and the fetcher share; guarded by ``cond``."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    plan: list[_Item] = field(default_factory=list)
    closed: bool = False
    paused: bool = True
    cache: dict[tuple[str, int], _Fetched] = field(default_factory=dict)
    manifests: dict[str, Manifest] = field(default_factory=dict)
    wanted: set[tuple[_Item, int]] = field(default_factory=set)
    at: tuple[_Item, int] | None = None  # the entry mpv is playing
    starting: tuple[_Item, int] | None = None  # the entry mpv started, not yet playing
    starting_since: float = 0.0
    time_pos: float | None = None  # mpv's time-pos within that entry
    time_pos_at: float = 0.0
    core_idle: bool = True
    stalled: bool = False  # for the ABR: an underrun since its last choice
    buffering: bool = False

    def item(self, gen: int) -> _Item | None:
        for it in self.plan:
            if it.gen == gen:
                return it
        return None

    def ahead_s(self) -> float:
        """Seconds of checked segments ahead of the play position, along the plan."""
        total = 0.0
        for it in self.plan:
            if it.manifest is None:
                break
            n0, into = it.first, it.offset_s()
            if self.at is not None and self.at[0] is it:
                n0, into = self.at[1], max(0.0, self.time_pos or 0.0)
            total -= into
            for n in range(n0, it.segments):
                if (it.track_id, n) not in self.cache:
                    return max(0.0, total)
                total += it.seg_s(n)
        return max(0.0, total)


def _rendition_for(manifest: Manifest, quality: Quality) -> Quality:
    """The chosen level if the manifest has it, else the best one below it (else the lowest)."""
    have = {r.quality for r in manifest.renditions}
    for q in sorted(Quality, reverse=True):
        if q <= quality and q.label in have:
            return q
    return Quality.parse(manifest.renditions[0].quality)


class _Fetcher:
    """Fetches manifests and segments ahead of playback on its own thread.

    Order: segments mpv is waiting for, then the current track from the play
    position up to the high watermark, then the next track once less than
    ``TARGET_S`` is ahead.  A segment that fails its checks is fetched once
    more, then skipped with an error (the native engine's decode-retry rule);
    a fetch the source calls permanent fails the whole track.
    """

    def __init__(
        self,
        shared: _Shared,
        source: SegmentSource,
        *,
        cap: Quality,
        pinned: bool,
        emit: EventCallback,
        changed: Callable[[], None],
    ) -> None:
        self._s = shared
        self._source = source
        self._cap, self._pinned = cap, pinned
        self._emit = emit
        self._changed = changed
        self._retry_at: dict[tuple[str, int], float] = {}  # (track id, segment or -1)
        self._wait: dict[tuple[str, int], float] = {}
        self._refetched: set[tuple[str, int]] = set()
        self._thread = threading.Thread(target=self._run, name="mpv-fetcher", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._s.cond:
                while True:
                    if self._s.closed:
                        return
                    job = self._next_job()
                    if job is not None:
                        break
                    self._s.cond.wait(0.1)
            item, n, quality = job
            try:
                if n < 0:
                    self._fetch_manifest(item)
                else:
                    assert quality is not None
                    self._fetch_segment(item, n, quality)
            except Exception:  # a bug must not stop every later fetch
                logger.exception("fetching for %s failed", item.track.uri)
                self._fail(item, "internal error while fetching audio")

    # --- choosing the next fetch (holds the lock) -----------------------------------

    def _next_job(self) -> tuple[_Item, int, Quality | None] | None:
        s = self._s
        self._prune()
        for item, n in sorted(s.wanted, key=lambda w: (s.plan.index(w[0]), w[1])):
            if item.failed is None and item.manifest is not None and self._due(item, n):
                return item, n, self._choose(item, n)
        for i, item in enumerate(s.plan):
            if item.failed is not None:
                continue
            ahead = s.ahead_s()
            if i > 0 and ahead >= TARGET_S:
                return None
            if item.manifest is None:
                return (item, -1, None) if self._due(item, -1) else None
            n0 = s.at[1] if s.at is not None and s.at[0] is item else item.first
            for n in range(n0, item.segments):
                if (item.track_id, n) in s.cache:
                    continue
                if ahead >= HIGH_WATERMARK_S + item.seg_s(n) or not self._due(item, n):
                    return None
                return item, n, self._choose(item, n)
        return None

    def _due(self, item: _Item, n: int) -> bool:
        if n >= 0 and (item.track_id, n) in self._s.cache:
            return False
        return self._retry_at.get((item.track_id, n), 0.0) <= time.monotonic()

    def _choose(self, item: _Item, n: int) -> Quality:
        assert item.manifest is not None
        held = self._source.held_quality(item.manifest)
        if held is not None:  # playing from an offline download: its quality
            item.quality = held
            return held
        stalled, self._s.stalled = self._s.stalled, False
        chosen = abr.choose(
            abr.AbrInput(
                current=item.quality,
                buffer_s=self._s.ahead_s(),
                throughput_bps=self._source.throughput_bps(),
                stalled=stalled,
                cap=self._cap,
                pinned=self._pinned,
            ),
            abr.AbrPolicy(low_watermark_s=LOW_WATERMARK_S, high_watermark_s=HIGH_WATERMARK_S),
        )
        quality = _rendition_for(item.manifest, chosen)
        if item.quality is not None and quality != item.quality:
            self._emit(
                EventKind.QUALITY_CHANGE,
                item.track.uri,
                f"{item.quality.label} -> {quality.label}",
            )
        item.quality = quality
        return quality

    def _prune(self) -> None:
        """Forget segments already played and tracks no longer planned."""
        s = self._s
        keep = {it.track_id for it in s.plan}
        playing = s.at[0].track_id if s.at is not None else None
        below = s.at[1] - 1 if s.at is not None else 0
        for key in [k for k in s.cache if k[0] not in keep or (k[0] == playing and k[1] < below)]:
            del s.cache[key]
        s.wanted = {w for w in s.wanted if w[0] in s.plan}

    # --- fetching (without the lock) ------------------------------------------------

    def _fetch_manifest(self, item: _Item) -> None:
        try:
            manifest = self._source.manifest(item.track_id)
        except SourceError as exc:
            self._failed_fetch(item, -1, exc)
            return
        with self._s.cond:
            self._forget_retry((item.track_id, -1))
            if len(self._s.manifests) > 16:
                self._s.manifests.clear()
            self._s.manifests[item.track_id] = manifest
            for it in self._s.plan:
                if it.track_id == item.track_id and it.manifest is None:
                    it.manifest = manifest
            self._s.cond.notify_all()
        self._changed()

    def _fetch_segment(self, item: _Item, n: int, quality: Quality) -> None:
        assert item.manifest is not None
        rendition = item.manifest.rendition(quality)
        key = (item.track_id, n)
        try:
            data = self._source.segment(item.manifest, quality, n)
        except SourceError as exc:
            self._failed_fetch(item, n, exc)
            return
        try:
            if needs_page_check(data):  # the cache's bytes are proven by their GCM tag
                check_segment(data, rendition.segments[n].frames, rendition)
            fetched = _Fetched(quality, data)
        except BadSegmentError as exc:
            if key not in self._refetched:
                self._refetched.add(key)
                logger.warning("segment %d of %s: %s; fetching it again", n, item.track_id, exc)
                return
            message = f"skipped segment {n}: {exc}"
            logger.warning("%s: %s", item.track.uri, message)
            self._emit(EventKind.ERROR, item.track.uri, message)
            fetched = _Fetched(quality, b"", bad=message)
        with self._s.cond:
            self._refetched.discard(key)
            self._forget_retry(key)
            if any(it.track_id == item.track_id for it in self._s.plan):
                self._s.cache[key] = fetched
            self._s.cond.notify_all()

    def _failed_fetch(self, item: _Item, n: int, exc: SourceError) -> None:
        if not exc.retryable:
            self._fail(item, str(exc))
            return
        key = (item.track_id, n)
        with self._s.cond:
            wait = self._wait.get(key, 0.1)
            self._retry_at[key] = time.monotonic() + wait
            self._wait[key] = min(wait * 2, RETRY_MAX_S)
        logger.info("fetch for %s failed (%s); retrying in %.1f s", item.track_id, exc, wait)

    def _forget_retry(self, key: tuple[str, int]) -> None:
        self._retry_at.pop(key, None)
        self._wait.pop(key, None)

    def _fail(self, item: _Item, message: str) -> None:
        """The track cannot play: say why; the engine ends it so playback moves on."""
        self._emit(EventKind.ERROR, item.track.uri, message)
        with self._s.cond:
            item.failed = message
            self._s.cond.notify_all()
        self._changed()


_MPV_ERRORS = {
    mpv.ErrorCode.LOADING_FAILED: "could not be loaded",
    mpv.ErrorCode.AO_INIT_FAILED: "audio output failed to open",
    mpv.ErrorCode.NOTHING_TO_PLAY: "has no audio mpv can play",
    mpv.ErrorCode.UNKNOWN_FORMAT: "is in a format mpv does not know",
}


def _quoted(value: str) -> str:
    """mpv's length-prefixed quoting, so commas inside a per-file option survive."""
    return f"%{len(value.encode())}%{value}"


class MpvEngine:
    """The ``Engine`` interface on libmpv; see the module docstring for what differs."""

    def __init__(
        self,
        on_track_ended: Callable[[str], None],
        *,
        source: SegmentSource,
        config: SpeakerConfig,
        on_event: EventCallback | None = None,
        on_report: ReportCallback | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        fast: bool = False,
    ) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._on_track_ended = on_track_ended
        self._on_event = on_event
        self._on_report = on_report
        self._source = source
        self._normalisation = config.normalisation
        self._target_lufs = config.target_lufs
        self._s = _Shared()
        self._gen = 0
        self._serial = 0
        self._absorb: str | None = None  # the uri a gapless join already started
        self._entering: _Item | None = None  # next track mpv has started, not yet heard
        self._fresh = True  # mpv's playlist holds nothing of the plan (loop only)
        self._urls: dict[int, str] = {}  # mpv playlist entry id -> url (event thread)
        self._mpv_lock = threading.Lock()  # the event thread's mpv calls vs. close()
        self._sink = config.sink
        self._retrying_output = False  # guarded by the lock
        self._retry_from_ms = 0
        self._output_error = False  # said once, until mpv has an output again
        self.first_audio_ns: int | None = None  # monotonic time of the latest first audio
        options = output_options(config.sink, config.sample_rate, fast)
        if options["ao"] == "pcm":
            path = Path(options["ao_pcm_file"])
            try:
                path.write_bytes(b"")  # start empty; mpv appends
            except OSError as exc:
                raise SinkError(f"cannot write audio to {path}: {exc.strerror}") from exc
        self._player: Any = mpv.MPV(
            vid="no",
            ytdl=False,
            load_scripts=False,
            input_default_bindings=False,
            idle=True,
            pause=True,
            gapless_audio="yes",
            prefetch_playlist=True,
            hr_seek="yes",
            log_handler=self._mpv_log,
            loglevel="warn",
            **options,
        )
        self._player.register_stream_protocol(SCHEME, self._open)
        self._player.register_event_callback(self._on_mpv_event)
        for name in ("time-pos", "core-idle", "idle-active", "current-ao"):
            self._player.observe_property(name, self._on_property)
        self._player.volume = mpv_volume(50)
        cap = Quality.VERY_HIGH if config.quality == "auto" else Quality.parse(config.quality)
        self._fetcher = _Fetcher(
            self._s,
            source,
            cap=cap,
            pinned=config.quality != "auto",
            emit=self._emit,
            changed=lambda: self._call(self._sync),
        )

    # --- the Engine interface (called on the event loop; never blocks) -----------------

    def load(self, track: TrackRef, position_ms: int, playing: bool) -> None:
        with self._s.cond:
            # the gapless join already did this (the track may even be over: fast sinks)
            absorbed = self._absorb == track.uri and position_ms == 0
            if absorbed:
                self._absorb = None
        if absorbed:
            self.set_playing(playing)
            return
        self._restart(track, position_ms, playing)

    def set_next(self, track: TrackRef | None) -> None:
        """What plays after the current track: its entries follow the current ones."""
        with self._s.cond:
            plan = self._s.plan
            if not plan:
                return
            old = plan[1] if len(plan) > 1 else None
            if (old is None and track is None) or (
                old is not None and track is not None and old.track.uri == track.uri
            ):
                return
            self._s.plan = [plan[0]]
            if self._entering is old:
                self._entering = None
            if track is not None:
                self._s.plan.append(self._new_item(track, 0))
            self._s.cond.notify_all()
        if old is not None and old.queued:
            self._remove_entries(old.gen)
        self._sync()

    def set_playing(self, playing: bool) -> None:
        with self._s.cond:
            self._absorb = None
            self._s.paused = not playing
            plan = self._s.plan
            first = bool(plan) and playing and plan[0].ready and not plan[0].started
            if first:
                plan[0].started = True
        self._player.pause = not playing
        if first:
            self._first_audio(plan[0])
        if playing and self._fresh:
            self._sync()

    def seek(self, position_ms: int) -> None:
        with self._s.cond:
            self._absorb = None
            if not self._s.plan:
                return
            track, playing = self._s.plan[0].track, not self._s.paused
        self._restart(track, position_ms, playing)

    def set_volume(self, volume_percent: int) -> None:
        self._player.volume = mpv_volume(volume_percent)

    def unload(self) -> None:
        with self._s.cond:
            self._absorb = None
            self._entering = None
            self._s.plan = []
            self._s.at = self._s.starting = None
            self._s.paused = True
            self._s.buffering = False
            self._s.cond.notify_all()
        self._player.pause = True
        self._player.command("stop")
        self._fresh = True

    def position_ms(self) -> int:
        with self._s.cond:
            return self._position_locked()

    def needs_network(self) -> bool:
        """Downloads never wait for this engine's prefetch."""
        return False

    def close(self) -> None:
        with self._mpv_lock, self._s.cond:
            if self._s.closed:
                return
            self._s.closed = True
            self._s.plan = []
            self._s.cond.notify_all()
        self._player.terminate()
        self._fetcher.join(timeout=5)
        self._source.close()

    # --- loop-side helpers --------------------------------------------------------------

    def _new_item(self, track: TrackRef, start_ms: int) -> _Item:
        """(Holds the lock.)"""
        self._gen += 1
        item = _Item(track, self._gen, max(0, min(start_ms, track.duration_ms)))
        item.manifest = self._s.manifests.get(item.track_id)
        return item

    def _restart(self, track: TrackRef, position_ms: int, playing: bool) -> None:
        """Play ``track`` from ``position_ms`` with nothing planned after it (load, seek)."""
        with self._s.cond:
            self._absorb = None
            self._entering = None
            item = self._new_item(track, position_ms)
            self._s.plan = [item]
            self._s.at = self._s.starting = None
            self._s.time_pos = None
            self._s.paused = not playing
            self._s.buffering = False
            self._s.cond.notify_all()
        self._player.pause = not playing
        self._fresh = True
        if item.manifest is None:
            self._player.command("stop")  # silence the old track while the manifest comes
        self._sync()

    def _sync(self) -> None:
        """Give mpv the entries of planned tracks whose manifest is known, in plan order;
        end a track that failed before mpv got it.

        A track loaded paused is given to mpv only when it plays: mpv fills the
        output's buffer while paused, and ``ao=pcm`` or alsa-lib's file PCM would
        write that audio out even if a seek then discards it.
        """
        ended: list[str] = []
        entries: list[tuple[str, str]] = []
        with self._s.cond:
            if self._s.closed:
                return
            plan = self._s.plan
            while plan and plan[0].failed is not None and not plan[0].queued:
                ended.append(plan.pop(0).track.uri)
                if plan:
                    self._absorb = plan[0].track.uri
            for item in [] if self._fresh and self._s.paused else plan:
                if item.queued:
                    continue
                if item.failed is not None or item.manifest is None:
                    break
                item.queued = True
                entries.extend(self._entries(item))
        for url, options in entries:
            mode = "replace" if self._fresh else "append-play"
            self._fresh = False
            self._player.command("loadfile", url, mode, options)
        for uri in ended:
            self._call(self._on_track_ended, uri)

    def _entries(self, item: _Item) -> list[tuple[str, str]]:
        """One playlist entry per segment from where the item starts. (Holds the lock.)"""
        assert item.manifest is not None
        af = self._filters(item.manifest)
        out = []
        for n in range(item.first, item.segments):
            self._serial += 1
            options = [f"af={_quoted(af)}"] if af else []
            if n == item.first and item.offset_s():
                options.append(f"start={item.offset_s():.9f}")
            out.append((f"{SCHEME}://{item.gen}/{n}/{self._serial}", ",".join(options)))
        return out

    def _filters(self, manifest: Manifest) -> str:
        """Mono widened at full level, loudness gain, and a limiter when the gain
        would push the track's true peak over the ceiling."""
        parts = []
        if any(r.channels == 1 for r in manifest.renditions):
            parts.append("pan=stereo|FL=FL+FC|FR=FR+FC")
        if self._normalisation != "off":
            loudness = manifest.loudness
            gain_db = dsp.normalisation_gain_db(loudness, self._normalisation, self._target_lufs)
            if abs(gain_db) >= 0.01:
                parts.append(f"volume={gain_db:.2f}dB")
            peak = (
                loudness.track_peak_dbtp
                if self._normalisation == "track"
                else loudness.album_peak_dbtp
            )
            if math.isfinite(peak) and peak + gain_db > LIMITER_CEILING_DBFS:
                limit = dsp.db_to_gain(LIMITER_CEILING_DBFS)
                parts.append(f"alimiter=limit={limit:.6f}:level=0:latency=1:attack=5:release=80")
        return f"lavfi=[{','.join(parts)}]" if parts else ""

    def _remove_entries(self, gen: int) -> None:
        playlist = self._player.playlist
        for index in reversed(range(len(playlist))):
            m = _URL.match(str(playlist[index].get("filename", "")))
            if m is not None and int(m.group(1)) == gen:
                self._player.command("playlist-remove", index)

    def _prune_playlist(self) -> None:
        """Drop finished entries of tracks no longer planned (they would pile up)."""
        with self._s.cond:
            gens = {it.gen for it in self._s.plan}
            if self._s.closed:
                return
        playlist = self._player.playlist
        stale = 0
        for entry in playlist:
            m = _URL.match(str(entry.get("filename", "")))
            if entry.get("current") or entry.get("playing") or (m and int(m.group(1)) in gens):
                break
            stale += 1
        for _ in range(stale):
            self._player.command("playlist-remove", 0)

    def _first_audio(self, item: _Item) -> None:
        self.first_audio_ns = time.monotonic_ns()
        self._report(item.track.uri, self.position_ms(), False)

    # --- position (holds the lock) ------------------------------------------------------

    def _position_locked(self) -> int:
        s = self._s
        if not s.plan:
            return 0
        current = s.plan[0]
        if self._retrying_output:
            return self._retry_from_ms
        at = s.at
        if (
            at is None
            or s.time_pos is None
            or (at[0] is not current and at[0] is not self._entering)
        ):
            return current.held_ms
        t = s.time_pos
        if not s.paused and not s.core_idle and not s.buffering:
            t += min(time.monotonic() - s.time_pos_at, EXTRAPOLATE_MAX_S)
        if at[0] is current:
            ms = current.seg_start_ms(at[1]) + t * 1000
        else:  # the next track's first entry: before 0 its start is not heard yet
            ms = current.track.duration_ms + t * 1000
        return int(max(0, min(ms, current.track.duration_ms)))

    # --- mpv's threads ---------------------------------------------------------------------

    def _open(self, uri: str) -> _SegmentStream:
        """mpv opens an entry (on one of its threads): wait for the fetcher's bytes.

        Raising ``ValueError`` makes mpv skip the entry: a superseded or failed
        track, or a segment that failed its checks.  Waiting on a segment that
        should already be playing is an underrun.
        """
        m = _URL.match(uri)
        if m is None:
            raise ValueError(uri)
        gen, n = int(m.group(1)), int(m.group(2))
        s = self._s
        with s.cond:
            while True:
                item = s.item(gen)
                if s.closed or item is None or item.failed is not None or item.manifest is None:
                    raise ValueError(uri)
                got = s.cache.get((item.track_id, n))
                if got is not None:
                    s.wanted.discard((item, n))
                    if got.bad is not None:
                        raise ValueError(uri)
                    if s.buffering:
                        s.buffering = False
                        self._report(item.track.uri, self._position_locked(), False)
                    return _SegmentStream(got.data)
                if (item, n) not in s.wanted:
                    s.wanted.add((item, n))
                    s.cond.notify_all()
                if not s.buffering and self._dry(item, n):
                    s.buffering = s.stalled = True
                    self._emit(EventKind.UNDERRUN, item.track.uri, "segment not here in time")
                    self._report(item.track.uri, self._position_locked(), True)
                s.cond.wait(0.05)

    def _dry(self, item: _Item, n: int) -> bool:
        """mpv has moved on to this entry of a track already heard, and the output's
        buffer has had time to run out. (Holds the lock.)"""
        s = self._s
        return (
            s.starting is not None
            and s.starting[0] is item
            and s.starting[1] == n
            and item.started
            and not s.paused
            and time.monotonic() - s.starting_since > DRY_AFTER_S
        )

    def _on_mpv_event(self, event: Any) -> None:
        try:
            eid = event.event_id.value
            if eid == mpv.MpvEventID.START_FILE:
                self._file_started(event.data.playlist_entry_id)
            elif eid == mpv.MpvEventID.END_FILE:
                data = event.data
                self._file_ended(data.playlist_entry_id, data.reason, data.error)
            elif eid == mpv.MpvEventID.PLAYBACK_RESTART:
                self._restarted()
        except Exception:  # never into python-mpv's loop, which would only warn
            logger.exception("mpv event handler failed")

    def _entry(self, entry_id: int) -> tuple[int, int] | None:
        """(gen, segment) of an mpv playlist entry, by its id."""
        url = self._urls.get(entry_id)
        if url is None:
            with self._mpv_lock:
                if self._s.closed:
                    return None
                playlist = self._player.playlist
            self._urls = {int(e["id"]): str(e["filename"]) for e in playlist if "id" in e}
            url = self._urls.get(entry_id)
        m = _URL.match(url or "")
        return (int(m.group(1)), int(m.group(2))) if m else None

    def _file_started(self, entry_id: int) -> None:
        key = self._entry(entry_id)
        s = self._s
        with s.cond:
            item = s.item(key[0]) if key else None
            if item is None or key is None:
                return
            s.starting, s.starting_since = (item, key[1]), time.monotonic()
            if item is not s.plan[0]:
                self._entering = item

    def _file_ended(self, entry_id: int, reason: int, error: int) -> None:
        key = self._entry(entry_id)
        s = self._s
        with s.cond:
            item = s.item(key[0]) if key else None
            if item is None or key is None:
                return
            n = key[1]
            got = s.cache.get((item.track_id, n))
            expected = item.failed is not None or (got is not None and got.bad is not None)
            failed = reason == mpv.MpvEventEndFile.ERROR and not expected and not s.closed
            if failed and error == mpv.ErrorCode.AO_INIT_FAILED:
                self._output_failed(item)
            elif failed:
                what = _MPV_ERRORS.get(error, f"failed (mpv error {error})")
                self._emit(EventKind.ERROR, item.track.uri, f"segment {n} {what}")
            if n == item.segments - 1:
                item.mpv_done = True
        self._urls.pop(entry_id, None)

    def _output_failed(self, item: _Item) -> None:
        """The audio output did not open: say so once and try again in a second, from
        where the track was, rather than let mpv skip through the queue. (Holds the lock.)"""
        if self._retrying_output:
            return
        self._retrying_output = True
        self._retry_from_ms = self._position_locked()  # later entries failed unheard
        if not self._output_error:
            self._output_error = True
            logger.error("audio output %s failed to open (retrying)", self._sink)
            self._emit(EventKind.ERROR, item.track.uri, f"audio output {self._sink} failed to open")
        self._call(self._loop.call_later, OUTPUT_RETRY_S, self._retry_output)

    def _retry_output(self) -> None:
        with self._s.cond:
            self._retrying_output = False
            if not self._s.plan or self._s.closed:
                return
            current, after = self._s.plan[0], self._s.plan[1:]
            position, playing = self._retry_from_ms, not self._s.paused
        self._restart(current.track, position, playing)
        if after:
            self.set_next(after[0].track)

    def _restarted(self) -> None:
        """mpv plays the entry it started (its ``time-pos`` counts from now on); for
        the first entry of a load or seek, that is the first audio."""
        s = self._s
        with s.cond:
            if s.starting is None:
                return
            s.at, s.starting, s.time_pos = s.starting, None, None
            item = s.at[0]
            if item is s.plan[0] and s.at[1] != item.first:
                item.held_ms = int(item.seg_start_ms(s.at[1]))
            first = (
                item is s.plan[0] and not item.started and not s.paused and not self._output_error
            )
            if item is s.plan[0]:
                item.ready = True
            if first:
                item.started = True
        if first:
            self._first_audio(item)

    def _on_property(self, name: str, value: Any) -> None:
        try:
            if name == "time-pos":
                self._time_pos(value)
            elif name == "core-idle":
                with self._s.cond:
                    self._s.core_idle = bool(value)
            elif name == "idle-active" and value:
                self._went_idle()
            elif name == "current-ao" and value:
                with self._s.cond:
                    back, self._output_error = self._output_error, False
                if back:
                    logger.info("audio output %s is back", self._sink)
        except Exception:
            logger.exception("mpv property handler failed")

    def _time_pos(self, value: float | None) -> None:
        s = self._s
        ended = None
        with s.cond:
            if s.starting is not None or value is None:
                return  # between entries: mpv's values before one plays (none, then 0)
            s.time_pos, s.time_pos_at = value, time.monotonic()
            entering = self._entering
            if (
                value is not None
                and value >= 0
                and entering is not None
                and s.at is not None
                and s.at[0] is entering
            ):
                ended = self._join_heard()
        if ended is not None:
            self._call(self._on_track_ended, ended)
            self._call(self._prune_playlist)

    def _join_heard(self) -> str | None:
        """The next track is audible: the current one ended. (Holds the lock.)"""
        plan = self._s.plan
        if self._entering is None or len(plan) < 2 or plan[1] is not self._entering:
            self._entering = None
            return None
        finished = plan.pop(0)
        self._entering = None
        plan[0].started = True
        self._absorb = plan[0].track.uri
        return finished.track.uri

    def _went_idle(self) -> None:
        """mpv played out its playlist: the tracks it finished have ended."""
        ended: list[str] = []
        with self._s.cond:
            plan = self._s.plan
            if self._retrying_output:
                return  # nothing was heard: the track plays again once the output opens
            joined = self._join_heard() if self._entering is not None else None
            if joined is not None:
                ended.append(joined)
            while plan and plan[0].mpv_done:
                ended.append(plan.pop(0).track.uri)
                if plan:
                    self._absorb = plan[0].track.uri
            if ended and not plan:
                self._s.at = self._s.starting = None
        for uri in ended:
            self._call(self._on_track_ended, uri)
        if ended:
            self._call(self._sync)
            self._call(self._prune_playlist)

    def _mpv_log(self, level: str, prefix: str, text: str) -> None:
        log = logger.warning if level == "fatal" else logger.debug
        log("mpv %s: %s", prefix, text.rstrip())

    # --- callbacks onto the loop ----------------------------------------------------------

    def _call(self, fn: Callable[..., object], *args: object) -> None:
        if self._s.closed:
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed
            self._loop.call_soon_threadsafe(fn, *args)

    def _emit(self, kind: EventKind, uri: str | None, message: str) -> None:
        if self._on_event is not None:
            self._call(self._on_event, kind, uri, message)

    def _report(self, uri: str, position_ms: int, buffering: bool) -> None:
        if self._on_report is not None:
            self._call(self._on_report, uri, position_ms, buffering)
