"""The native engine's decode stage: its thread turns compressed segments into PCM.

It keeps only a few seconds decoded ahead of the sink (thirty seconds of buffer
cost ~1.4 MB compressed against 6 MB as PCM, which a small speaker notices): it
decodes the compressed segments a block at a time, resamples to the sink's
rate, applies loudness normalisation and the limiter, crossfades where asked,
and queues PCM tagged with its item and track position.  The first block of a
track is out after its first packets, not its first segment.  A segment that
will not decode is fetched once more and decoding goes on from the frame that
failed; failing again, the rest of it is left out with an ``error`` event.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from connect_protocol.media import Manifest, Quality
from connect_protocol.messages import EventKind
from device.audio import dsp
from device.audio.decoder import DecodeFailedError, SegmentDecoder
from device.audio.fetcher import SegmentFetcher
from device.audio.native.state import Cursor, Fetched, Item, Shared, Superseded, sink_frames
from device.audio.pcm_queue import Chunk
from device.audio.source import SourceError

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Active:
    """The segment the decoder is working through."""

    fetched: Fetched
    decoder: SegmentDecoder | None  # None once given up on
    skip: int  # frames still to drop from its start (a seek, or a resumed decode)
    rate: int

    @property
    def finished(self) -> bool:
        return self.decoder is None or self.decoder.finished


class DecodeStage:
    """The ``audio-decoder`` thread."""

    def __init__(self, shared: Shared, fetcher: SegmentFetcher) -> None:
        self._s = shared
        self._fetcher = fetcher
        self._carry: _Carry | None = None  # a track's withheld tail, to fade into the next
        self.thread = threading.Thread(target=self._loop, name="audio-decoder", daemon=True)

    def _loop(self) -> None:
        s = self._s
        active: Active | None = None
        epoch = -1
        while True:
            with s.lock:
                while True:
                    if s.closed:
                        _close(active)
                        return
                    if epoch != s.epoch:
                        _close(active)
                        active, epoch = None, s.epoch
                        self._carry = None
                    if active is not None and active.fetched.item not in s.plan:
                        _close(active)
                        active = None
                    want = s.queue.frames < s.decoded_ahead
                    if want and (active is not None or s.compressed):
                        break
                    s.decode_wake.wait(0.25)  # the sink thread wakes it as it drains
                fetched = active.fetched if active is not None else s.compressed[0]
            try:
                if active is None:
                    active = self._begin(fetched, epoch)
                if active is not None:
                    self._decode_block(active, epoch)
            except Superseded:
                _close(active)
                active = None
                continue
            except Exception:  # a bug must not silence the speaker for good
                logger.exception("audio decoder failed on %s", fetched.item.track.uri)
                uri = fetched.item.track.uri
                s.emit(EventKind.ERROR, uri, "internal error while decoding audio")
                _close(active)
                active = None
                self._end_item(fetched.item, epoch)
                continue
            if active is None or active.finished:
                _close(active)
                active = None
                with s.lock:  # done with it (unless a plan change already took it out)
                    if s.compressed and s.compressed[0] is fetched:
                        s.compressed.popleft()

    def _end_item(self, item: Item, epoch: int) -> None:
        """Nothing more of this item will play: an empty last chunk ends it."""
        s = self._s
        with s.lock:
            if epoch != s.epoch or item not in s.plan:
                return
            item.fetched = True
            s.compressed = deque(f for f in s.compressed if f.item is not item)
            item.produced = True
            s.queue.put(Chunk(item.gen, item.track.uri, 0, np.zeros((0, 2), np.int16), last=True))
            s.sink_wake.notify_all()

    def _begin(self, fetched: Fetched, epoch: int) -> Active | None:
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

    def _start_decoder(self, fetched: Fetched, data: bytes, epoch: int) -> Active | None:
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
    def _open_decoder(fetched: Fetched, data: bytes, skip: int) -> Active:
        assert fetched.cursor is not None
        assert fetched.quality is not None
        rendition = fetched.cursor.manifest.rendition(fetched.quality)
        frames = rendition.segments[fetched.n].frames
        decoder = SegmentDecoder(data, frames, rendition.channels)
        return Active(fetched, decoder, skip, rendition.sample_rate)

    def _decode_block(self, active: Active, epoch: int) -> None:
        """Decode, resample, normalise and queue the next block of the active segment."""
        fetched, decoder = active.fetched, active.decoder
        cursor = fetched.cursor
        assert cursor is not None
        assert decoder is not None
        # small first blocks so the first audio goes out at once; bigger ones after
        size = (
            self._s.opts.block_frames if cursor.emitted == 0 else self._s.opts.decode_block_frames
        )
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
        fetched.decoded = min(fetched.frames, sink_frames(decoder.done, active.rate, self._s.rate))
        self._queue_tail(cursor, fetched, out, done=decoder.finished, epoch=epoch)

    def _decode_failed(
        self, fetched: Fetched, skip: int, exc: DecodeFailedError, epoch: int
    ) -> Active | None:
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
                data = self._fetcher.fetch_again(cursor.manifest, fetched.quality, n)
            except SourceError as again:
                exc = DecodeFailedError(f"{exc}; fetching it again failed: {again}")
            else:
                self._s.check(epoch, item)
                try:
                    return self._open_decoder(fetched, data, skip)
                except DecodeFailedError as second:
                    exc = second
        self._s.emit(EventKind.ERROR, item.track.uri, f"skipped segment {n}: {exc}")
        self._skip_segment(cursor, n, epoch)
        return None

    def _queue_tail(
        self,
        cursor: Cursor,
        fetched: Fetched,
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

    def _crossfade_frames(self, item: Item) -> int:
        """How much of this track's end to fade into the next one (0: a plain gapless join)."""
        s = self._s
        if s.opts.crossfade_s <= 0:
            return 0
        with s.lock:
            at = s.plan.index(item) if item in s.plan else -1
            nxt = s.plan[at + 1] if 0 <= at < len(s.plan) - 1 else None
        if nxt is None or (item.track.album and nxt.track.album == item.track.album):
            return 0  # an album plays as mastered, its transitions intact
        return int(s.opts.crossfade_s * s.rate)

    def _item_length(self, manifest: Manifest) -> int:
        """The track's length at the sink rate: the resampler's output length for it."""
        if manifest.sample_rate == self._s.rate:
            return manifest.frames
        return dsp.resampled_length(manifest.frames, manifest.sample_rate, self._s.rate)

    def _switch_rate(self, cursor: Cursor, n: int, quality: Quality, rate: int) -> None:
        """Start (or change) the resampler when the chosen quality's rate differs."""
        if cursor.quality is not None and rate != cursor.resampler_rate and cursor.emitted:
            # a quality switch across rates: close the old stream and line the
            # output up with the segment boundary so position stays exact
            tail = cursor.resampler.flush() if cursor.resampler is not None else None
            boundary = sink_frames(
                cursor.manifest.boundaries[n], cursor.manifest.sample_rate, self._s.rate
            )
            need = boundary - cursor.start_sink - cursor.emitted
            fill = _fit(tail if tail is not None else np.zeros((0, 2), np.float32), need)
            if fill.shape[0]:
                self._queue_pcm(cursor, fill, False, None)
        if cursor.quality is None or rate != cursor.resampler_rate:
            cursor.resampler = (
                None if rate == self._s.rate else dsp.StreamResampler(rate, self._s.rate, 2)
            )
            cursor.resampler_rate = rate
        cursor.quality = quality

    def _skip_segment(self, cursor: Cursor, n: int, epoch: int) -> None:
        """Leave (the rest of) a segment out; the next starts a new span at its true position."""
        manifest = cursor.manifest
        cursor.skip_src = 0
        cursor.held = None
        if cursor.resampler is not None:
            cursor.resampler = dsp.StreamResampler(cursor.resampler_rate, self._s.rate, 2)
        if n + 1 >= len(manifest.boundaries) - 1:
            self._queue_pcm(cursor, np.zeros((0, 2), np.float32), True, epoch)
            return
        cursor.emitted = (
            sink_frames(manifest.boundaries[n + 1], manifest.sample_rate, self._s.rate)
            - cursor.start_sink
        )

    def _process(self, cursor: Cursor, pcm: NDArray[np.float32]) -> NDArray[np.float32]:
        """Loudness gain, then the limiter that keeps a raised track from clipping."""
        if cursor.gain != 1.0:
            pcm = pcm * np.float32(cursor.gain)
        if cursor.limiter is not None and pcm.shape[0]:
            pcm = cursor.limiter.process(pcm)
        return pcm

    def _queue_pcm(
        self, cursor: Cursor, pcm: NDArray[np.float32], last: bool, epoch: int | None
    ) -> None:
        s = self._s
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
        with s.lock:
            if cursor.item not in s.plan or epoch not in (None, s.epoch):
                raise Superseded
            s.queue.put(chunk)
            cursor.emitted += chunk.frames
            if last:
                cursor.item.produced = True
            s.sink_wake.notify_all()


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


def _close(active: Active | None) -> None:
    if active is not None and active.decoder is not None:
        active.decoder.close()


def _fit(pcm: NDArray[np.float32], frames: int) -> NDArray[np.float32]:
    """Exactly ``frames`` frames: trim, or hold the last sample (no click) to pad."""
    frames = max(0, frames)
    have = pcm.shape[0]
    if have >= frames:
        return pcm[:frames]
    last = pcm[-1:] if have else np.zeros((1, 2), np.float32)
    return np.concatenate([pcm, np.repeat(last, frames - have, axis=0)])
