"""The mpv engine's plan, and the state the event loop, mpv's threads and the prefetcher share.

Everything in ``Shared`` is guarded by its ``cond``.  Position is computed here
from what mpv last said (``time-pos`` within the entry it plays), moved on the
monotonic clock between its updates.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from connect_protocol.media import Manifest, Quality
from connect_protocol.messages import TrackRef
from connect_protocol.uris import track_id_of

#: ``time-pos`` arrives every 50-100 ms; between updates position moves on the clock.
EXTRAPOLATE_MAX_S = 0.5


@dataclass(eq=False)
class Item:
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
class Cached:
    """A fetched segment, held until mpv opens its entry."""

    quality: Quality
    data: bytes
    bad: str | None = None  # why the segment is skipped


@dataclass
class Shared:
    """What the loop, mpv's threads and the fetcher share; guarded by ``cond``."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    plan: list[Item] = field(default_factory=list)
    closed: bool = False
    paused: bool = True
    cache: dict[tuple[str, int], Cached] = field(default_factory=dict)
    manifests: dict[str, Manifest] = field(default_factory=dict)
    wanted: set[tuple[Item, int]] = field(default_factory=set)
    at: tuple[Item, int] | None = None  # the entry mpv is playing
    starting: tuple[Item, int] | None = None  # the entry mpv started, not yet playing
    starting_since: float = 0.0
    time_pos: float | None = None  # mpv's time-pos within that entry
    time_pos_at: float = 0.0
    core_idle: bool = True
    stalled: bool = False  # for the ABR: an underrun since its last choice
    buffering: bool = False
    absorb: str | None = None  # the uri a gapless join already started
    entering: Item | None = None  # next track mpv has started, not yet heard
    retrying_output: bool = False  # the audio output failed to open; retried soon
    retry_from_ms: int = 0  # ... from here
    output_error: bool = False  # said once, until mpv has an output again

    def item(self, gen: int) -> Item | None:
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

    def position_ms(self) -> int:
        """Where the current track is heard."""
        if not self.plan:
            return 0
        current = self.plan[0]
        if self.retrying_output:
            return self.retry_from_ms
        at = self.at
        if (
            at is None
            or self.time_pos is None
            or (at[0] is not current and at[0] is not self.entering)
        ):
            return current.held_ms
        t = self.time_pos
        if not self.paused and not self.core_idle and not self.buffering:
            t += min(time.monotonic() - self.time_pos_at, EXTRAPOLATE_MAX_S)
        if at[0] is current:
            ms = current.seg_start_ms(at[1]) + t * 1000
        else:  # the next track's first entry: before 0 its start is not heard yet
            ms = current.track.duration_ms + t * 1000
        return int(max(0, min(ms, current.track.duration_ms)))


class SegmentStream:
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
