"""The mpv engine's prefetcher: which segment to fetch next, on its own thread.

Order: segments mpv is waiting for, then the current track from the play
position up to the high watermark, then the next track once less than
``TARGET_S`` is ahead.  Each fetch goes through the shared ``SegmentFetcher``
(quality, back-off, page check with one re-fetch, then skip); a retry is
scheduled rather than waited out, so a segment mpv is waiting for is never
stuck behind another one's back-off.  A fetch the source calls permanent
fails the whole track.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from connect_protocol.media import Quality
from connect_protocol.messages import EventKind
from device.audio.fetcher import (
    Attempts,
    BufferState,
    Failed,
    Got,
    Refetch,
    Retry,
    SegmentFetcher,
    TooSlow,
)
from device.audio.mpv_engine.plan import Cached, Item, Shared
from device.engine_api import EventCallback

logger = logging.getLogger(__name__)

TARGET_S = 20.0  # start fetching the next track when less than this is fetched ahead
HIGH_WATERMARK_S = 30.0
MANIFEST = -1  # the "segment" number of a track's manifest fetch


class Prefetcher:
    """The ``mpv-fetcher`` thread."""

    def __init__(
        self,
        shared: Shared,
        fetcher: SegmentFetcher,
        *,
        emit: EventCallback,
        changed: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._s = shared
        self._fetcher = fetcher
        self._emit = emit
        self._changed = changed
        self._clock = clock
        # (track id, segment or MANIFEST) -> how its fetching went; this thread's alone
        self._attempts: dict[tuple[str, int], Attempts] = {}
        self._thread = threading.Thread(target=self._run, name="mpv-fetcher", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def needs_network(self) -> bool:
        """Playback has something to fetch (under its high watermark), due now or not."""
        with self._s.cond:
            return not self._s.closed and self._next(lambda item, n: True) is not None

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
                if n == MANIFEST:
                    self._fetch_manifest(item)
                else:
                    assert quality is not None
                    self._fetch_segment(item, n, quality)
            except Exception:  # a bug must not stop every later fetch
                logger.exception("fetching for %s failed", item.track.uri)
                self._fail(item, "internal error while fetching audio")

    # --- choosing the next fetch (holds the lock) -----------------------------------

    def _next_job(self) -> tuple[Item, int, Quality | None] | None:
        self._prune()
        found = self._next(self._due)
        if found is None:
            return None
        item, n = found
        return item, n, None if n == MANIFEST else self._choose(item)

    def _next(self, due: Callable[[Item, int], bool]) -> tuple[Item, int] | None:
        """(item, segment or MANIFEST) to fetch next, if any is ``due``."""
        s = self._s
        for item, n in sorted(s.wanted, key=lambda w: (s.plan.index(w[0]), w[1])):
            cached = (item.track_id, n) in s.cache
            if item.failed is None and item.manifest is not None and not cached and due(item, n):
                return item, n
        for i, item in enumerate(s.plan):
            if item.failed is not None:
                continue
            ahead = s.ahead_s()
            if i > 0 and ahead >= TARGET_S:
                return None
            if item.manifest is None:
                return (item, MANIFEST) if due(item, MANIFEST) else None
            n0 = s.at[1] if s.at is not None and s.at[0] is item else item.first
            for n in range(n0, item.segments):
                if (item.track_id, n) in s.cache:
                    continue
                if ahead >= HIGH_WATERMARK_S + item.seg_s(n) or not due(item, n):
                    return None
                return item, n
        return None

    def _due(self, item: Item, n: int) -> bool:
        attempts = self._attempts.get((item.track_id, n))
        return attempts is None or attempts.due(self._clock())

    def _choose(self, item: Item) -> Quality:
        assert item.manifest is not None
        s = self._s

        def buffer_state() -> BufferState:
            stalled, s.stalled = s.stalled, False
            return BufferState(s.ahead_s(), stalled)

        choice = self._fetcher.choose(
            item.manifest, uri=item.track.uri, current=item.quality, state=buffer_state
        )
        item.quality = choice.quality
        return choice.quality

    def _prune(self) -> None:
        """Forget segments already played and tracks no longer planned."""
        s = self._s
        keep = {it.track_id for it in s.plan}
        playing = s.at[0].track_id if s.at is not None else None
        below = s.at[1] - 1 if s.at is not None else 0
        for key in [k for k in s.cache if k[0] not in keep or (k[0] == playing and k[1] < below)]:
            del s.cache[key]
        s.wanted = {w for w in s.wanted if w[0] in s.plan}
        for key in [k for k in self._attempts if k[0] not in keep]:
            del self._attempts[key]

    # --- fetching (without the lock) ------------------------------------------------

    def _fetch_manifest(self, item: Item) -> None:
        key = (item.track_id, MANIFEST)
        got = self._fetcher.manifest(item.track_id, self._attempts.setdefault(key, Attempts()))
        if isinstance(got, Failed):
            self._fail(item, got.message)
            return
        if isinstance(got, Retry):
            return  # due again after the back-off
        with self._s.cond:
            self._attempts.pop(key, None)
            if len(self._s.manifests) > 16:
                self._s.manifests.clear()
            self._s.manifests[item.track_id] = got
            for it in self._s.plan:
                if it.track_id == item.track_id and it.manifest is None:
                    it.manifest = got
            self._s.cond.notify_all()
        self._changed()

    def _fetch_segment(self, item: Item, n: int, quality: Quality) -> None:
        assert item.manifest is not None
        key = (item.track_id, n)
        attempts = self._attempts.setdefault(key, Attempts())
        outcome = self._fetcher.segment(item.manifest, quality, n, attempts, uri=item.track.uri)
        if isinstance(outcome, Failed):
            self._fail(item, outcome.message)
            return
        if isinstance(outcome, TooSlow):
            with self._s.cond:
                self._s.stalled = True
            return
        if isinstance(outcome, Retry | Refetch):
            return  # due again (at once for a re-fetch), its quality chosen afresh
        cached = (
            Cached(quality, outcome.data)
            if isinstance(outcome, Got)
            else Cached(quality, b"", bad=outcome.message)
        )
        with self._s.cond:
            self._attempts.pop(key, None)
            if any(it.track_id == item.track_id for it in self._s.plan):
                self._s.cache[key] = cached
            self._s.cond.notify_all()

    def _fail(self, item: Item, message: str) -> None:
        """The track cannot play: say why; the engine ends it so playback moves on."""
        self._emit(EventKind.ERROR, item.track.uri, message)
        with self._s.cond:
            item.failed = message
            self._s.cond.notify_all()
        self._changed()
