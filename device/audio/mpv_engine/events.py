"""The mpv engine's side that runs on mpv's own threads: the stream it reads segments
from, and what its events and properties mean for the plan.

Underruns are found here: mpv has moved on to an entry whose segment is not
fetched yet (mpv's ``paused-for-cache`` never fires, since every entry is
whole in memory before mpv opens it).  Track ends are found here too: when
``time-pos`` in the next track's first entry reaches 0, or mpv goes idle after
draining.  Whatever must happen on the event loop goes through ``LoopHooks``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mpv

from connect_protocol.messages import EventKind
from device.audio.mpv_engine.options import parse_entry_url
from device.audio.mpv_engine.plan import Item, SegmentStream, Shared
from device.engine_api import EventCallback, ReportCallback

logger = logging.getLogger(__name__)

#: How long mpv may wait on a segment that should already be playing before it
#: counts as an underrun: the audio output's buffer still plays meanwhile.
DRY_AFTER_S = 0.25
OUTPUT_RETRY_S = 1.0

_MPV_ERRORS = {
    mpv.ErrorCode.LOADING_FAILED: "could not be loaded",
    mpv.ErrorCode.AO_INIT_FAILED: "audio output failed to open",
    mpv.ErrorCode.NOTHING_TO_PLAY: "has no audio mpv can play",
    mpv.ErrorCode.UNKNOWN_FORMAT: "is in a format mpv does not know",
}


@dataclass(frozen=True, slots=True)
class LoopHooks:
    """What mpv's threads ask of the engine; ``call`` runs a function on the event loop."""

    call: Callable[..., None]  # call(fn, *args), dropped once the engine is closed
    call_later: Callable[..., object]  # the loop's call_later
    emit: EventCallback
    report: ReportCallback
    first_audio: Callable[[Item], None]  # (any thread) the item is first heard
    on_track_ended: Callable[[str], None]  # (loop)
    sync: Callable[[], None]  # (loop) give mpv the entries it lacks
    prune_playlist: Callable[[], None]  # (loop) drop finished entries
    retry_output: Callable[[], None]  # (loop) play again from where the output failed


class PlayerEvents:
    """mpv's stream opens, events and property changes, turned into plan changes."""

    def __init__(
        self,
        shared: Shared,
        player: Any,
        mpv_lock: threading.Lock,
        hooks: LoopHooks,
        *,
        sink: str,
    ) -> None:
        self._s = shared
        self._player = player
        self._mpv_lock = mpv_lock  # the event thread's mpv calls vs. close()
        self._hooks = hooks
        self._sink = sink
        self._urls: dict[int, str] = {}  # mpv playlist entry id -> url (event thread)

    def open_stream(self, uri: str) -> SegmentStream:
        """mpv opens an entry (on one of its threads): wait for the fetcher's bytes.

        Raising ``ValueError`` makes mpv skip the entry: a superseded or failed
        track, or a segment that failed its checks.  Waiting on a segment that
        should already be playing is an underrun.
        """
        key = parse_entry_url(uri)
        if key is None:
            raise ValueError(uri)
        gen, n = key
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
                        self._hooks.report(item.track.uri, s.position_ms(), False)
                    return SegmentStream(got.data)
                if (item, n) not in s.wanted:
                    s.wanted.add((item, n))
                    s.cond.notify_all()
                if not s.buffering and self._dry(item, n):
                    s.buffering = s.stalled = True
                    self._hooks.emit(EventKind.UNDERRUN, item.track.uri, "segment not here in time")
                    self._hooks.report(item.track.uri, s.position_ms(), True)
                s.cond.wait(0.05)

    def _dry(self, item: Item, n: int) -> bool:
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

    # --- events --------------------------------------------------------------------------

    def on_event(self, event: Any) -> None:
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
        return parse_entry_url(url or "")

    def _file_started(self, entry_id: int) -> None:
        key = self._entry(entry_id)
        s = self._s
        with s.cond:
            item = s.item(key[0]) if key else None
            if item is None or key is None:
                return
            s.starting, s.starting_since = (item, key[1]), time.monotonic()
            if item is not s.plan[0]:
                s.entering = item

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
                self._hooks.emit(EventKind.ERROR, item.track.uri, f"segment {n} {what}")
            if n == item.segments - 1:
                item.mpv_done = True
        self._urls.pop(entry_id, None)

    def _output_failed(self, item: Item) -> None:
        """The audio output did not open: say so once and try again in a second, from
        where the track was, rather than let mpv skip through the queue. (Holds the lock.)"""
        s = self._s
        if s.retrying_output:
            return
        s.retrying_output = True
        s.retry_from_ms = s.position_ms()  # later entries failed unheard
        if not s.output_error:
            s.output_error = True
            logger.error("audio output %s failed to open (retrying)", self._sink)
            message = f"audio output {self._sink} failed to open"
            self._hooks.emit(EventKind.ERROR, item.track.uri, message)
        self._hooks.call(self._hooks.call_later, OUTPUT_RETRY_S, self._hooks.retry_output)

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
            first = item is s.plan[0] and not item.started and not s.paused and not s.output_error
            if item is s.plan[0]:
                item.ready = True
            if first:
                item.started = True
        if first:
            self._hooks.first_audio(item)

    # --- properties --------------------------------------------------------------------

    def on_property(self, name: str, value: Any) -> None:
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
                    back, self._s.output_error = self._s.output_error, False
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
            entering = s.entering
            if value >= 0 and entering is not None and s.at is not None and s.at[0] is entering:
                ended = self._join_heard()
        if ended is not None:
            self._hooks.call(self._hooks.on_track_ended, ended)
            self._hooks.call(self._hooks.prune_playlist)

    def _join_heard(self) -> str | None:
        """The next track is audible: the current one ended. (Holds the lock.)"""
        s = self._s
        plan = s.plan
        if s.entering is None or len(plan) < 2 or plan[1] is not s.entering:
            s.entering = None
            return None
        finished = plan.pop(0)
        s.entering = None
        plan[0].started = True
        s.absorb = plan[0].track.uri
        return finished.track.uri

    def _went_idle(self) -> None:
        """mpv played out its playlist: the tracks it finished have ended."""
        s = self._s
        ended: list[str] = []
        with s.cond:
            plan = s.plan
            if s.retrying_output:
                return  # nothing was heard: the track plays again once the output opens
            joined = self._join_heard() if s.entering is not None else None
            if joined is not None:
                ended.append(joined)
            while plan and plan[0].mpv_done:
                ended.append(plan.pop(0).track.uri)
                if plan:
                    s.absorb = plan[0].track.uri
            if ended and not plan:
                s.at = s.starting = None
        for uri in ended:
            self._hooks.call(self._hooks.on_track_ended, uri)
        if ended:
            self._hooks.call(self._hooks.sync)
            self._hooks.call(self._hooks.prune_playlist)
