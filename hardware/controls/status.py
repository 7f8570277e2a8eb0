"""What the speaker's lights and its front panel show, from what the speaker knows.

Pure: ``player_mode`` turns the player state into the panel's ``STATE`` word,
``pattern_of`` turns the speaker's situation into one of the status patterns,
and ``LOOKS`` says how each pattern is drawn on one LED or an RGB LED.  The
same pattern names go to a front panel in its ``LED`` frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from connect_protocol.messages import PlayerState


class Mode(StrEnum):
    """The player as the front panel's ``STATE`` frame names it."""

    IDLE = "idle"  # nothing loaded
    PLAYING = "playing"
    PAUSED = "paused"
    BUFFERING = "buffering"
    ERROR = "error"


class Pattern(StrEnum):
    """The status light's patterns, in the order they take precedence."""

    BOOTING = "booting"
    ERROR = "error"
    NOT_PAIRED = "not_paired"
    CONNECTING = "connecting"
    BUFFERING = "buffering"
    PLAYING = "playing"
    IDLE = "idle"


@dataclass(frozen=True, slots=True)
class Situation:
    """Everything the lights depend on, as plain values."""

    started: bool = False  # the daemon is up (audio, local API)
    paired: bool = True  # it has a hub and credentials to reach it
    connected: bool = False  # its broker connection is up (or it has no broker)
    failed: bool = False  # the last track failed to play and nothing has played since
    mode: Mode = Mode.IDLE


def player_mode(state: PlayerState, *, failed: bool = False) -> Mode:
    if failed:
        return Mode.ERROR
    if state.current is None:
        return Mode.IDLE
    if state.is_playing:
        return Mode.BUFFERING if state.buffering else Mode.PLAYING
    return Mode.PAUSED


def pattern_of(s: Situation) -> Pattern:
    """The one pattern the light shows: the first that applies, in ``Pattern``'s order."""
    if not s.started:
        return Pattern.BOOTING
    if s.failed or s.mode is Mode.ERROR:
        return Pattern.ERROR
    if not s.paired:
        return Pattern.NOT_PAIRED
    if not s.connected:
        return Pattern.CONNECTING
    if s.mode is Mode.BUFFERING:
        return Pattern.BUFFERING
    if s.mode is Mode.PLAYING:
        return Pattern.PLAYING
    return Pattern.IDLE


@dataclass(frozen=True, slots=True)
class Look:
    """How a pattern is drawn: ``on_s``/``off_s`` blink times (``off_s`` 0: steady),
    ``fade`` for a breathing pulse instead of a hard blink, a colour for an RGB LED
    (0..1 per channel) and a brightness for a one-colour LED."""

    rgb: tuple[float, float, float]
    brightness: float = 1.0
    on_s: float = 1.0
    off_s: float = 0.0
    fade: bool = False

    @property
    def steady(self) -> bool:
        return self.off_s == 0


LOOKS: dict[Pattern, Look] = {
    Pattern.BOOTING: Look((1.0, 1.0, 1.0), on_s=0.1, off_s=0.1),
    Pattern.ERROR: Look((1.0, 0.0, 0.0), on_s=0.15, off_s=0.15),
    Pattern.NOT_PAIRED: Look((1.0, 0.5, 0.0), on_s=1.0, off_s=1.0, fade=True),
    Pattern.CONNECTING: Look((0.0, 0.3, 1.0), on_s=0.5, off_s=0.5),
    Pattern.BUFFERING: Look((0.0, 1.0, 0.2), on_s=0.25, off_s=0.25, fade=True),
    Pattern.PLAYING: Look((0.0, 1.0, 0.2)),
    Pattern.IDLE: Look((1.0, 1.0, 1.0), brightness=0.1),
}


@dataclass(frozen=True, slots=True)
class View:
    """What every indicator (the status LED, a front panel) is told to show."""

    mode: Mode
    volume_percent: int
    pattern: Pattern
