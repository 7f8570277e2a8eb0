"""The native engine's plan and the state its three stages share, under one lock.

The plan is the current item and, once the controller has said what follows,
the next one; ``epoch`` is bumped whenever queued audio must be discarded (a
load, seek or unload), and every stage drops work begun in an older epoch.
One lock guards the plan, the flags, the volume and both buffers (compressed
segments and decoded PCM); each thread waits on its own condition of it, so a
block of audio wakes only its consumer.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from connect_protocol.media import SEGMENT_S, Manifest, Quality
from connect_protocol.messages import EventKind, TrackRef
from device.audio import dsp
from device.audio.fetcher import Attempts
from device.audio.pcm_queue import PcmQueue
from device.audio.timeline import Timeline
from device.engine_api import EventCallback, ReportCallback, TrackEndedCallback


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineOptions:
    quality: str = "auto"  # auto or a level: the cap (auto = very_high), pinned if a level
    normalisation: str = "track"  # track, album or off
    target_lufs: float = -14.0
    low_watermark_s: float = 5.0
    target_s: float = 20.0  # refill when the buffer falls below this
    high_watermark_s: float = 30.0
    resume_s: float = 2.0  # after an underrun, buffer this much before playing on
    block_frames: int = 512  # what the sink thread writes at a time: 11.6 ms at 44.1 kHz,
    # the longest a pause or a volume change waits to reach the sink
    decoded_ahead_s: float = 3.0  # PCM kept decoded (the rest of the buffer stays compressed)
    decode_block_frames: int = 32768  # what the decoder decodes at a time after a first block
    retry_max_s: float = 2.0  # longest wait between retries of a failed fetch
    crossfade_s: float = 0.0  # 0-12; never between consecutive tracks of one album


DEFAULT_OPTIONS = EngineOptions()


@dataclass(slots=True)
class Item:
    """One planned track: the current one, or the next."""

    track: TrackRef
    track_id: str
    start_ms: int
    gen: int
    produced: bool = False  # all its PCM is queued (or it failed)
    fetched: bool = False  # all its segments are fetched (or it failed)
    begun: bool = False  # the fetcher has started on it


@dataclass(slots=True)
class Cursor:
    """One item's progress: ``segment`` and ``attempts`` belong to the fetch stage,
    everything below them to the decode stage."""

    item: Item
    manifest: Manifest
    segment: int  # the next segment to fetch
    skip_src: int  # source frames to drop at the start of the first segment (a seek)
    start_sink: int  # the item's first frame at the sink rate
    attempts: Attempts  # how fetching ``segment`` has gone
    emitted: int = 0  # sink frames queued for the item
    quality: Quality | None = None  # of the last segment decoded
    resampler: dsp.StreamResampler | None = None
    resampler_rate: int = 0
    limiter: dsp.Limiter | None = None
    gain: float = 1.0
    held: NDArray[np.float32] | None = None  # the track's end, held back for a crossfade


@dataclass(slots=True)
class Fetched:
    """A checked segment waiting to be decoded (``data`` None: skip it; ``cursor``
    None: the item failed and ends here)."""

    item: Item
    cursor: Cursor | None
    n: int
    quality: Quality | None
    data: bytes | None
    frames: int  # its length at the sink rate
    last: bool
    retried: bool = False  # fetched once more after failing to decode
    decoded: int = 0  # how much of ``frames`` the decoder has done (it owns this field)


class Superseded(Exception):  # noqa: N818 - control flow, not an error
    """The item being worked on was replaced; drop the work."""


def sink_frames(src_frames: int, src_rate: int, sink_rate: int) -> int:
    """A track position in source frames, at the sink's rate."""
    return src_frames * sink_rate // src_rate


class Shared:
    """The plan, the buffers and the flags; every field is guarded by ``lock``."""

    def __init__(
        self,
        options: EngineOptions,
        rate: int,
        loop: asyncio.AbstractEventLoop,
        on_track_ended: TrackEndedCallback,
        on_event: EventCallback | None,
        on_report: ReportCallback | None,
    ) -> None:
        self.opts = options
        self.rate = rate
        self._loop = loop
        self._on_track_ended = on_track_ended
        self._on_event = on_event
        self._on_report = on_report
        mutex = threading.RLock()
        self.lock = threading.Condition(mutex)
        self.fetch_wake = threading.Condition(mutex)
        self.decode_wake = threading.Condition(mutex)
        self.sink_wake = threading.Condition(mutex)
        self.queue = PcmQueue()
        # fetched and not yet fully decoded; the head is the one the decoder is on
        self.compressed: deque[Fetched] = deque()
        self.decoded_ahead = int(max(options.decoded_ahead_s, options.resume_s + 1.0) * rate)
        self.timeline = Timeline()
        self.plan: list[Item] = []
        self.epoch = 0  # bumped when queued audio must be discarded (load, seek, unload)
        self.playing = False
        self.volume = dsp.volume_gain(50)  # the gain the sink thread applies
        self.absorb: str | None = None  # the uri a gapless join already started
        self.closed = False
        self.buffering = False
        self.stalled = False  # for the ABR: the sink ran dry since its last choice
        self.started: set[int] = set()  # items whose first frame has been written
        self.held_position_ms = 0  # reported while nothing has been written yet

    def wake_all(self) -> None:
        """The plan changed: every thread looks again."""
        for condition in (self.lock, self.fetch_wake, self.decode_wake, self.sink_wake):
            condition.notify_all()

    def buffered_frames(self) -> int:
        """Audio ahead of the sink, decoded or not, at the sink rate (the ABR's buffer)."""
        return self.queue.frames + sum(f.frames - f.decoded for f in self.compressed)

    def work(self) -> Item | None:
        """The first planned item with segments still to fetch."""
        for item in self.plan:
            if not item.fetched:
                return item
        return None

    def wants_more(self, item: Item) -> bool:
        """Fill up to one segment past the high watermark (where the ABR may rise);
        start on the next track once the rest of this one is under the target."""
        buffered = self.buffered_frames() / self.rate
        if item is not self.plan[0] and not item.begun and buffered >= self.opts.target_s:
            return False
        return buffered < self.opts.high_watermark_s + SEGMENT_S

    def check(self, epoch: int, item: Item) -> None:
        """Raise ``Superseded`` if the work on ``item`` in ``epoch`` is stale."""
        with self.lock:
            if self.closed or epoch != self.epoch or item not in self.plan:
                raise Superseded

    # --- what the engine tells the event loop ---------------------------------------

    def track_ended(self, uri: str) -> None:
        self._loop.call_soon_threadsafe(self._on_track_ended, uri)

    def emit(self, kind: EventKind, uri: str | None, message: str) -> None:
        if self._on_event is not None:
            self._loop.call_soon_threadsafe(self._on_event, kind, uri, message)

    def call_soon(self, fn: Callable[..., object], *args: object) -> None:
        self._loop.call_soon_threadsafe(fn, *args)

    def report(self, uri: str, position_ms: int, buffering: bool) -> None:
        if self._on_report is not None:
            self._loop.call_soon_threadsafe(self._on_report, uri, position_ms, buffering)
