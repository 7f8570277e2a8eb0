"""The native engine: manifest + segments -> PyAV -> DSP -> PCM queue -> sink.

Two threads do the work so the event loop never waits on audio:

- the *producer* fetches segments (ABR choosing each one's quality), decodes
  them, resamples to the sink's rate, applies loudness normalisation and the
  limiter, and queues PCM tagged with its item and track position.  It runs
  ahead of playback up to the high watermark, straight on into the next
  track, so track joins are sample-exact and never wait on the network;
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
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from connect_protocol.media import SEGMENT_S, Manifest, Quality
from connect_protocol.messages import EventKind, TrackRef
from connect_protocol.ogg import BadSegmentError, check_segment
from device import abr
from device.audio import dsp
from device.audio.decoder import DecodeFailedError, decode_segment
from device.audio.pcm_queue import Chunk, PcmQueue
from device.audio.sinks import Sink, SinkError
from device.audio.source import SegmentSource, SourceError, TooSlowError
from device.audio.timeline import Timeline
from device.engine import EventCallback, ReportCallback

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
    retry_max_s: float = 2.0  # longest wait between retries of a failed fetch
    crossfade_s: float = 0.0  # 0-12; never between consecutive tracks of one album


@dataclass(slots=True)
class _Item:
    track: TrackRef
    track_id: str
    start_ms: int
    gen: int
    produced: bool = False  # all its PCM is queued (or it failed)
    begun: bool = False  # the producer has started on it


@dataclass(slots=True)
class _Cursor:
    """Where the producer is within one item."""

    item: _Item
    manifest: Manifest
    segment: int
    skip_src: int  # source frames to drop at the start of ``segment`` (a seek)
    start_sink: int  # the item's first frame at the sink rate
    emitted: int = 0  # sink frames queued for the item
    quality: Quality | None = None
    resampler: dsp.StreamResampler | None = None
    resampler_rate: int = 0
    limiter: dsp.Limiter | None = None
    gain: float = 1.0
    retried_decode: bool = False


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
        self._lock = threading.Condition()  # guards the plan, playing, volume, epoch
        self._queue = PcmQueue()
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
        self._producer = threading.Thread(target=self._produce, name="audio-producer", daemon=True)
        self._writer = threading.Thread(target=self._write, name="audio-sink", daemon=True)
        self._producer.start()
        self._writer.start()

    # --- the Engine interface (called on the event loop; never blocks) -----------

    def load(self, track: TrackRef, position_ms: int, playing: bool) -> None:
        with self._lock:
            if self._absorb == track.uri and position_ms == 0 and self._plan:
                self._absorb = None  # the gapless join already did this
                self._playing = playing
                self._lock.notify_all()
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
            self._lock.notify_all()

    def set_playing(self, playing: bool) -> None:
        with self._lock:
            self._absorb = None
            self._playing = playing
            if not playing:
                self._held_position_ms = self._position_locked()
            self._lock.notify_all()

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
        if self._sink_open and getattr(self._sink, "hardware_volume", False):
            try:
                self._sink.set_volume(self._volume_percent)  # type: ignore[attr-defined]
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
            self._lock.notify_all()
        with self._queue.cond:
            self._queue.cond.notify_all()
        self._producer.join(timeout=5)
        self._writer.join(timeout=5)
        self._source.close()
        if self._sink_open:
            self._sink.close()

    # --- shared helpers (hold self._lock) ---------------------------------------

    def _discard(self, position_ms: int) -> None:
        self._epoch += 1
        self._queue.drop()
        self._timeline.reset()
        self._started.clear()
        self._buffering = False
        self._held_position_ms = position_ms
        self._lock.notify_all()
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

    # --- producer thread ----------------------------------------------------------

    def _produce(self) -> None:
        cursor: _Cursor | None = None
        epoch = -1
        while True:
            with self._lock:
                while True:
                    if self._closed:
                        return
                    if epoch != self._epoch:
                        cursor, epoch = None, self._epoch
                        self._carry = None
                    if cursor is not None and cursor.item not in self._plan:
                        cursor = None  # its item was withdrawn (a new next track)
                    item = cursor.item if cursor else self._work()
                    if item is not None and self._wants_more(item):
                        break
                    self._lock.wait(0.25)
            try:
                if cursor is None:
                    cursor = self._open(item, epoch)
                    if cursor is None:
                        continue
                self._step(cursor, epoch)
                if cursor.item.produced:
                    cursor = None
            except _Superseded:
                cursor = None
            except Exception:  # a bug must not silence the speaker for good
                logger.exception("audio producer failed on %s", item.track.uri)
                self._fail_item(item, epoch, "internal error while preparing audio")
                cursor = None

    def _work(self) -> _Item | None:
        for item in self._plan:
            if not item.produced:
                return item
        return None

    def _wants_more(self, item: _Item) -> bool:
        """Fill up to one segment past the high watermark (where the ABR may rise);
        start on the next track once the rest of this one is under the target."""
        buffered = self._queue.frames / self._rate
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
            self._lock.wait_for(lambda: self._closed or epoch != self._epoch, timeout=seconds)

    def _choose(self, cursor: _Cursor) -> Quality:
        """The ABR's pick for the next segment; its memory spans tracks, like the network's."""
        with self._lock:
            stalled, self._stalled = self._stalled, False
        previous = self._quality
        quality = abr.choose(
            abr.AbrInput(
                current=previous,
                buffer_s=self._queue.frames / self._rate,
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

    def _step(self, cursor: _Cursor, epoch: int) -> None:
        """Fetch, decode and queue one segment of the cursor's item."""
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
        try:
            check_segment(fetched, segment.frames, rendition)  # page CRCs, format, length
            pcm = decode_segment(fetched, segment.frames, rendition.channels)
        except (BadSegmentError, DecodeFailedError) as exc:
            if not cursor.retried_decode:
                cursor.retried_decode = True
                logger.warning("segment %d of %s: %s; fetching it again", n, item.track_id, exc)
                return  # the same segment again on the next step
            cursor.retried_decode = False
            self._emit(EventKind.ERROR, item.track.uri, f"skipped segment {n}: {exc}")
            self._skip_segment(cursor, rendition.sample_rate)
            return
        cursor.retried_decode = False
        self._switch_rate(cursor, quality, rendition.sample_rate)
        if cursor.skip_src:
            skip = cursor.skip_src * rendition.sample_rate // manifest.sample_rate
            pcm = pcm[skip:]
            cursor.skip_src = 0
        out = dsp.to_stereo(pcm)
        if cursor.resampler is not None:
            out = cursor.resampler.process(out)
        last = n == len(rendition.segments) - 1
        carry: NDArray[np.float32] | None = None
        if last:
            if cursor.resampler is not None:
                out = np.concatenate([out, cursor.resampler.flush()])
            expected = self._item_length(manifest) - cursor.start_sink
            out = _fit(out, expected - cursor.emitted)
            withhold = min(self._crossfade_frames(item), out.shape[0])
            if withhold:
                out, carry = out[:-withhold], self._process(cursor, out[-withhold:])
        self._queue_pcm(cursor, out, last, epoch)
        if carry is not None:
            self._carry = _Carry(carry)
        cursor.segment += 1

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

    def _fetch_deadline(self, quality: Quality) -> float | None:
        """How long a fetch may take: most of the audio still queued (none at the bottom rung,
        nothing lower to fall back to)."""
        if quality is Quality.LOW or self._pinned:
            return None
        return max(1.0, 0.8 * self._queue.frames / self._rate)

    def _item_length(self, manifest: Manifest) -> int:
        """The track's length at the sink rate: the resampler's output length for it."""
        if manifest.sample_rate == self._rate:
            return manifest.frames
        return dsp.resampled_length(manifest.frames, manifest.sample_rate, self._rate)

    def _switch_rate(self, cursor: _Cursor, quality: Quality, rate: int) -> None:
        """Start (or change) the resampler when the chosen quality's rate differs."""
        if cursor.quality is not None and rate != cursor.resampler_rate and cursor.emitted:
            # a quality switch across rates: close the old stream and line the
            # output up with the segment boundary so position stays exact
            tail = cursor.resampler.flush() if cursor.resampler is not None else None
            boundary = sink_frames(
                cursor.manifest.boundaries[cursor.segment],
                cursor.manifest.sample_rate,
                self._rate,
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

    def _skip_segment(self, cursor: _Cursor, rate: int) -> None:
        """Leave a segment out; the next one starts a new span at its true position."""
        manifest = cursor.manifest
        n = cursor.segment
        cursor.segment += 1
        cursor.skip_src = 0
        if cursor.resampler is not None:
            cursor.resampler = dsp.StreamResampler(cursor.resampler_rate, self._rate, 2)
        if cursor.segment >= len(manifest.boundaries) - 1:
            self._queue_pcm(cursor, np.zeros((0, 2), np.float32), True, None)
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
            self._lock.notify_all()

    def _fail_item(self, item: _Item, epoch: int, message: str) -> None:
        """The track cannot play: say why, and let it end so playback moves on."""
        self._emit(EventKind.ERROR, item.track.uri, message)
        with self._lock:
            if epoch != self._epoch or item not in self._plan:
                return
            item.produced = True
            self._queue.put(
                Chunk(item.gen, item.track.uri, 0, np.zeros((0, 2), np.int16), last=True)
            )
            self._lock.notify_all()

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
                    self._lock.wait(0.01 if self._timeline.ends or self._playing else 0.1)
                    continue
                epoch = self._epoch
                target_volume = self._volume
            if not self._ensure_sink():  # before taking audio, so none is lost while it is away
                with self._lock:
                    self._lock.wait(1.0)
                continue
            chunk = self._queue.take(self._opts.block_frames)
            if chunk is None:
                continue
            pcm = chunk.pcm
            if epoch != last_epoch:  # a fresh start: no ramp from the old volume
                volume_now, last_epoch = target_volume, epoch
            if volume_now != target_volume:  # ramp over the block: a change never clicks
                ramp = np.linspace(volume_now, target_volume, pcm.shape[0], dtype=np.float32)
                pcm = np.rint(pcm * ramp[:, None]).astype(np.int16)
                volume_now = target_volume
            elif volume_now != 1.0:  # gains are <= 1: nothing to clip
                pcm = (pcm * np.float32(volume_now)).astype(np.int16)
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
        if queued > 0:
            return True
        # nothing queued while playing: an underrun, unless the track is simply over
        # (not while a load or seek first fills the buffer: nothing has played since)
        if not current.produced and self._started:
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
