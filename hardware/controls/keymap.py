"""What a control did, and what it is for.

Every input source (GPIO buttons and encoder, the front panel's serial link)
reports the same two events: a button ``Pressed`` with a gesture, or the knob
``Turned`` by some detents.  The ``Keymap`` says which ``Action`` each button's
short and long press stands for; a long press on a repeating button (volume)
repeats its short-press action until it is released.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hardware.board_profiles import FrozenMap
from hardware.errors import ControlsError

#: The buttons a speaker may have, named as the front-panel protocol names them.
BUTTONS = ("play", "next", "prev", "vol_up", "vol_down", "knob")


class Gesture(StrEnum):
    """How a button was used (the panel protocol's ``BTN`` events)."""

    PRESS = "press"  # a short press, reported when it is released
    LONG = "long"  # held for the long-press time, reported once while still held
    RELEASE = "release"  # the end of a long press


class Action(StrEnum):
    """What a button stands for; ``none`` leaves a gesture unused."""

    PLAY_PAUSE = "play_pause"  # plays the last context when nothing is loaded
    STOP = "stop"
    NEXT = "next"
    PREVIOUS = "previous"
    NEXT_ALBUM = "next_album"
    VOLUME_UP = "volume_up"
    VOLUME_DOWN = "volume_down"
    NONE = "none"


#: A long press given as this repeats the button's short-press action while held.
REPEAT = "repeat"


@dataclass(frozen=True, slots=True)
class Pressed:
    button: str
    gesture: Gesture


@dataclass(frozen=True, slots=True)
class Turned:
    """The knob moved ``detents`` clicks since the last report (+ clockwise = louder)."""

    detents: int


ControlEvent = Pressed | Turned


@dataclass(frozen=True, slots=True)
class Keymap:
    """Each button's short-press action and long-press action (or repeat)."""

    press: Mapping[str, Action] = field(default_factory=FrozenMap)
    long: Mapping[str, Action] = field(default_factory=FrozenMap)
    repeats: frozenset[str] = frozenset()  # buttons whose long press repeats ``press``

    def action(self, event: Pressed) -> Action:
        """The action a gesture stands for (``NONE`` for a release or an unmapped one)."""
        if event.gesture is Gesture.PRESS:
            return self.press.get(event.button, Action.NONE)
        if event.gesture is Gesture.LONG and event.button not in self.repeats:
            return self.long.get(event.button, Action.NONE)
        return Action.NONE

    def repeats_while_held(self, event: Pressed) -> bool:
        return event.gesture is Gesture.LONG and event.button in self.repeats


DEFAULT_PRESS = {
    "play": Action.PLAY_PAUSE,
    "next": Action.NEXT,
    "prev": Action.PREVIOUS,
    "vol_up": Action.VOLUME_UP,
    "vol_down": Action.VOLUME_DOWN,
    "knob": Action.PLAY_PAUSE,
}
DEFAULT_LONG: dict[str, Action | str] = {
    "play": Action.STOP,
    "next": Action.NEXT_ALBUM,
    "prev": Action.NONE,
    "vol_up": REPEAT,
    "vol_down": REPEAT,
    "knob": Action.STOP,
}


def _action(value: object, where: str, *, long: bool) -> Action | str:
    allowed = [a.value for a in Action] + ([REPEAT] if long else [])
    if isinstance(value, str) and value in allowed:
        return value if value == REPEAT else Action(value)
    raise ControlsError(f"{where} = {value!r} is not an action; allowed: {', '.join(allowed)}")


def _overrides(table: object, where: str, *, long: bool) -> dict[str, Action | str]:
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise ControlsError(f"[{where}] must be a table of button = action")
    out: dict[str, Action | str] = {}
    for button, value in table.items():
        if button not in BUTTONS:
            raise ControlsError(f"{where}.{button} is not a button; buttons: {', '.join(BUTTONS)}")
        out[button] = _action(value, f"{where}.{button}", long=long)
    return out


def keymap_from(press: Any = None, long: Any = None) -> Keymap:
    """The default keymap with a config's ``[controls.press]``/``[controls.long]`` over it."""
    presses: dict[str, Action | str] = {
        **DEFAULT_PRESS,
        **_overrides(press, "controls.press", long=False),
    }
    longs = {**DEFAULT_LONG, **_overrides(long, "controls.long", long=True)}
    return Keymap(
        press=FrozenMap((b, Action(a)) for b, a in presses.items()),
        long=FrozenMap((b, Action(a)) for b, a in longs.items() if a != REPEAT),
        repeats=frozenset(b for b, a in longs.items() if a == REPEAT),
    )


DEFAULT_KEYMAP = keymap_from()
