"""``MpvEngine``: the ``Engine`` interface on libmpv; the loop's side of it.

The controller's calls change the plan under the shared lock and give mpv the
playlist entries it lacks (``_sync``); mpv's threads are handled in
``events``, the fetching in ``prefetch``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mpv

from connect_protocol.messages import EventKind, TrackRef
from device.abr import AbrPolicy
from device.audio.fetcher import FetchPolicy, SegmentFetcher
from device.audio.mpv_engine.events import LoopHooks, PlayerEvents
from device.audio.mpv_engine.options import (
    SCHEME,
    audio_filters,
    entry_url,
    mpv_volume,
    output_options,
    parse_entry_url,
    quoted,
)
from device.audio.mpv_engine.plan import Item, Shared
from device.audio.mpv_engine.prefetch import HIGH_WATERMARK_S, Prefetcher
from device.audio.sinks import SinkError
from device.audio.source import SegmentSource
from device.config import SpeakerConfig
from device.engine_api import EventCallback, ReportCallback

logger = logging.getLogger(__name__)

LOW_WATERMARK_S = 5.0


class MpvEngine:
    """The ``Engine`` interface on libmpv; see ``device.audio.mpv_engine`` for what differs."""

    def __init__(
        self,
        on_track_ended: Callable[[str], None],
        *,
        source: SegmentSource,
        config: SpeakerConfig,
        on_event: EventCallback | None = None,
        on_report: ReportCallback | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        fast: bool = False,
    ) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._on_track_ended = on_track_ended
        self._on_event = on_event
        self._on_report = on_report
        self._source = source
        self._normalisation = config.normalisation
        self._target_lufs = config.target_lufs
        self._s = Shared()
        self._gen = 0
        self._serial = 0
        self._fresh = True  # mpv's playlist holds nothing of the plan (loop only)
        self._mpv_lock = threading.Lock()  # the event thread's mpv calls vs. close()
        self.first_audio_ns: int | None = None  # monotonic time of the latest first audio
        self._player = self._start_mpv(config, fast)
        self._listen(config.sink)
        self._player.volume = mpv_volume(50)
        policy = FetchPolicy.for_quality(
            config.quality,
            abr=AbrPolicy(low_watermark_s=LOW_WATERMARK_S, high_watermark_s=HIGH_WATERMARK_S),
        )
        self._prefetch = Prefetcher(
            self._s,
            SegmentFetcher(source, policy, emit=self._emit),
            emit=self._emit,
            changed=lambda: self._call(self._sync),
        )

    def _start_mpv(self, config: SpeakerConfig, fast: bool) -> Any:
        options = output_options(config.sink, config.sample_rate, fast)
        if options["ao"] == "pcm":
            path = Path(options["ao_pcm_file"])
            try:
                path.write_bytes(b"")  # start empty; mpv appends
            except OSError as exc:
                raise SinkError(f"cannot write audio to {path}: {exc.strerror}") from exc
        player: Any = mpv.MPV(
            vid="no",
            ytdl=False,
            load_scripts=False,
            input_default_bindings=False,
            idle=True,
            pause=True,
            gapless_audio="yes",
            prefetch_playlist=True,
            hr_seek="yes",
            log_handler=_mpv_log,
            loglevel="warn",
            **options,
        )
        return player

    def _listen(self, sink: str) -> None:
        """Feed mpv's stream opens, events and properties to ``PlayerEvents``."""
        hooks = LoopHooks(
            call=self._call,
            call_later=self._loop.call_later,
            emit=self._emit,
            report=self._report,
            first_audio=self._first_audio,
            on_track_ended=self._on_track_ended,
            sync=self._sync,
            prune_playlist=self._prune_playlist,
            retry_output=self._retry_output,
        )
        events = PlayerEvents(self._s, self._player, self._mpv_lock, hooks, sink=sink)
        self._player.register_stream_protocol(SCHEME, events.open_stream)
        self._player.register_event_callback(events.on_event)
        for name in ("time-pos", "core-idle", "idle-active", "current-ao"):
            self._player.observe_property(name, events.on_property)

    # --- the Engine interface (called on the event loop; never blocks) -----------------

    def load(self, track: TrackRef, position_ms: int, playing: bool) -> None:
        with self._s.cond:
            # the gapless join already did this (the track may even be over: fast sinks)
            absorbed = self._s.absorb == track.uri and position_ms == 0
            if absorbed:
                self._s.absorb = None
        if absorbed:
            self.set_playing(playing)
            return
        self._restart(track, position_ms, playing)

    def set_next(self, track: TrackRef | None) -> None:
        """What plays after the current track: its entries follow the current ones."""
        s = self._s
        with s.cond:
            plan = s.plan
            if not plan:
                return
            old = plan[1] if len(plan) > 1 else None
            if (old is None and track is None) or (
                old is not None and track is not None and old.track.uri == track.uri
            ):
                return
            s.plan = [plan[0]]
            if s.entering is old:
                s.entering = None
            if track is not None:
                s.plan.append(self._new_item(track, 0))
            s.cond.notify_all()
        if old is not None and old.queued:
            self._remove_entries(old.gen)
        self._sync()

    def set_playing(self, playing: bool) -> None:
        s = self._s
        with s.cond:
            s.absorb = None
            s.paused = not playing
            plan = s.plan
            first = bool(plan) and playing and plan[0].ready and not plan[0].started
            if first:
                plan[0].started = True
        self._player.pause = not playing
        if first:
            self._first_audio(plan[0])
        if playing and self._fresh:
            self._sync()

    def seek(self, position_ms: int) -> None:
        with self._s.cond:
            self._s.absorb = None
            if not self._s.plan:
                return
            track, playing = self._s.plan[0].track, not self._s.paused
        self._restart(track, position_ms, playing)

    def set_volume(self, volume_percent: int) -> None:
        self._player.volume = mpv_volume(volume_percent)

    def unload(self) -> None:
        s = self._s
        with s.cond:
            s.absorb = None
            s.entering = None
            s.plan = []
            s.at = s.starting = None
            s.paused = True
            s.buffering = False
            s.cond.notify_all()
        self._player.pause = True
        self._player.command("stop")
        self._fresh = True

    def position_ms(self) -> int:
        with self._s.cond:
            return self._s.position_ms()

    def needs_network(self) -> bool:
        """Playback has segments to fetch (under its high watermark): downloads wait."""
        return self._prefetch.needs_network()

    def close(self) -> None:
        with self._mpv_lock, self._s.cond:
            if self._s.closed:
                return
            self._s.closed = True
            self._s.plan = []
            self._s.cond.notify_all()
        self._player.terminate()
        self._prefetch.join(timeout=5)
        self._source.close()

    # --- loop-side helpers --------------------------------------------------------------

    def _new_item(self, track: TrackRef, start_ms: int) -> Item:
        """A plan item, with its manifest if one is known. (Holds the lock.)"""
        self._gen += 1
        item = Item(track, self._gen, max(0, min(start_ms, track.duration_ms)))
        item.manifest = self._s.manifests.get(item.track_id)
        return item

    def _restart(self, track: TrackRef, position_ms: int, playing: bool) -> None:
        """Play ``track`` from ``position_ms`` with nothing planned after it (load, seek)."""
        s = self._s
        with s.cond:
            s.absorb = None
            s.entering = None
            item = self._new_item(track, position_ms)
            s.plan = [item]
            s.at = s.starting = None
            s.time_pos = None
            s.paused = not playing
            s.buffering = False
            s.cond.notify_all()
        self._player.pause = not playing
        self._fresh = True
        if item.manifest is None:
            self._player.command("stop")  # silence the old track while the manifest comes
        self._sync()

    def _sync(self) -> None:
        """Give mpv the entries of planned tracks whose manifest is known, in plan order;
        end a track that failed before mpv got it.

        A track loaded paused is given to mpv only when it plays: mpv fills the
        output's buffer while paused, and ``ao=pcm`` or alsa-lib's file PCM would
        write that audio out even if a seek then discards it.
        """
        ended: list[str] = []
        entries: list[tuple[str, str]] = []
        s = self._s
        with s.cond:
            if s.closed:
                return
            plan = s.plan
            while plan and plan[0].failed is not None and not plan[0].queued:
                ended.append(plan.pop(0).track.uri)
                if plan:
                    s.absorb = plan[0].track.uri
            for item in [] if self._fresh and s.paused else plan:
                if item.queued:
                    continue
                if item.failed is not None or item.manifest is None:
                    break
                item.queued = True
                entries.extend(self._entries(item))
        for url, options in entries:
            mode = "replace" if self._fresh else "append-play"
            self._fresh = False
            self._player.command("loadfile", url, mode, options)
        for uri in ended:
            self._call(self._on_track_ended, uri)

    def _entries(self, item: Item) -> list[tuple[str, str]]:
        """One playlist entry per segment from where the item starts. (Holds the lock.)"""
        assert item.manifest is not None
        af = audio_filters(item.manifest, self._normalisation, self._target_lufs)
        out = []
        for n in range(item.first, item.segments):
            self._serial += 1
            options = [f"af={quoted(af)}"] if af else []
            if n == item.first and item.offset_s():
                options.append(f"start={item.offset_s():.9f}")
            out.append((entry_url(item.gen, n, self._serial), ",".join(options)))
        return out

    def _remove_entries(self, gen: int) -> None:
        playlist = self._player.playlist
        for index in reversed(range(len(playlist))):
            key = parse_entry_url(str(playlist[index].get("filename", "")))
            if key is not None and key[0] == gen:
                self._player.command("playlist-remove", index)

    def _prune_playlist(self) -> None:
        """Drop finished entries of tracks no longer planned (they would pile up)."""
        with self._s.cond:
            gens = {it.gen for it in self._s.plan}
            if self._s.closed:
                return
        playlist = self._player.playlist
        stale = 0
        for entry in playlist:
            key = parse_entry_url(str(entry.get("filename", "")))
            if entry.get("current") or entry.get("playing") or (key and key[0] in gens):
                break
            stale += 1
        for _ in range(stale):
            self._player.command("playlist-remove", 0)

    def _retry_output(self) -> None:
        """A second after the audio output failed to open: play on from where it was."""
        with self._s.cond:
            self._s.retrying_output = False
            if not self._s.plan or self._s.closed:
                return
            current, after = self._s.plan[0], self._s.plan[1:]
            position, playing = self._s.retry_from_ms, not self._s.paused
        self._restart(current.track, position, playing)
        if after:
            self.set_next(after[0].track)

    def _first_audio(self, item: Item) -> None:
        self.first_audio_ns = time.monotonic_ns()
        self._report(item.track.uri, self.position_ms(), False)

    # --- callbacks onto the loop ----------------------------------------------------------

    def _call(self, fn: Callable[..., object], *args: object) -> None:
        if self._s.closed:
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed
            self._loop.call_soon_threadsafe(fn, *args)

    def _emit(self, kind: EventKind, uri: str | None, message: str) -> None:
        if self._on_event is not None:
            self._call(self._on_event, kind, uri, message)

    def _report(self, uri: str, position_ms: int, buffering: bool) -> None:
        if self._on_report is not None:
            self._call(self._on_report, uri, position_ms, buffering)


def _mpv_log(level: str, prefix: str, text: str) -> None:
    log = logger.warning if level == "fatal" else logger.debug
    log("mpv %s: %s", prefix, text.rstrip())
