"""The ``[controls]`` mistakes a maker makes in the speaker's config, and what they read.

Each is a real TOML file loaded by ``device.config.load``: the error must name
the key the maker wrote and say what to do.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from device.config import ConfigError, SpeakerConfig, load
from hardware.controls.keymap import Action

BOARD = '[speaker]\nid = "den"\nboard = "pi-max98357a"\n'  # next = 27, sd_mode reserves 4


def load_text(tmp_path: Path, text: str) -> SpeakerConfig:
    path = tmp_path / "speaker.toml"
    path.write_text(text)
    return load(path)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            BOARD + "[controls.pins]\nplay = 27\n",
            "controls.pins.play = 27 is already next's on board 'pi-max98357a'",
        ),
        (
            '[speaker]\nid = "den"\n[controls.pins]\nplay = 5\nnext = 5\n',
            "controls.pins.play = 5 is also given to controls.pins.next",
        ),
        (
            BOARD + "[controls.pins]\nplay = 4\n",
            "controls.pins.play = 4 is reserved on board 'pi-max98357a' (sd_mode)",
        ),
        (
            BOARD + '[controls.press]\nplay = "shuffle"\n',
            "controls.press.play = 'shuffle' is not an action; allowed: play_pause",
        ),
        (
            BOARD + '[controls.long]\nvol_up = "repeat_fast"\n',
            "controls.long.vol_up = 'repeat_fast' is not an action",
        ),
        (
            BOARD + '[controls.press]\nstop = "stop"\n',
            "controls.press.stop is not a button; buttons: play, next, prev",
        ),
        (
            BOARD + "[controls.pins]\nvolume = 7\n",
            "pins.volume is not a control",
        ),
        (
            BOARD + "[controls.pins]\nplay = 40\n",
            "pins.play = 40 is not a header GPIO",
        ),
        (
            '[speaker]\nid = "den"\n[controls.pins]\nknob_a = 5\n',
            "pins.knob_b is missing (a rotary encoder has two)",
        ),
        (
            BOARD + "[controls.pins]\nled_r = 7\nled_g = 8\nled_b = 9\n",
            "controls.pins.led_r: an RGB LED replaces the board's one-colour led; "
            'add led = "none"',
        ),
        (
            BOARD + "[controls]\nvolume_stepp = 3\n",
            "controls.volume_stepp is not a setting",
        ),
        (
            BOARD + "[controls]\nlong_press_s = 10\n",
            "controls.long_press_s = 10 must be a number from 0.3 to 3.0",
        ),
    ],
)
def test_a_mistake_is_refused_naming_its_key(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, toml)
    assert message in str(caught.value)


def test_a_maker_moves_removes_and_remaps_controls(tmp_path: Path) -> None:
    config = load_text(
        tmp_path,
        BOARD
        + """
[controls]
volume_step = 5
long_press_s = 0.5
[controls.pins]
play = 27
next = 22
led = "none"
led_r = 7
led_g = 8
led_b = 9
[controls.press]
knob = "next"
[controls.long]
play = "none"
vol_up = "next"
""",
    )
    pins = dict(config.pins)
    assert (pins["play"], pins["next"], pins["prev"]) == (27, 22, 23)  # prev from the board
    assert "led" not in pins
    assert (pins["led_r"], pins["led_g"], pins["led_b"]) == (7, 8, 9)
    controls = config.controls
    assert (controls.volume_step, controls.long_press_s) == (5, 0.5)
    assert controls.keymap.press["knob"] is Action.NEXT
    assert controls.keymap.long["play"] is Action.NONE
    assert controls.keymap.long["vol_up"] is Action.NEXT
    assert "vol_up" not in controls.keymap.repeats
    assert "vol_down" in controls.keymap.repeats
