"""The ``[controls]`` part of a speaker's config, checked in one place.

```toml
[controls]
volume_step = 2        # percent per knob detent and per volume-button step (1-20)
long_press_s = 0.8     # how long a button is held to be a long press (0.3-3)
repeat_s = 0.15        # a held volume button steps this often (0.05-1)
bounce_s = 0.01        # GPIO contact bounce ignored (0-0.1; 0 = none)

[controls.pins]        # control -> BCM GPIO, over the board profile's [pins];
play = 22              # "none" removes a control the board has
led = "none"

[controls.press]       # button -> action of a short press (see ACTIONS)
knob = "play_pause"

[controls.long]        # button -> action of a long press, or "repeat"
next = "next_album"
```
Buttons: play, next, prev, vol_up, vol_down, knob; actions: play_pause, stop,
next, previous, next_album, volume_up, volume_down, none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hardware.board_profiles import BoardProfile, FrozenMap, checked_pins
from hardware.controls.commands import VOLUME_STEPS
from hardware.controls.keymap import DEFAULT_KEYMAP, Keymap, keymap_from
from hardware.errors import BoardError, ControlsError

KEYS = ("volume_step", "long_press_s", "repeat_s", "bounce_s", "pins", "press", "long")
REMOVED = "none"


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlSettings:
    pins: Mapping[str, int] = field(default_factory=FrozenMap)  # control -> BCM GPIO
    keymap: Keymap = DEFAULT_KEYMAP
    volume_step: int = 2
    long_press_s: float = 0.8
    repeat_s: float = 0.15
    bounce_s: float = 0.01


def _number(table: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ControlsError(f"controls.{key} = {value!r} must be a number from {low} to {high}")
    return float(value)


def _volume_step(table: Mapping[str, Any]) -> int:
    value = table.get("volume_step", 2)
    if isinstance(value, bool) or not isinstance(value, int) or value not in VOLUME_STEPS:
        first, last = VOLUME_STEPS.start, VOLUME_STEPS.stop - 1
        raise ControlsError(
            f"controls.volume_step = {value!r} must be a whole number {first}-{last}"
        )
    return value


def _pins(table: Mapping[str, Any], board: BoardProfile | None) -> FrozenMap[int]:
    given = table.get("pins", {})
    if not isinstance(given, dict):
        raise ControlsError("[controls.pins] must be a table of control = GPIO number")
    # the board's pins first, the config's last: a clash is reported on the config's key
    merged: dict[str, Any] = {
        control: pin
        for control, pin in (board.pins.items() if board is not None else ())
        if control not in given
    }
    merged.update((control, value) for control, value in given.items() if value != REMOVED)
    reserved = board.reserved_pins if board is not None else FrozenMap()
    source = "speaker config [controls.pins]" + (f" over board {board.key!r}" if board else "")
    try:
        return checked_pins(merged, reserved, source)
    except BoardError as exc:
        raise ControlsError(str(exc)) from exc


def controls_from(table: Mapping[str, Any], board: BoardProfile | None) -> ControlSettings:
    """``[controls]`` over the board's pins and the default keymap; a fault names its key."""
    for key in table:
        if key not in KEYS:
            raise ControlsError(f"controls.{key} is not a setting; settings: {', '.join(KEYS)}")
    return ControlSettings(
        pins=_pins(table, board),
        keymap=keymap_from(table.get("press"), table.get("long")),
        volume_step=_volume_step(table),
        long_press_s=_number(table, "long_press_s", 0.8, 0.3, 3.0),
        repeat_s=_number(table, "repeat_s", 0.15, 0.05, 1.0),
        bounce_s=_number(table, "bounce_s", 0.01, 0.0, 0.1),
    )
