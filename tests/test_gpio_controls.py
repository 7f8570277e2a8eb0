"""GPIO buttons, knob and status LED, driven pin edge by pin edge as hardware would.

gpiozero's ``MockFactory`` is the only fake: its pins take ``drive_low`` /
``drive_high`` (buttons and encoder contacts pull up, so closed = low) and record
what an output was set to.  Its edge callbacks run synchronously in the thread
that drives the pin (here, the test's): encoder detents are therefore reported
before ``drive_*`` returns, while button gestures come from the controls' own
worker thread and are awaited on a queue, with a bounded wait.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Iterator

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPin, MockPWMPin
from hypothesis import given, settings
from hypothesis import strategies as st

from device.config import SpeakerConfig
from device.control_devices import open_control_devices
from hardware.board_profiles import FrozenMap
from hardware.controls.gpio import GpioControls
from hardware.controls.keymap import ControlEvent, Gesture, Pressed, Turned
from hardware.controls.settings import ControlSettings
from hardware.controls.status import LOOKS, Mode, Pattern, View

PINS = {
    "play": 17,
    "next": 27,
    "prev": 23,
    "vol_up": 24,
    "vol_down": 25,
    "knob_a": 5,
    "knob_b": 6,
    "knob_push": 13,
    "led": 12,
}
RGB_PINS = {**{k: v for k, v in PINS.items() if k != "led"}, "led_r": 12, "led_g": 16, "led_b": 26}
WAIT_S = 5.0
HELD_S = 0.05  # how long a finger stays on a button for a short press (> bounce_s)


def settings_for(pins: dict[str, int]) -> ControlSettings:
    return ControlSettings(pins=FrozenMap(pins.items()), long_press_s=1.0, bounce_s=0.01)


class Rig:
    """GPIO controls on a mock board, with what they reported collected in a queue."""

    def __init__(self, pins: dict[str, int] = PINS) -> None:
        self.factory = MockFactory(pin_class=MockPWMPin)
        self.events: queue.Queue[ControlEvent] = queue.Queue()
        self.controls = GpioControls(settings_for(pins), self.events.put, pin_factory=self.factory)

    def pin(self, name: str) -> MockPin:
        pin: MockPin = self.factory.pin(self.controls.diagnostics()["pins"][name])
        return pin

    def next_event(self) -> ControlEvent:
        return self.events.get(timeout=WAIT_S)

    def drained(self) -> list[ControlEvent]:
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait())
        return out

    def close(self) -> None:
        self.controls.close()
        self.factory.reset()


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = Rig()
    try:
        yield r
    finally:
        r.close()


def bounce(pin: MockPin, closed: bool, flips: int = 4) -> None:
    """The contact reaching ``closed`` with ``flips`` extra edges within microseconds."""
    for i in range(flips + 1):
        if (i % 2 == 0) == closed:
            pin.drive_low()
        else:
            pin.drive_high()
    (pin.drive_low if closed else pin.drive_high)()


def short_press(pin: MockPin, flips: int = 4) -> None:
    bounce(pin, True, flips)
    time.sleep(HELD_S)  # the finger on the button
    bounce(pin, False, flips)


# --- buttons --------------------------------------------------------------------------


def test_a_bouncing_short_press_is_one_press(rig: Rig) -> None:
    play = rig.pin("play")
    short_press(play)
    assert rig.next_event() == Pressed("play", Gesture.PRESS)
    # a second, clean press: anything the first one's bounce made would come before it
    short_press(play, flips=0)
    assert rig.next_event() == Pressed("play", Gesture.PRESS)
    assert rig.drained() == []
    assert rig.controls.diagnostics()["presses"] == 2


def test_press_and_hold_is_long_then_release(rig: Rig) -> None:
    nxt = rig.pin("next")
    bounce(nxt, True)
    pressed_at = time.monotonic()
    assert rig.next_event() == Pressed("next", Gesture.LONG)
    assert time.monotonic() - pressed_at >= 1.0  # not before the long-press time
    bounce(nxt, False)
    assert rig.next_event() == Pressed("next", Gesture.RELEASE)
    short_press(nxt, flips=0)
    assert rig.next_event() == Pressed("next", Gesture.PRESS)  # and no short press before it
    diagnostics = rig.controls.diagnostics()
    assert (diagnostics["presses"], diagnostics["long_presses"]) == (1, 1)


def test_every_button_and_the_knob_push_report_under_their_names(rig: Rig) -> None:
    for pin_name, button in [
        ("play", "play"),
        ("next", "next"),
        ("prev", "prev"),
        ("vol_up", "vol_up"),
        ("vol_down", "vol_down"),
        ("knob_push", "knob"),
    ]:
        short_press(rig.pin(pin_name), flips=2)
        assert rig.next_event() == Pressed(button, Gesture.PRESS)


def test_two_buttons_held_together_each_report_their_own(rig: Rig) -> None:
    up, down = rig.pin("vol_up"), rig.pin("vol_down")
    bounce(up, True)
    bounce(down, True)
    got = {rig.next_event(), rig.next_event()}
    assert got == {Pressed("vol_up", Gesture.LONG), Pressed("vol_down", Gesture.LONG)}
    bounce(up, False)
    assert rig.next_event() == Pressed("vol_up", Gesture.RELEASE)
    bounce(down, False)
    assert rig.next_event() == Pressed("vol_down", Gesture.RELEASE)


# --- the knob -------------------------------------------------------------------------

CW = [
    (True, False),
    (True, True),
    (False, True),
    (False, False),
]  # (a closed, b closed) after each step: A leads


def turn(a: MockPin, b: MockPin, detents: int, bounce_on_a: int = 0) -> None:
    """Quadrature cycles for ``detents`` clicks (negative: counter-clockwise), with
    ``bounce_on_a`` extra edge pairs each time phase A changes."""
    steps = CW if detents > 0 else [(b_, a_) for a_, b_ in CW]
    for _ in range(abs(detents)):
        closed = (False, False)
        for a_closed, b_closed in steps:
            if a_closed != closed[0]:
                for _ in range(bounce_on_a):
                    set_pin(a, a_closed)
                    set_pin(a, not a_closed)
                set_pin(a, a_closed)
            if b_closed != closed[1]:
                set_pin(b, b_closed)
            closed = (a_closed, b_closed)


def set_pin(pin: MockPin, closed: bool) -> None:
    (pin.drive_low if closed else pin.drive_high)()


def detents(events: list[ControlEvent]) -> list[int]:
    return [e.detents for e in events if isinstance(e, Turned)]


def test_a_fast_bouncing_spin_counts_every_detent_and_reverses_none(rig: Rig) -> None:
    a, b = rig.pin("knob_a"), rig.pin("knob_b")
    turn(a, b, 200, bounce_on_a=3)
    assert detents(rig.drained()) == [1] * 200
    turn(a, b, -200, bounce_on_a=3)
    assert detents(rig.drained()) == [-1] * 200
    diagnostics = rig.controls.diagnostics()
    assert (diagnostics["detents_cw"], diagnostics["detents_ccw"]) == (200, 200)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-5, 5).filter(bool), st.integers(0, 4), st.booleans()),
        min_size=1,
        max_size=12,
    )
)
def test_any_turns_with_bounce_on_either_phase_count_exactly(
    moves: list[tuple[int, int, bool]],
) -> None:
    r = Rig({"knob_a": 5, "knob_b": 6})
    try:
        a, b = r.pin("knob_a"), r.pin("knob_b")
        for clicks, flips, bouncy_b in moves:
            if bouncy_b:  # bounce on B instead: the same wiring seen with phases swapped
                turn(b, a, -clicks, bounce_on_a=flips)
            else:
                turn(a, b, clicks, bounce_on_a=flips)
        expected = [1 if clicks > 0 else -1 for clicks, _, _ in moves for _ in range(abs(clicks))]
        assert detents(r.drained()) == expected
    finally:
        r.close()


# --- the status LED -------------------------------------------------------------------


def view(pattern: Pattern) -> View:
    return View(mode=Mode.PLAYING, volume_percent=50, pattern=pattern)


def changes_within(pin: MockPin, window_s: float) -> int:
    pin.clear_states()
    time.sleep(window_s)
    return len(pin.states) - 1


def wait_for_value(pin: MockPin, value: float) -> None:
    deadline = time.monotonic() + WAIT_S
    while abs(float(pin.state) - value) > 1e-6:
        assert time.monotonic() < deadline, f"LED at {pin.state}, not {value}"
        time.sleep(0.01)


def test_one_colour_led_is_steady_when_playing_and_blinks_while_connecting(rig: Rig) -> None:
    led = rig.pin("led")
    rig.controls.show(view(Pattern.PLAYING))
    wait_for_value(led, 1.0)
    assert changes_within(led, 0.6) == 0  # longer than any blink or pulse period
    rig.controls.show(view(Pattern.CONNECTING))
    deadline = time.monotonic() + WAIT_S
    while changes_within(led, 0.1) == 0:
        assert time.monotonic() < deadline, "the LED never blinked"
    assert {0.0, 1.0} >= {float(s.state) for s in led.states}  # a hard blink
    rig.controls.show(view(Pattern.IDLE))
    wait_for_value(led, LOOKS[Pattern.IDLE].brightness)  # dimmed, steady


def test_one_colour_led_pulses_while_buffering(rig: Rig) -> None:
    led = rig.pin("led")
    rig.controls.show(view(Pattern.BUFFERING))
    deadline = time.monotonic() + WAIT_S
    while not any(0.0 < float(s.state) < 1.0 for s in led.states):
        assert time.monotonic() < deadline, "the LED never faded"
        time.sleep(0.02)


def test_rgb_led_shows_each_pattern_colour() -> None:
    r = Rig(RGB_PINS)
    try:
        red, green, blue = r.pin("led_r"), r.pin("led_g"), r.pin("led_b")
        r.controls.show(view(Pattern.PLAYING))
        for pin, value in zip((red, green, blue), LOOKS[Pattern.PLAYING].rgb, strict=True):
            wait_for_value(pin, value)
        r.controls.show(view(Pattern.ERROR))  # red, blinking
        deadline = time.monotonic() + WAIT_S
        while changes_within(red, 0.1) == 0:
            assert time.monotonic() < deadline, "the red LED never blinked"
        assert float(green.state) == 0.0
        assert float(blue.state) == 0.0
        assert r.controls.diagnostics()["led"] == "rgb"
    finally:
        r.close()


def test_without_pwm_the_led_still_shows_patterns_on_and_off() -> None:
    factory = MockFactory()  # MockPin: no PWM
    controls = GpioControls(settings_for({"led": 12}), lambda e: None, pin_factory=factory)
    try:
        led: MockPin = factory.pin(12)
        controls.show(view(Pattern.IDLE))
        wait_for_value(led, 1.0)
        controls.show(view(Pattern.BUFFERING))  # a pulse, drawn as a blink
        deadline = time.monotonic() + WAIT_S
        while changes_within(led, 0.1) == 0:
            assert time.monotonic() < deadline, "the LED never blinked"
    finally:
        controls.close()


# --- opening them from the speaker's config ---------------------------------------------


def test_a_speaker_without_gpio_warns_and_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """This machine is not a Pi: no pin factory works, as on a laptop."""
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    monkeypatch.setattr(Device, "pin_factory", None)
    config = SpeakerConfig(id="den", name="Den", controls=settings_for(PINS))
    with caplog.at_level(logging.WARNING, logger="device.control_devices"):
        devices = open_control_devices(config, lambda e: None, lambda: None)
    assert devices == []
    assert "GPIO controls are off" in caplog.text
    assert "play=17" in caplog.text
    # why each pin library failed is in that one line, not in warnings of their own
    assert "Falling back from lgpio" in caplog.text


def test_a_speaker_without_pins_opens_no_gpio() -> None:
    config = SpeakerConfig(id="den", name="Den")
    assert open_control_devices(config, lambda e: None, lambda: None) == []


def test_the_speaker_opens_gpio_through_the_mock_pin_factory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    monkeypatch.setenv("GPIOZERO_MOCK_PIN_CLASS", "mockpwmpin")
    monkeypatch.setattr(Device, "pin_factory", None)
    events: queue.Queue[ControlEvent] = queue.Queue()
    config = SpeakerConfig(id="den", name="Den", controls=settings_for(PINS))
    devices = open_control_devices(config, events.put, lambda: None)
    try:
        assert [d.name for d in devices] == ["gpio"]
        factory = Device.pin_factory
        assert isinstance(factory, MockFactory)
        turn(factory.pin(5), factory.pin(6), 1)
        assert events.get(timeout=WAIT_S) == Turned(1)
    finally:
        for d in devices:
            d.close()
