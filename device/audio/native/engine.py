"""``NativeEngine``: the ``Engine`` interface over the three stages.

The controller's calls (``load``, ``seek``...) only change the plan under the
shared lock and wake the threads; every call returns at once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from connect_protocol.backoff import Backoff
from connect_protocol.messages import TrackRef
from connect_protocol.uris import track_id_of
from device.abr import AbrPolicy
from device.audio.fetcher import FetchPolicy, SegmentFetcher
from device.audio.native.decode import DecodeStage
from device.audio.native.fetch import FetchStage
from device.audio.native.output import OutputStage
from device.audio.native.state import DEFAULT_OPTIONS, EngineOptions, Item, Shared
from device.audio.sinks import Sink
from device.audio.source import SegmentSource
from device.engine_api import EventCallback, ReportCallback
from device.sync.anchor import Anchor
from device.sync.api import GroupClock, RebaseCallback, SyncStats


def fetch_policy(options: EngineOptions) -> FetchPolicy:
    """The shared fetcher's policy from the engine's options."""
    return FetchPolicy.for_quality(
        options.quality,
        abr=AbrPolicy(
            low_watermark_s=options.low_watermark_s, high_watermark_s=options.high_watermark_s
        ),
        retry=Backoff(initial_s=0.1, maximum_s=options.retry_max_s),
    )


class NativeEngine:
    def __init__(
        self,
        on_track_ended: Callable[[str], None],
        *,
        source: SegmentSource,
        sink: Sink,
        options: EngineOptions = DEFAULT_OPTIONS,
        on_event: EventCallback | None = None,
        on_report: ReportCallback | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        loop = loop or asyncio.get_running_loop()
        self._s = Shared(options, sink.rate, loop, on_track_ended, on_event, on_report)
        self._source = source
        self._gen = 0
        fetcher = SegmentFetcher(source, fetch_policy(options), emit=self._s.emit)
        self._fetch = FetchStage(self._s, fetcher)
        self._decode = DecodeStage(self._s, fetcher)
        self._output = OutputStage(self._s, sink)
        self._threads = [self._fetch.thread, self._decode.thread, self._output.thread]
        for thread in self._threads:
            thread.start()

    @property
    def first_audio_ns(self) -> int | None:
        """Monotonic time the latest track (load or seek) was first written to the sink."""
        return self._output.first_audio_ns

    @property
    def sink_rate(self) -> int:
        """Frames per second at the sink: the rate a leader builds its anchors at."""
        return self._s.rate

    # --- group play (called on the event loop; never blocks) -----------------------

    def set_sync(
        self, clock: GroupClock | None, anchor: Anchor | None, on_rebase: RebaseCallback | None
    ) -> None:
        """Play to the group's timeline (``clock`` None: alone, as ever).  A new clock
        aligns at once again; ``on_rebase`` hears of each gapless join's new anchor."""
        with self._s.lock:
            self._output.sync.set_sync(clock, anchor, on_rebase)
            self._s.wake_all()

    def set_anchor(self, anchor: Anchor | None) -> None:
        """Move the timeline (a held anchor: no correction; the sync layer pauses)."""
        with self._s.lock:
            self._output.sync.set_anchor(anchor)
            self._s.wake_all()

    def anchor(self) -> Anchor | None:
        """The timeline the sink thread plays to now (moved on at each gapless join)."""
        with self._s.lock:
            return self._output.sync.anchor

    def sync_stats(self) -> SyncStats:
        with self._s.lock:
            return self._output.sync_stats()

    # --- the Engine interface (called on the event loop; never blocks) -----------

    def load(self, track: TrackRef, position_ms: int, playing: bool) -> None:
        s = self._s
        with s.lock:
            if s.absorb == track.uri and position_ms == 0 and s.plan:
                s.absorb = None  # the gapless join already did this
                s.playing = playing
                s.wake_all()
                return
            s.absorb = None
            s.plan = [self._item(track, position_ms)]
            s.playing = playing
            self._discard(position_ms)

    def set_next(self, track: TrackRef | None) -> None:
        """What plays after the current track, so it can be fetched and decoded ahead."""
        s = self._s
        with s.lock:
            if not s.plan:
                return
            current = s.plan[0]
            nxt = s.plan[1] if len(s.plan) > 1 else None
            if nxt is not None and track is not None and nxt.track.uri == track.uri:
                return
            if nxt is None and track is None:
                return
            s.plan = [current]
            if track is not None:
                s.plan.append(self._item(track, 0))
            s.queue.drop(keep={current.gen})
            s.compressed = deque(f for f in s.compressed if f.item is current)
            s.wake_all()

    def set_playing(self, playing: bool) -> None:
        s = self._s
        with s.lock:
            s.absorb = None
            if playing and not s.playing:
                self._output.sync.restart()  # a resume is a new start on the timeline
            s.playing = playing
            if not playing:
                s.held_position_ms = self._output.position_locked()
            s.wake_all()

    def seek(self, position_ms: int) -> None:
        s = self._s
        with s.lock:
            s.absorb = None
            if not s.plan:
                return
            s.plan = [self._item(s.plan[0].track, position_ms)]
            self._discard(position_ms)

    def set_volume(self, volume_percent: int) -> None:
        with self._s.lock:
            self._output.set_volume(volume_percent)

    def unload(self) -> None:
        s = self._s
        with s.lock:
            s.absorb = None
            s.plan = []
            s.playing = False
            self._discard(0)

    def position_ms(self) -> int:
        with self._s.lock:
            return self._output.position_locked()

    def needs_network(self) -> bool:
        """Playback is fetching (under its high watermark): downloads wait their turn."""
        return self._fetch.needs_network()

    def close(self) -> None:
        s = self._s
        with s.lock:
            s.closed = True
            s.plan = []
            s.wake_all()
        with s.queue.cond:
            s.queue.cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)
        self._source.close()
        self._output.close()

    # --- helpers (hold the lock) ---------------------------------------------------

    def _item(self, track: TrackRef, start_ms: int) -> Item:
        self._gen += 1
        return Item(track, track_id_of(track.uri), start_ms, self._gen)

    def _discard(self, position_ms: int) -> None:
        """A load or seek: everything queued is stale, down to what the device holds."""
        s = self._s
        s.epoch += 1
        self._output.sync.new_epoch()
        self._output.drop()
        s.queue.drop()
        s.compressed.clear()
        s.timeline.reset()
        s.started.clear()
        s.buffering = False
        s.held_position_ms = position_ms
        s.wake_all()
        with s.queue.cond:
            s.queue.cond.notify_all()
