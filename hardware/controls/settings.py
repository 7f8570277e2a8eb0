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


def _clash(
    control: str,
    pin: object,
    merged: Mapping[str, Any],
    given: Mapping[str, Any],
    board: BoardProfile | None,
) -> str:
    """Why a maker's ``control = pin`` cannot be ("" when nothing else has ``pin``)."""
    for other, value in merged.items():
        if other != control and value == pin and not isinstance(pin, bool):
            if other in given:
                return f"is also given to controls.pins.{other}; give each control its own GPIO"
            assert board is not None
            return (
                f"is already {other}'s on board {board.key!r}: move {other} too "
                f'(controls.pins.{other} = <GPIO>) or remove it ({other} = "none")'
            )
    for purpose, pins in (board.reserved_pins if board is not None else {}).items():
        if pin in pins and not isinstance(pin, bool):
            assert board is not None
            return f"is reserved on board {board.key!r} ({purpose}); pick a free GPIO"
    return ""


def _check_overrides(
    merged: Mapping[str, Any], given: Mapping[str, Any], board: BoardProfile | None
) -> None:
    """The maker's own ``[controls.pins]`` entries, named by their key, before the
    board-wide check (whose message would name the board's pin instead)."""
    for control, pin in given.items():
        problem = _clash(control, pin, merged, given, board) if pin != REMOVED else ""
        if problem:
            raise ControlsError(f"controls.pins.{control} = {pin!r} {problem}")
    rgb = [c for c in ("led_r", "led_g", "led_b") if c in given and given[c] != REMOVED]
    if rgb and "led" in merged and "led" not in given:
        raise ControlsError(
            f"controls.pins.{rgb[0]}: an RGB LED replaces the board's one-colour led; "
            'add led = "none" and give all of led_r, led_g, led_b'
        )


def _pins(table: Mapping[str, Any], board: BoardProfile | None) -> FrozenMap[int]:
    given = table.get("pins", {})
    if not isinstance(given, dict):
        raise ControlsError("[controls.pins] must be a table of control = GPIO number")
    merged: dict[str, Any] = dict(board.pins) if board is not None else {}
    for control, value in given.items():
        if value == REMOVED:
            merged.pop(control, None)
        else:
            merged[control] = value
    _check_overrides(merged, given, board)
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
