"""The native engine: manifest + segments -> libvorbisfile -> DSP -> PCM queue -> sink.

Three threads do the work so the event loop never waits on audio:

- the *fetcher* fetches segments (ABR choosing each one's quality), checks
  their pages and keeps them compressed, running ahead of playback up to the
  high watermark and straight on into the next track, so track joins never
  wait on the network;
- the *decoder* keeps only a few seconds decoded ahead of the sink: it decodes
  the compressed segments a block at a time, resamples to the sink's rate,
  applies loudness normalisation and the limiter, and queues PCM tagged with
  its item and track position.  Thirty seconds of buffer cost ~1.4 MB
  compressed against 6 MB as PCM, which a small speaker notices; and the
  first block of a track is out after its first packets, not its first
  segment;
- the *sink thread* takes PCM in period-sized pieces, applies the volume
  (ramped, so a change never clicks) and writes it to the sink.  What it has
  written, minus the device's delay, is the position it reports.

The controller's calls (``load``, ``seek``...) only change the plan under a
lock and wake the threads; every call returns at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from connect_protocol.media import SEGMENT_S, Manifest, Quality
from connect_protocol.messages import EventKind, TrackRef
from connect_protocol.ogg import BadSegmentError, check_segment
from device import abr
from device.audio import dsp
from device.audio.decoder import DecodeFailedError, SegmentDecoder
from device.audio.pcm_queue import Chunk, PcmQueue
from device.audio.sinks import Sink, SinkError
from device.audio.source import SegmentSource, SourceError, TooSlowError, needs_page_check
from device.audio.timeline import Timeline
from device.engine_api import EventCallback, ReportCallback

logger = logging.getLogger(__name__)

LIMITER_CEILING_DBFS = -1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineOptions:
    quality: str = "auto"  # auto or a level: the cap (auto = very_high), pinned if a level
    normalisation: str = "track"  # track, album or off
    target_lufs: float = -14.0
    low_watermark_s: float = 5.0
    target_s: float = 20.0  # refill when the buffer falls below this
    high_watermark_s: float = 30.0
    resume_s: float = 2.0  # after an underrun, buffer this much before playing on
    block_frames: int = 2048  # what the sink thread writes at a time (46 ms: pause latency)
    decoded_ahead_s: float = 3.0  # PCM kept decoded (the rest of the buffer stays compressed)
    decode_block_frames: int = 32768  # what the decoder decodes at a time after a first block
    retry_max_s: float = 2.0  # longest wait between retries of a failed fetch
    crossfade_s: float = 0.0  # 0-12; never between consecutive tracks of one album


@dataclass(slots=True)
class _Item:
    track: TrackRef
    track_id: str
    start_ms: int
    gen: int
    produced: bool = False  # all its PCM is queued (or it failed)
    fetched: bool = False  # all its segments are fetched (or it failed)
    begun: bool = False  # the fetcher has started on it


@dataclass(slots=True)
class _Cursor:
    """One item's progress: ``segment`` and ``retried_check`` belong to the fetcher,
    everything below them to the decoder."""

    item: _Item
    manifest: Manifest
    segment: int  # the next segment to fetch
    skip_src: int  # source frames to drop at the start of the first segment (a seek)
    start_sink: int  # the item's first frame at the sink rate
    retried_check: bool = False
    emitted: int = 0  # sink frames queued for the item
    quality: Quality | None = None  # of the last segment decoded
    resampler: dsp.StreamResampler | None = None
    resampler_rate: int = 0
    limiter: dsp.Limiter | None = None
    gain: float = 1.0
    held: NDArray[np.float32] | None = None  # the track's end, held back for a crossfade


@dataclass(slots=True)
class _Fetched:
    """A checked segment waiting to be decoded (``data`` None: skip it; ``cursor``
    None: the item failed and ends here)."""

    item: _Item
    cursor: _Cursor | None
    n: int
    quality: Quality | None
    data: bytes | None
    frames: int  # its length at the sink rate
    last: bool
    retried: bool = False  # fetched once more after failing to decode
    decoded: int = 0  # how much of ``frames`` the decoder has done (it owns this field)


@dataclass(slots=True)
class _Active:
    """The segment the decoder is working through."""

    fetched: _Fetched
    decoder: SegmentDecoder | None  # None once given up on
    skip: int  # frames still to drop from its start (a seek, or a resumed decode)
    rate: int

    @property
    def finished(self) -> bool:
        return self.decoder is None or self.decoder.finished


def track_id_of(uri: str) -> str:
    return uri.rsplit(":", 1)[-1]


def sink_frames(src_frames: int, src_rate: int, sink_rate: int) -> int:
    """A track position in source frames, at the sink's rate."""
    return src_frames * sink_rate // src_rate


