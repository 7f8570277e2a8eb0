"""The interface every playback engine offers the controller, and what it calls back.

The controller turns reducer effects into calls on an ``Engine``; each call
returns at once.  An engine reports back through three callbacks, always on the
event loop: a track ended (``TrackEndedCallback``), something the listener
should know (``EventCallback``: underrun, error, quality change), and where the
audio really is (``ReportCallback``).

Engines: ``device.clock_engine.ClockEngine`` (silence on a monotonic clock),
``device.audio.native.NativeEngine`` and ``device.audio.mpv_engine.MpvEngine``;
``device.engine_factory.build_engine`` builds the one a config names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from connect_protocol.messages import EventKind, TrackRef

TrackEndedCallback = Callable[[str], None]
#: kind, track uri, message: what the engine tells the listener (underrun, error...)
EventCallback = Callable[[EventKind, str | None, str], None]
#: track uri, position_ms, buffering: where the audio really is
ReportCallback = Callable[[str, int, bool], None]


class Engine(Protocol):
    """What a playback engine must do; every call returns at once."""

    def load(self, track: TrackRef, position_ms: int, playing: bool) -> None: ...
    def set_next(self, track: TrackRef | None) -> None: ...
    def set_playing(self, playing: bool) -> None: ...
    def seek(self, position_ms: int) -> None: ...
    def set_volume(self, volume_percent: int) -> None: ...
    def unload(self) -> None: ...
    def position_ms(self) -> int: ...

    def needs_network(self) -> bool:
        """Playback is fetching audio right now: downloads wait their turn."""
        ...

    def close(self) -> None: ...
