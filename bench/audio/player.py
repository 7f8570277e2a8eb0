"""Drive a ``NativeEngine`` through a list of tracks, back to back, with no hub.

What the controller does for a queue, reduced to that: load the first track, announce
the next with ``set_next`` (so the engine fetches and decodes it ahead and joins it
gaplessly), and on each "track ended" load the next one (which the engine has already
started: the load is absorbed) and announce the one after.  The CPU and trace phases
use it so that nothing but the engine and its source does work while they measure.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from connect_protocol.messages import EventKind, TrackRef
from device.audio.native import EngineOptions, NativeEngine
from device.audio.sinks import Sink
from device.audio.source import SegmentSource


@dataclass(slots=True)
class EngineLog:
    """What the engine reported: events and buffering changes, with monotonic times."""

    events: list[tuple[float, EventKind, str]] = field(default_factory=list)
    buffering: list[tuple[float, bool]] = field(default_factory=list)

    def underruns(self) -> int:
        return sum(1 for _, kind, _ in self.events if kind is EventKind.UNDERRUN)

    def errors(self) -> list[str]:
        return [msg for _, kind, msg in self.events if kind is EventKind.ERROR]

    def stalled_s(self, until: float) -> float:
        """Seconds spent buffering (output stopped, waiting for audio) up to ``until``."""
        total, since = 0.0, None
        for at, on in self.buffering:
            if on and since is None:
                since = at
            elif not on and since is not None:
                total, since = total + at - since, None
        return total + (until - since if since is not None else 0.0)


class Sequencer:
    def __init__(
        self,
        tracks: list[TrackRef],
        *,
        source: SegmentSource,
        sink: Sink,
        options: EngineOptions,
    ) -> None:
        self.tracks = tracks
        self.index = 0
        self.done = asyncio.Event()
        self.log = EngineLog()
        before = {t.native_id for t in threading.enumerate()}
        self.engine = NativeEngine(
            self._ended,
            source=source,
            sink=sink,
            options=options,
            on_event=self._event,
            on_report=self._report,
            loop=asyncio.get_running_loop(),
        )
        #: The engine's own threads (producer and sink), by name: their native ids.
        self.threads = {
            t.name: t.native_id or 0
            for t in threading.enumerate()
            if t.native_id not in before and t.name.startswith("audio-")
        }
        self.on_track: Callable[[int], None] | None = None

    def start(self) -> None:
        self.engine.load(self.tracks[0], 0, True)
        self.engine.set_next(self.tracks[1] if len(self.tracks) > 1 else None)

    def close(self) -> None:
        self.engine.close()

    def _ended(self, uri: str) -> None:
        if self.index >= len(self.tracks) or uri != self.tracks[self.index].uri:
            return
        self.index += 1
        if self.on_track is not None:
            self.on_track(self.index)
        if self.index >= len(self.tracks):
            self.done.set()
            return
        self.engine.load(self.tracks[self.index], 0, True)  # absorbed: the join is done
        nxt = self.index + 1
        self.engine.set_next(self.tracks[nxt] if nxt < len(self.tracks) else None)

    def _event(self, kind: EventKind, _uri: str | None, message: str) -> None:
        self.log.events.append((time.monotonic(), kind, message))

    def _report(self, _uri: str, _position_ms: int, buffering: bool) -> None:
        self.log.buffering.append((time.monotonic(), buffering))