class NativeEngine:
    def __init__(
        self,
        on_track_ended: Callable[[str], None],
        *,
        source: SegmentSource,
        sink: Sink,
        options: EngineOptions = EngineOptions(),
        on_event: EventCallback | None = None,
        on_report: ReportCallback | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._on_track_ended = on_track_ended
        self._on_event = on_event
        self._on_report = on_report
        self._source = source
        self._sink = sink
        self._opts = options
        self._rate = sink.rate
        # one lock guards the plan, playing, volume, epoch and both queues; each thread
        # waits on its own condition of it, so a block of audio wakes only its consumer
        mutex = threading.RLock()
        self._lock = threading.Condition(mutex)
        self._fetch_wake = threading.Condition(mutex)
        self._decode_wake = threading.Condition(mutex)
        self._sink_wake = threading.Condition(mutex)
        self._queue = PcmQueue()
        # fetched and not yet fully decoded; the head is the one the decoder is on
        self._compressed: deque[_Fetched] = deque()
        # a sink that runs as fast as it can has no pause latency to keep short
        self._write_frames = options.block_frames * (8 if sink.fast else 1)
        self._decoded_ahead = int(max(options.decoded_ahead_s, options.resume_s + 1.0) * self._rate)
        self._timeline = Timeline()
        self._plan: list[_Item] = []
        self._gen = 0
        self._epoch = 0  # bumped when queued audio must be discarded (load, seek, unload)
        self._playing = False
        self._volume_percent = 50
        self._volume = dsp.volume_gain(50)
        self._absorb: str | None = None  # the uri a gapless join already started
        self._closed = False
        self._buffering = False
        self._stalled = False  # for the ABR: the sink ran dry since its last choice
        self._started: set[int] = set()  # items whose first frame has been written
        self._sink_open = False
        self._sink_error: str | None = None
        self._held_position_ms = 0  # reported while nothing has been written yet
        self.first_audio_ns: int | None = None  # monotonic time of the latest first frame
        cap = Quality.VERY_HIGH if options.quality == "auto" else Quality.parse(options.quality)
        self._cap, self._pinned = cap, options.quality != "auto"
        self._quality: Quality | None = None  # the ABR's last choice (producer thread)
        self._carry: _Carry | None = None  # a track's withheld tail, to fade into the next
        self._threads = [
            threading.Thread(target=self._fetch_loop, name="audio-fetcher", daemon=True),
            threading.Thread(target=self._decode_loop, name="audio-decoder", daemon=True),
            threading.Thread(target=self._write, name="audio-sink", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # --- the Engine interface (called on the event loop; never blocks) -----------

    def load(self, track: TrackRef, position_ms: int, playing: bool) -> None:
        with self._lock:
            if self._absorb == track.uri and position_ms == 0 and self._plan:
                self._absorb = None  # the gapless join already did this
                self._playing = playing
                self._wake_all()
                return
            self._absorb = None
            self._gen += 1
            self._plan = [_Item(track, track_id_of(track.uri), position_ms, self._gen)]
            self._playing = playing
            self._discard(position_ms)

    def set_next(self, track: TrackRef | None) -> None:
        """What plays after the current track, so it can be fetched and decoded ahead."""
        with self._lock:
            if not self._plan:
                return
            current = self._plan[0]
            nxt = self._plan[1] if len(self._plan) > 1 else None
            if nxt is not None and track is not None and nxt.track.uri == track.uri:
                return
            if nxt is None and track is None:
                return
            self._plan = [current]
            if track is not None:
                self._gen += 1
                self._plan.append(_Item(track, track_id_of(track.uri), 0, self._gen))
            self._queue.drop(keep={current.gen})
            self._compressed = deque(f for f in self._compressed if f.item is current)
            self._wake_all()

    def set_playing(self, playing: bool) -> None:
        with self._lock:
            self._absorb = None
            self._playing = playing
            if not playing:
                self._held_position_ms = self._position_locked()
            self._wake_all()

    def seek(self, position_ms: int) -> None:
        with self._lock:
            self._absorb = None
            if not self._plan:
                return
            current = self._plan[0]
            self._gen += 1
            self._plan = [_Item(current.track, current.track_id, position_ms, self._gen)]
            self._discard(position_ms)

    def set_volume(self, volume_percent: int) -> None:
        with self._lock:
            self._volume_percent = volume_percent
            self._apply_volume()

    def _apply_volume(self) -> None:
        """On the board's hardware mixer when it has one (full resolution), else in software."""
        if self._sink_open and self._sink.hardware_volume:
            try:
                self._sink.set_volume(self._volume_percent)
                self._volume = 1.0
                return
            except SinkError as exc:
                logger.warning("hardware volume failed (%s); using software volume", exc)
        self._volume = dsp.volume_gain(self._volume_percent)

    def unload(self) -> None:
        with self._lock:
            self._absorb = None
            self._plan = []
            self._playing = False
            self._discard(0)

    def position_ms(self) -> int:
        with self._lock:
            return self._position_locked()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._plan = []
            self._wake_all()
        with self._queue.cond:
            self._queue.cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)
        self._source.close()
        if self._sink_open:
            self._sink.close()

    # --- shared helpers (hold self._lock) ---------------------------------------

    def _wake_all(self) -> None:
        """The plan changed: every thread looks again."""
        for condition in (self._lock, self._fetch_wake, self._decode_wake, self._sink_wake):
            condition.notify_all()

    def _discard(self, position_ms: int) -> None:
        """A load or seek: everything queued is stale, down to what the device holds,
        which is dropped too (else the old track is heard for a buffer's length)."""
        self._epoch += 1
        if self._sink_open:
            try:
                self._sink.drop()  # also releases a write blocked on a full device
            except SinkError as exc:
                logger.warning("could not drop the audio queued in %s: %s", self._sink.name, exc)
        self._queue.drop()
        self._compressed.clear()
        self._timeline.reset()
        self._started.clear()
        self._buffering = False
        self._held_position_ms = position_ms
        self._wake_all()
        with self._queue.cond:
            self._queue.cond.notify_all()

    def _position_locked(self) -> int:
        if not self._plan:
            return 0
        current = self._plan[0]
        if current.gen not in self._started:
            return self._held_position_ms
        delay = self._sink.delay_frames() if self._sink_open else 0
        found = self._timeline.heard(max(0, self._timeline.written - delay))
        if found is None or found[0].gen != current.gen:
            return self._held_position_ms
        ms = found[1] * 1000 // self._rate
        return min(ms, current.track.duration_ms)

    def _emit(self, kind: EventKind, uri: str | None, message: str) -> None:
        if self._on_event is not None:
            self._loop.call_soon_threadsafe(self._on_event, kind, uri, message)

    def _report(self, uri: str, position_ms: int, buffering: bool) -> None:
        if self._on_report is not None:
            self._loop.call_soon_threadsafe(self._on_report, uri, position_ms, buffering)

    # --- fetcher thread -------------------------------------------------------------

    def _buffered_frames(self) -> int:
        """Audio ahead of the sink, decoded or not, at the sink rate (the ABR's buffer)."""
        return self._queue.frames + sum(f.frames - f.decoded for f in self._compressed)

    def _fetch_loop(self) -> None:
        cursor: _Cursor | None = None
        epoch = -1
        while True:
            with self._lock:
                while True:
                    if self._closed:
                        return
                    if epoch != self._epoch:
                        cursor, epoch = None, self._epoch
                    if cursor is not None and cursor.item not in self._plan:
                        cursor = None  # its item was withdrawn (a new next track)
                    item = cursor.item if cursor else self._work()
                    if item is not None and self._wants_more(item):
                        break
                    self._fetch_wake.wait(0.25)
            try:
                if cursor is None:
                    cursor = self._open(item, epoch)
                    if cursor is None:
                        continue
                self._fetch_step(cursor, epoch)
                if cursor.item.fetched:
                    cursor = None
            except _Superseded:
                cursor = None
            except Exception:  # a bug must not silence the speaker for good
                logger.exception("audio fetcher failed on %s", item.track.uri)
                self._fail_item(item, epoch, "internal error while preparing audio")
                cursor = None

    def needs_network(self) -> bool:
        """Playback is fetching (under its high watermark): downloads wait their turn."""
        with self._lock:
            item = self._work()
            return not self._closed and item is not None and self._wants_more(item)

    def _work(self) -> _Item | None:
        for item in self._plan:
            if not item.fetched:
                return item
        return None

    def _wants_more(self, item: _Item) -> bool:
        """Fill up to one segment past the high watermark (where the ABR may rise);
        start on the next track once the rest of this one is under the target."""
        buffered = self._buffered_frames() / self._rate
        if item is not self._plan[0] and not item.begun and buffered >= self._opts.target_s:
            return False
        return buffered < self._opts.high_watermark_s + SEGMENT_S

    def _still(self, epoch: int, item: _Item) -> None:
        with self._lock:
            if self._closed or epoch != self._epoch or item not in self._plan:
                raise _Superseded

    def _open(self, item: _Item, epoch: int) -> _Cursor | None:
        item.begun = True
        manifest = self._retrying(item, epoch, lambda: self._source.manifest(item.track_id))
        if manifest is None:
            return None
        src_frame = min(item.start_ms * manifest.sample_rate // 1000, manifest.frames - 1)
        n = manifest.segment_at(max(0, src_frame))
        skip = max(0, src_frame) - manifest.boundaries[n]
        gain, gain_db = 1.0, 0.0
        if self._opts.normalisation != "off":
            gain_db = dsp.normalisation_gain_db(
                manifest.loudness, self._opts.normalisation, self._opts.target_lufs
            )
            gain = float(10 ** (gain_db / 20))
        # the limiter only where the gain could push the track's true peak past its ceiling
        # (with a crossfade, two tracks add up: keep it then too)
        peak = manifest.loudness.track_peak_dbtp + gain_db
        needs_limiter = peak > LIMITER_CEILING_DBFS - 0.5 or self._opts.crossfade_s > 0
        return _Cursor(
            item=item,
            manifest=manifest,
            segment=n,
            skip_src=skip,
            start_sink=sink_frames(max(0, src_frame), manifest.sample_rate, self._rate),
            gain=gain,
            limiter=dsp.Limiter(self._rate, LIMITER_CEILING_DBFS) if needs_limiter else None,
        )

    def _retrying(self, item: _Item, epoch: int, fetch: Callable[[], Manifest]) -> Manifest | None:
        wait = 0.1
        while True:
            self._still(epoch, item)
            try:
                return fetch()
            except SourceError as exc:
                if not exc.retryable:
                    self._fail_item(item, epoch, str(exc))
                    return None
                logger.info("fetch failed (%s); retrying in %.1f s", exc, wait)
            self._sleep(epoch, wait)
            wait = min(wait * 2, self._opts.retry_max_s)

    def _sleep(self, epoch: int, seconds: float) -> None:
        with self._lock:
            self._fetch_wake.wait_for(lambda: self._closed or epoch != self._epoch, timeout=seconds)

    def _choose(self, cursor: _Cursor) -> Quality:
        """The ABR's pick for the next segment; its memory spans tracks, like the network's.

        A track playing from its offline download plays at the quality downloaded."""
        held = self._source.held_quality(cursor.manifest)
        if held is not None:
            return held
        with self._lock:
            stalled, self._stalled = self._stalled, False
            buffered = self._buffered_frames()
        previous = self._quality
        quality = abr.choose(
            abr.AbrInput(
                current=previous,
                buffer_s=buffered / self._rate,
                throughput_bps=self._source.throughput_bps(),
                stalled=stalled,
                cap=self._cap,
                pinned=self._pinned,
            ),
            abr.AbrPolicy(
                low_watermark_s=self._opts.low_watermark_s,
                high_watermark_s=self._opts.high_watermark_s,
            ),
        )
        if previous is not None and quality != previous:
            self._emit(
                EventKind.QUALITY_CHANGE,
                cursor.item.track.uri,
                f"{previous.label} -> {quality.label}",
            )
        self._quality = quality
        return quality

    def _fetch_step(self, cursor: _Cursor, epoch: int) -> None:
        """Fetch and check one segment of the cursor's item and hand it to the decoder."""
        item, manifest = cursor.item, cursor.manifest
        quality = self._choose(cursor)
        rendition = manifest.rendition(quality)
        n = cursor.segment
        segment = rendition.segments[n]
        fetched: bytes | None = None
        wait = 0.1
        while fetched is None:
            self._still(epoch, item)
            try:
                fetched = self._source.segment(
                    manifest, quality, n, deadline_s=self._fetch_deadline(quality)
                )
            except TooSlowError as exc:
                # the link collapsed under a big segment: treat it as a stall, choose again
                logger.info("segment %d of %s: %s; choosing again", n, item.track_id, exc)
                with self._lock:
                    self._stalled = True
                return
            except SourceError as exc:
                if not exc.retryable:
                    self._fail_item(item, epoch, str(exc))
                    return
                logger.info("segment %d of %s: %s; retrying", n, item.track_id, exc)
                self._sleep(epoch, wait)
                wait = min(wait * 2, self._opts.retry_max_s)
        data: bytes | None = fetched
        try:
            if needs_page_check(fetched):  # page CRCs, format, length
                check_segment(fetched, segment.frames, rendition)
        except BadSegmentError as exc:
            if not cursor.retried_check:
                cursor.retried_check = True
                logger.warning("segment %d of %s: %s; fetching it again", n, item.track_id, exc)
                return  # the same segment again on the next step
            self._emit(EventKind.ERROR, item.track.uri, f"skipped segment {n}: {exc}")
            data = None
        cursor.retried_check = False
        last = n == len(rendition.segments) - 1
        frames = sink_frames(
            manifest.boundaries[n + 1], manifest.sample_rate, self._rate
        ) - sink_frames(manifest.boundaries[n], manifest.sample_rate, self._rate)
        with self._lock:
            if self._closed or epoch != self._epoch or item not in self._plan:
                raise _Superseded
            self._compressed.append(_Fetched(item, cursor, n, quality, data, frames, last))
            cursor.segment += 1
            if last:
                item.fetched = True
            self._decode_wake.notify_all()

    def _fetch_deadline(self, quality: Quality) -> float | None:
        """How long a fetch may take: most of the audio still queued (none at the bottom rung,
        nothing lower to fall back to)."""
        if quality is Quality.LOW or self._pinned:
            return None
        return max(1.0, 0.8 * self._buffered_frames() / self._rate)

    def _fail_item(self, item: _Item, epoch: int, message: str) -> None:
        """The track cannot play: say why, and let it end (after what was fetched of it)."""
        self._emit(EventKind.ERROR, item.track.uri, message)
        with self._lock:
            if epoch != self._epoch or item not in self._plan:
                return
            item.fetched = True
            self._compressed.append(_Fetched(item, None, -1, None, None, 0, True))
            self._decode_wake.notify_all()

    # --- decoder thread -------------------------------------------------------------

    def _decode_loop(self) -> None:
        active: _Active | None = None
        epoch = -1
        while True:
            with self._lock:
                while True:
                    if self._closed:
                        _close(active)
                        return
                    if epoch != self._epoch:
                        _close(active)
                        active, epoch = None, self._epoch
                        self._carry = None
                    if active is not None and active.fetched.item not in self._plan:
                        _close(active)
                        active = None
                    want = self._queue.frames < self._decoded_ahead
                    if want and (active is not None or self._compressed):
                        break
                    self._decode_wake.wait(0.25)  # the sink thread wakes it as it drains
                fetched = active.fetched if active is not None else self._compressed[0]
            try:
                if active is None:
                    active = self._begin(fetched, epoch)
                if active is not None:
                    self._decode_block(active, epoch)
            except _Superseded:
                _close(active)
                active = None
                continue
            except Exception:  # a bug must not silence the speaker for good
                logger.exception("audio decoder failed on %s", fetched.item.track.uri)
                uri = fetched.item.track.uri
                self._emit(EventKind.ERROR, uri, "internal error while decoding audio")
                _close(active)
                active = None
                self._end_item(fetched.item, epoch)
                continue
            if active is None or active.finished:
                _close(active)
                active = None
                with self._lock:  # done with it (unless a plan change already took it out)
                    if self._compressed and self._compressed[0] is fetched:
                        self._compressed.popleft()

    def _end_item(self, item: _Item, epoch: int) -> None:
        """Nothing more of this item will play: an empty last chunk ends it."""
        with self._lock:
            if epoch != self._epoch or item not in self._plan:
                return
            item.fetched = True
            self._compressed = deque(f for f in self._compressed if f.item is not item)
            item.produced = True
            self._queue.put(
                Chunk(item.gen, item.track.uri, 0, np.zeros((0, 2), np.int16), last=True)
            )
            self._sink_wake.notify_all()

    def _begin(self, fetched: _Fetched, epoch: int) -> _Active | None:
        """Start on a fetched segment: the marker of a failed item, a skipped segment,
        or audio to decode."""
        cursor = fetched.cursor
        if cursor is None:  # the item failed: it ends after what was queued of it
            self._end_item(fetched.item, epoch)
            return None
        if fetched.data is None:
            self._skip_segment(cursor, fetched.n, epoch)
            return None
        return self._start_decoder(fetched, fetched.data, epoch)

    def _start_decoder(self, fetched: _Fetched, data: bytes, epoch: int) -> _Active | None:
        cursor = fetched.cursor
        assert cursor is not None
        assert fetched.quality is not None
        manifest = cursor.manifest
        rate = manifest.rendition(fetched.quality).sample_rate
        self._switch_rate(cursor, fetched.n, fetched.quality, rate)
        skip = cursor.skip_src * rate // manifest.sample_rate  # a seek into this segment
        cursor.skip_src = 0
        try:
            return self._open_decoder(fetched, data, skip)
        except DecodeFailedError as exc:
            return self._decode_failed(fetched, skip, exc, epoch)

    @staticmethod
    def _open_decoder(fetched: _Fetched, data: bytes, skip: int) -> _Active:
        assert fetched.cursor is not None
        assert fetched.quality is not None
        rendition = fetched.cursor.manifest.rendition(fetched.quality)
        frames = rendition.segments[fetched.n].frames
        decoder = SegmentDecoder(data, frames, rendition.channels)
        return _Active(fetched, decoder, skip, rendition.sample_rate)

    def _decode_block(self, active: _Active, epoch: int) -> None:
        """Decode, resample, normalise and queue the next block of the active segment."""
        fetched, decoder = active.fetched, active.decoder
        cursor = fetched.cursor
        assert cursor is not None
        assert decoder is not None
        # small first blocks so the first audio goes out at once; bigger ones after
        size = self._opts.block_frames if cursor.emitted == 0 else self._opts.decode_block_frames
        try:
            pcm = decoder.read(size + active.skip)
        except DecodeFailedError as exc:
            replaced = self._decode_failed(fetched, decoder.done + active.skip, exc, epoch)
            active.decoder = None if replaced is None else replaced.decoder
            active.skip = 0 if replaced is None else replaced.skip
            return
        if active.skip:
            dropped = min(active.skip, int(pcm.shape[0]))
            pcm, active.skip = pcm[dropped:], active.skip - dropped
        out = dsp.to_stereo(pcm)
        if cursor.resampler is not None:
            out = cursor.resampler.process(out)
        fetched.decoded = min(fetched.frames, sink_frames(decoder.done, active.rate, self._rate))
        self._queue_tail(cursor, fetched, out, done=decoder.finished, epoch=epoch)

    def _decode_failed(
        self, fetched: _Fetched, skip: int, exc: DecodeFailedError, epoch: int
    ) -> _Active | None:
        """Fetch the segment once more and go on from the frame that failed (``skip``
        frames in); failing again, leave the rest of it out."""
        cursor = fetched.cursor
        assert cursor is not None
        assert fetched.quality is not None
        item, n = fetched.item, fetched.n
        if not fetched.retried:
            fetched.retried = True
            logger.warning("segment %d of %s: %s; fetching it again", n, item.track_id, exc)
            try:
                data = self._source.segment(cursor.manifest, fetched.quality, n)
            except SourceError as again:
                exc = DecodeFailedError(f"{exc}; fetching it again failed: {again}")
            else:
                self._still(epoch, item)
                try:
                    return self._open_decoder(fetched, data, skip)
                except DecodeFailedError as second:
                    exc = second
        self._emit(EventKind.ERROR, item.track.uri, f"skipped segment {n}: {exc}")
        self._skip_segment(cursor, n, epoch)
        return None

    def _queue_tail(
        self,
        cursor: _Cursor,
        fetched: _Fetched,
        out: NDArray[np.float32],
        *,
        done: bool,
        epoch: int,
    ) -> None:
        """Queue a block; at the track's end make it exactly as long as the track and keep
        back what crossfades into the next one."""
        if not fetched.last:
            self._queue_pcm(cursor, out, False, epoch)
            return
        if done and cursor.resampler is not None:
            out = np.concatenate([out, cursor.resampler.flush()])
        remaining = self._item_length(cursor.manifest) - cursor.start_sink - cursor.emitted
        if cursor.held is not None:
            out = np.concatenate([cursor.held, out])
            cursor.held = None
        out = _fit(out, remaining) if done else out[: max(0, remaining)]
        withhold = min(self._crossfade_frames(cursor.item), remaining)
        if not done:
            if withhold:
                keep = min(withhold, int(out.shape[0]))
                out, cursor.held = out[: out.shape[0] - keep], out[out.shape[0] - keep :]
            if out.shape[0]:
                self._queue_pcm(cursor, out, False, epoch)
            return
        carry: NDArray[np.float32] | None = None
        if withhold:
            out, carry = out[:-withhold], self._process(cursor, out[-withhold:])
        self._queue_pcm(cursor, out, True, epoch)
        if carry is not None:
            self._carry = _Carry(carry)

    def _crossfade_frames(self, item: _Item) -> int:
        """How much of this track's end to fade into the next one (0: a plain gapless join)."""
        if self._opts.crossfade_s <= 0:
            return 0
        with self._lock:
            at = self._plan.index(item) if item in self._plan else -1
            nxt = self._plan[at + 1] if 0 <= at < len(self._plan) - 1 else None
        if nxt is None or (item.track.album and nxt.track.album == item.track.album):
            return 0  # an album plays as mastered, its transitions intact
        return int(self._opts.crossfade_s * self._rate)

    def _item_length(self, manifest: Manifest) -> int:
        """The track's length at the sink rate: the resampler's output length for it."""
        if manifest.sample_rate == self._rate:
            return manifest.frames
        return dsp.resampled_length(manifest.frames, manifest.sample_rate, self._rate)

    def _switch_rate(self, cursor: _Cursor, n: int, quality: Quality, rate: int) -> None:
        """Start (or change) the resampler when the chosen quality's rate differs."""
        if cursor.quality is not None and rate != cursor.resampler_rate and cursor.emitted:
            # a quality switch across rates: close the old stream and line the
            # output up with the segment boundary so position stays exact
            tail = cursor.resampler.flush() if cursor.resampler is not None else None
            boundary = sink_frames(
                cursor.manifest.boundaries[n], cursor.manifest.sample_rate, self._rate
            )
            need = boundary - cursor.start_sink - cursor.emitted
            fill = _fit(tail if tail is not None else np.zeros((0, 2), np.float32), need)
            if fill.shape[0]:
                self._queue_pcm(cursor, fill, False, None)
        if cursor.quality is None or rate != cursor.resampler_rate:
            cursor.resampler = (
                None if rate == self._rate else dsp.StreamResampler(rate, self._rate, 2)
            )
            cursor.resampler_rate = rate
        cursor.quality = quality

    def _skip_segment(self, cursor: _Cursor, n: int, epoch: int) -> None:
        """Leave (the rest of) a segment out; the next starts a new span at its true position."""
        manifest = cursor.manifest
        cursor.skip_src = 0
        cursor.held = None
        if cursor.resampler is not None:
            cursor.resampler = dsp.StreamResampler(cursor.resampler_rate, self._rate, 2)
        if n + 1 >= len(manifest.boundaries) - 1:
            self._queue_pcm(cursor, np.zeros((0, 2), np.float32), True, epoch)
            return
        cursor.emitted = (
            sink_frames(manifest.boundaries[n + 1], manifest.sample_rate, self._rate)
            - cursor.start_sink
        )

    def _process(self, cursor: _Cursor, pcm: NDArray[np.float32]) -> NDArray[np.float32]:
        """Loudness gain, then the limiter that keeps a raised track from clipping."""
        if cursor.gain != 1.0:
            pcm = pcm * np.float32(cursor.gain)
        if cursor.limiter is not None and pcm.shape[0]:
            pcm = cursor.limiter.process(pcm)
        return pcm

    def _queue_pcm(
        self, cursor: _Cursor, pcm: NDArray[np.float32], last: bool, epoch: int | None
    ) -> None:
        if self._carry is not None and pcm.shape[0]:
            # the previous track's tail, faded under this one's start, limited together
            if cursor.gain != 1.0:
                pcm = pcm * np.float32(cursor.gain)
            pcm = self._carry.mix_into(pcm)
            if self._carry.done:
                self._carry = None
            if cursor.limiter is not None:
                pcm = cursor.limiter.process(pcm)
        else:
            pcm = self._process(cursor, pcm)
        chunk = Chunk(
            gen=cursor.item.gen,
            uri=cursor.item.track.uri,
            start=cursor.start_sink + cursor.emitted,
            pcm=dsp.to_s16(pcm),
            last=last,
        )
        with self._lock:
            if cursor.item not in self._plan or epoch not in (None, self._epoch):
                raise _Superseded
            self._queue.put(chunk)
            cursor.emitted += chunk.frames
            if last:
                cursor.item.produced = True
            self._sink_wake.notify_all()

    # --- sink thread --------------------------------------------------------------

    def _write(self) -> None:
        volume_now = self._volume
        last_epoch = -1
        while True:
            with self._lock:
                if self._closed:
                    return
                self._check_ends()
                ready = self._ready_to_write()
                if not ready:
                    self._sink_wake.wait(0.01 if self._timeline.ends or self._playing else 0.1)
                    continue
                epoch = self._epoch
                target_volume = self._volume
            if not self._ensure_sink():  # before taking audio, so none is lost while it is away
                with self._lock:
                    self._sink_wake.wait(1.0)
                continue
            chunk = self._queue.take(self._write_frames)
            if chunk is None:
                continue
            pcm = chunk.pcm
            if epoch != last_epoch:  # a fresh start: no ramp from the old volume
                volume_now, last_epoch = target_volume, epoch
            if volume_now != target_volume:  # ramp over the block: a change never clicks
                pcm = dsp.ramp_volume(pcm, volume_now, target_volume)
                volume_now = target_volume
            elif volume_now != 1.0:
                pcm = dsp.apply_volume(pcm, volume_now)
            with self._lock:
                if epoch != self._epoch:
                    continue  # a seek or load arrived: this audio is stale
            try:
                if chunk.frames:
                    self._sink.write(pcm)
            except SinkError as exc:
                self._sink_failed(str(exc))
                continue
            with self._lock:
                if epoch != self._epoch:
                    continue
                self._timeline.wrote(chunk.gen, chunk.uri, chunk.start, chunk.frames, chunk.last)
                if self._queue.frames < self._decoded_ahead:
                    self._decode_wake.notify()
                if chunk.frames and chunk.gen not in self._started:
                    self._started.add(chunk.gen)
                    if self._plan and self._plan[0].gen == chunk.gen:  # not a gapless preload
                        self.first_audio_ns = time.monotonic_ns()
                        self._report(chunk.uri, chunk.start * 1000 // self._rate, False)

    def _ready_to_write(self) -> bool:
        """May the sink thread write now?  Handles underruns and their recovery."""
        if not self._playing or not self._plan:
            return False
        current = self._plan[0]
        queued = self._queue.frames
        if self._buffering:
            enough = queued >= self._opts.resume_s * self._rate
            if not (enough or self._queue.has_end_of(current.gen) or current.produced):
                return False
            self._buffering = False
            self._report(current.track.uri, self._position_locked(), False)
            return True
        if queued > 0 or self._queue.has_end_of(current.gen):
            return True  # audio, or the end of a track that failed before any audio
        # nothing queued while playing: an underrun, unless the track is simply over
        # (not while a load or seek first fills the buffer: nothing has played since),
        # or the device still holds audio, or the decoder has audio coming for a sink
        # that runs faster than real time
        if not current.produced and self._started and not self._still_sounding():
            self._buffering = True
            self._stalled = True
            # where the sound will stop: the last frame written, once the device drains
            found = self._timeline.heard(self._timeline.written)
            position = 0  # a stall at a track join: the next one has not begun
            if found is not None and found[0].gen == current.gen:
                position = found[1] * 1000 // self._rate
            self._emit(EventKind.UNDERRUN, current.track.uri, "buffer ran dry; waiting for audio")
            self._report(current.track.uri, position, True)
        return False

    def _still_sounding(self) -> bool:
        """Whether an empty queue is not (yet) a gap a listener hears."""
        if self._sink_open and self._sink.delay_frames() > 0:
            return True  # the device is still playing what it was given
        return self._sink.fast and self._buffered_frames() > 0  # still to decode

    def _check_ends(self) -> None:
        if not self._timeline.ends:
            return
        delay = self._sink.delay_frames() if self._sink_open else 0
        for mark in self._timeline.ended(max(0, self._timeline.written - delay)):
            if not self._plan or self._plan[0].gen != mark.gen:
                continue
            finished = self._plan.pop(0)
            if self._plan:
                self._absorb = self._plan[0].track.uri
                self._held_position_ms = 0
            else:
                self._held_position_ms = finished.track.duration_ms
            self._loop.call_soon_threadsafe(self._on_track_ended, finished.track.uri)
            self._fetch_wake.notify()  # the next track may start filling now

    def _ensure_sink(self) -> bool:
        if self._sink_open:
            return True
        try:
            self._sink.open()
        except SinkError as exc:
            self._sink_failed(str(exc))
            return False
        self._sink_open = True
        with self._lock:
            self._apply_volume()
        if self._sink_error is not None:
            logger.info("audio output %s is back", self._sink.name)
            self._sink_error = None
        return True

    def _sink_failed(self, message: str) -> None:
        if self._sink_open:
            with contextlib.suppress(SinkError):
                self._sink.close()
            self._sink_open = False
        if message != self._sink_error:
            logger.error("audio output: %s (retrying)", message)
            uri = self._plan[0].track.uri if self._plan else None
            self._emit(EventKind.ERROR, uri, f"audio output: {message}")
            self._sink_error = message


class _Carry:
    """The end of one track, faded out under the start of the next (equal power)."""

    def __init__(self, tail: NDArray[np.float32]) -> None:
        self.tail = tail
        self.fade_out, self.fade_in = dsp.equal_power_fade(tail.shape[0])
        self.offset = 0

    @property
    def done(self) -> bool:
        return self.offset >= int(self.tail.shape[0])

    def mix_into(self, head: NDArray[np.float32]) -> NDArray[np.float32]:
        n = min(head.shape[0], self.tail.shape[0] - self.offset)
        span = slice(self.offset, self.offset + n)
        mixed = head.copy()
        mixed[:n] = (
            self.tail[span] * self.fade_out[span, None] + head[:n] * self.fade_in[span, None]
        )
        self.offset += n
        return mixed


def _close(active: _Active | None) -> None:
    if active is not None and active.decoder is not None:
        active.decoder.close()


class _Superseded(Exception):  # noqa: N818 - control flow, not an error
    """The item being produced was replaced; drop the work."""


def _fit(pcm: NDArray[np.float32], frames: int) -> NDArray[np.float32]:
    """Exactly ``frames`` frames: trim, or hold the last sample (no click) to pad."""
    frames = max(0, frames)
    have = pcm.shape[0]
    if have >= frames:
        return pcm[:frames]
    last = pcm[-1:] if have else np.zeros((1, 2), np.float32)
    return np.concatenate([pcm, np.repeat(last, frames - have, axis=0)])
