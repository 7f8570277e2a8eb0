"""The native engine's fetch stage: its thread keeps segments compressed ahead of playback.

It runs ahead up to the high watermark and straight on into the next track, so
track joins never wait on the network.  Each segment goes through the shared
``SegmentFetcher`` (quality, deadline, back-off, page check, re-fetch); this
stage decides only when to fetch, and waits out a retry on its own condition,
so a load or seek interrupts the wait at once.
"""

from __future__ import annotations

import logging
import threading

from connect_protocol.media import Manifest, Quality
from connect_protocol.messages import EventKind
from device.audio import dsp
from device.audio.fetcher import (
    Attempts,
    BufferState,
    Failed,
    Got,
    Refetch,
    Retry,
    SegmentFetcher,
    Skip,
    TooSlow,
)
from device.audio.native.state import Cursor, Fetched, Item, Shared, Superseded, sink_frames

logger = logging.getLogger(__name__)

LIMITER_CEILING_DBFS = -1.0


class FetchStage:
    """The ``audio-fetcher`` thread."""

    def __init__(self, shared: Shared, fetcher: SegmentFetcher) -> None:
        self._s = shared
        self._fetcher = fetcher
        self._quality: Quality | None = None  # the ABR's last choice; it spans tracks
        self.thread = threading.Thread(target=self._loop, name="audio-fetcher", daemon=True)

    def needs_network(self) -> bool:
        """Playback is fetching (under its high watermark)."""
        s = self._s
        with s.lock:
            item = s.work()
            return not s.closed and item is not None and s.wants_more(item)

    def _loop(self) -> None:
        s = self._s
        cursor: Cursor | None = None
        epoch = -1
        while True:
            with s.lock:
                while True:
                    if s.closed:
                        return
                    if epoch != s.epoch:
                        cursor, epoch = None, s.epoch
                    if cursor is not None and cursor.item not in s.plan:
                        cursor = None  # its item was withdrawn (a new next track)
                    item = cursor.item if cursor else s.work()
                    if item is not None and s.wants_more(item):
                        break
                    s.fetch_wake.wait(0.25)
            try:
                if cursor is None:
                    cursor = self._open(item, epoch)
                    if cursor is None:
                        continue
                self._step(cursor, epoch)
                if cursor.item.fetched:
                    cursor = None
            except Superseded:
                cursor = None
            except Exception:  # a bug must not silence the speaker for good
                logger.exception("audio fetcher failed on %s", item.track.uri)
                self._fail_item(item, epoch, "internal error while preparing audio")
                cursor = None

    def _open(self, item: Item, epoch: int) -> Cursor | None:
        """The item's manifest, and where in it playback starts."""
        item.begun = True
        manifest = self._manifest(item, epoch)
        if manifest is None:
            return None
        opts, rate = self._s.opts, self._s.rate
        src_frame = min(item.start_ms * manifest.sample_rate // 1000, manifest.frames - 1)
        n = manifest.segment_at(max(0, src_frame))
        skip = max(0, src_frame) - manifest.boundaries[n]
        gain, gain_db = 1.0, 0.0
        if opts.normalisation != "off":
            gain_db = dsp.normalisation_gain_db(
                manifest.loudness, opts.normalisation, opts.target_lufs
            )
            gain = float(10 ** (gain_db / 20))
        # the limiter only where the gain could push the track's true peak past its ceiling
        # (with a crossfade, two tracks add up: keep it then too)
        peak = manifest.loudness.track_peak_dbtp + gain_db
        needs_limiter = peak > LIMITER_CEILING_DBFS - 0.5 or opts.crossfade_s > 0
        return Cursor(
            item=item,
            manifest=manifest,
            segment=n,
            skip_src=skip,
            start_sink=sink_frames(max(0, src_frame), manifest.sample_rate, rate),
            attempts=Attempts(),
            gain=gain,
            limiter=dsp.Limiter(rate, LIMITER_CEILING_DBFS) if needs_limiter else None,
        )

    def _manifest(self, item: Item, epoch: int) -> Manifest | None:
        attempts = Attempts()
        while True:
            self._s.check(epoch, item)
            got = self._fetcher.manifest(item.track_id, attempts)
            if isinstance(got, Failed):
                self._fail_item(item, epoch, got.message)
                return None
            if not isinstance(got, Retry):
                return got
            self._sleep(epoch, got.wait_s)

    def _sleep(self, epoch: int, seconds: float) -> None:
        s = self._s
        with s.lock:
            s.fetch_wake.wait_for(lambda: s.closed or epoch != s.epoch, timeout=seconds)

    def _choose(self, cursor: Cursor) -> Quality:
        """The quality for the next segment; the ABR's memory spans tracks, like the network's.

        A track playing from its offline download plays at the quality downloaded."""
        s = self._s

        def buffer_state() -> BufferState:
            with s.lock:
                stalled, s.stalled = s.stalled, False
                return BufferState(s.buffered_frames() / s.rate, stalled)

        choice = self._fetcher.choose(
            cursor.manifest, uri=cursor.item.track.uri, current=self._quality, state=buffer_state
        )
        if not choice.held:
            self._quality = choice.quality
        return choice.quality

    def _deadline_s(self, quality: Quality) -> float | None:
        with self._s.lock:
            buffer_s = self._s.buffered_frames() / self._s.rate
        return self._fetcher.deadline_s(quality, buffer_s)

    def _step(self, cursor: Cursor, epoch: int) -> None:
        """Fetch and check one segment of the cursor's item and hand it to the decoder."""
        s, item = self._s, cursor.item
        quality = self._choose(cursor)
        n = cursor.segment
        outcome = self._fetch(cursor, quality, epoch)
        if isinstance(outcome, TooSlow):  # the link collapsed under a big segment: a stall
            with s.lock:
                s.stalled = True  # ... and the next step chooses again
            return
        if isinstance(outcome, Failed):
            self._fail_item(item, epoch, outcome.message)
            return
        if isinstance(outcome, Refetch):
            return  # the same segment again on the next step
        cursor.attempts = Attempts()
        self._hand_over(
            cursor, n, quality, outcome.data if isinstance(outcome, Got) else None, epoch
        )

    def _fetch(
        self, cursor: Cursor, quality: Quality, epoch: int
    ) -> Got | Skip | Refetch | TooSlow | Failed:
        """One segment at one quality, retried (after the back-off) until it is settled."""
        while True:
            self._s.check(epoch, cursor.item)
            outcome = self._fetcher.segment(
                cursor.manifest,
                quality,
                cursor.segment,
                cursor.attempts,
                uri=cursor.item.track.uri,
                deadline_s=self._deadline_s(quality),
            )
            if not isinstance(outcome, Retry):
                return outcome
            self._sleep(epoch, outcome.wait_s)

    def _hand_over(
        self, cursor: Cursor, n: int, quality: Quality, data: bytes | None, epoch: int
    ) -> None:
        s, item, manifest = self._s, cursor.item, cursor.manifest
        last = n == len(manifest.rendition(quality).segments) - 1
        frames = sink_frames(manifest.boundaries[n + 1], manifest.sample_rate, s.rate) - (
            sink_frames(manifest.boundaries[n], manifest.sample_rate, s.rate)
        )
        with s.lock:
            if s.closed or epoch != s.epoch or item not in s.plan:
                raise Superseded
            s.compressed.append(Fetched(item, cursor, n, quality, data, frames, last))
            cursor.segment += 1
            if last:
                item.fetched = True
            s.decode_wake.notify_all()

    def _fail_item(self, item: Item, epoch: int, message: str) -> None:
        """The track cannot play: say why, and let it end (after what was fetched of it)."""
        s = self._s
        s.emit(EventKind.ERROR, item.track.uri, message)
        with s.lock:
            if epoch != s.epoch or item not in s.plan:
                return
            item.fetched = True
            s.compressed.append(Fetched(item, None, -1, None, None, 0, True))
            s.decode_wake.notify_all()
