"""``ClockEngine``: the ``Engine`` interface over silence, on a monotonic clock.

Position advances honestly and track ends come on time, with no audio and no
hub media: what a speaker runs with ``engine = "clock"``, or unpaired (it has no
credentials to fetch audio with), and what control tests and benches drive.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from connect_protocol.messages import TrackRef
from device.engine_api import TrackEndedCallback


class ClockEngine:
    """Advances position on a monotonic clock and reports track ends on time."""

    def __init__(
        self,
        on_track_ended: TrackEndedCallback,
        *,
        clock: Callable[[], float] = time.monotonic,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._on_track_ended = on_track_ended
        self._clock = clock
        self._loop = loop or asyncio.get_running_loop()
        self._track: TrackRef | None = None
        self._base_ms = 0  # position when the clock last started or stopped
        self._started_at: float | None = None  # clock reading while playing
        self._timer: asyncio.TimerHandle | None = None
        self.volume_percent = 50

    def load(self, track: TrackRef, position_ms: int, playing: bool) -> None:
        self._track = track
        self._base_ms = max(0, min(position_ms, track.duration_ms))
        self._started_at = self._clock() if playing else None
        self._reschedule()

    def set_next(self, track: TrackRef | None) -> None:
        """Nothing to prepare: silence needs no prefetching."""

    def set_playing(self, playing: bool) -> None:
        if self._track is None or playing == (self._started_at is not None):
            return
        if playing:
            self._started_at = self._clock()
        else:
            self._base_ms = self.position_ms()
            self._started_at = None
        self._reschedule()

    def seek(self, position_ms: int) -> None:
        if self._track is None:
            return
        self._base_ms = max(0, min(position_ms, self._track.duration_ms))
        if self._started_at is not None:
            self._started_at = self._clock()
        self._reschedule()

    def set_volume(self, volume_percent: int) -> None:
        self.volume_percent = volume_percent

    def unload(self) -> None:
        self._track = None
        self._started_at = None
        self._base_ms = 0
        self._reschedule()

    def position_ms(self) -> int:
        if self._track is None:
            return 0
        pos = self._base_ms
        if self._started_at is not None:
            pos += round((self._clock() - self._started_at) * 1000)
        return min(pos, self._track.duration_ms)

    @property
    def playing(self) -> bool:
        return self._started_at is not None

    def needs_network(self) -> bool:
        """Silence is never fetched."""
        return False

    def close(self) -> None:
        self.unload()

    def _reschedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._track is None or self._started_at is None:
            return
        remaining_s = (self._track.duration_ms - self.position_ms()) / 1000
        uri = self._track.uri
        self._timer = self._loop.call_later(max(0.0, remaining_s), self._ended, uri)

    def _ended(self, uri: str) -> None:
        self._timer = None
        if self._track is not None and self._track.uri == uri:
            self._base_ms = self._track.duration_ms
            self._started_at = None
            self._on_track_ended(uri)
