"""GPIO pin edges all the way to the player: mock pins -> ``GpioControls`` ->
``LocalControls`` -> the speaker's ``Controller`` -> the clock engine.

Everything above gpiozero's mock pins is the speaker's real code on a real event
loop; only the sound is the clock engine's silence.  What is checked is what a
listener notices: the volume the engine plays at, playing or paused, the track.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from gpiozero.pins.mock import MockFactory, MockPin, MockPWMPin

from connect_protocol.messages import Command, Play, PlayerState, TrackRef
from device.clock_engine import ClockEngine
from device.controller import Controller
from device.local_controls import LocalControls
from hardware.board_profiles import FrozenMap
from hardware.controls.gpio import GpioControls
from hardware.controls.settings import ControlSettings

PINS = {"play": 17, "next": 27, "vol_up": 24, "knob_a": 5, "knob_b": 6, "knob_push": 13}
WAIT_S = 5.0
HELD_S = 0.05
ALBUM_A = tuple(
    TrackRef(uri=f"legato:track:a{i}", duration_ms=200_000, album="A") for i in range(3)
)
ALBUM_B = tuple(
    TrackRef(uri=f"legato:track:b{i}", duration_ms=200_000, album="B") for i in range(2)
)


@dataclass
class Speaker:
    controller: Controller
    engine: ClockEngine
    controls: LocalControls
    factory: MockFactory

    @property
    def state(self) -> PlayerState:
        return self.controller.state

    def pin(self, name: str) -> MockPin:
        pin: MockPin = self.factory.pin(PINS[name])
        return pin


@asynccontextmanager
async def speaker(repeat_s: float = 0.15) -> AsyncIterator[Speaker]:
    loop = asyncio.get_running_loop()
    engine = ClockEngine(lambda uri: None, loop=loop)
    engine.set_volume(50)
    controller = Controller(engine, state=PlayerState(session="core"))
    settings = ControlSettings(
        pins=FrozenMap(PINS.items()), long_press_s=0.3, repeat_s=repeat_s, bounce_s=0.01
    )

    def apply(cmd: Command) -> None:
        outcome = controller.handle(cmd)
        if outcome.state is not None:
            controls.observe(state=outcome.state)  # as the service does

    controls = LocalControls(settings, loop=loop, apply=apply, state=lambda: controller.state)
    factory = MockFactory(pin_class=MockPWMPin)
    gpio = GpioControls(settings, controls.submit, pin_factory=factory)
    try:
        yield Speaker(controller, engine, controls, factory)
    finally:
        await asyncio.to_thread(gpio.close)
        controls.close()
        engine.close()
        factory.reset()


def on_loop(scenario: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """A test that runs ``scenario`` on a fresh event loop."""

    @functools.wraps(scenario)
    def test() -> None:
        asyncio.run(scenario())

    return test


async def until(check: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def turn(a: MockPin, b: MockPin, detents: int) -> None:
    steps = [(1, 0), (1, 1), (0, 1), (0, 0)]
    if detents < 0:
        a, b = b, a
    for _ in range(abs(detents)):
        for a_closed, b_closed in steps:
            (a.drive_low if a_closed else a.drive_high)()
            (b.drive_low if b_closed else b.drive_high)()


async def short_press(pin: MockPin) -> None:
    pin.drive_low()
    pin.drive_high()  # bounce
    pin.drive_low()
    await asyncio.sleep(HELD_S)
    await release(pin)


async def release(pin: MockPin) -> None:
    """The finger off the button, for longer than a bounce (a person's fastest re-press)."""
    pin.drive_high()
    await asyncio.sleep(HELD_S)


def play(s: Speaker, tracks: tuple[TrackRef, ...]) -> None:
    outcome = s.controller.handle(Play(id="hub-1", tracks=tracks, context_uri="legato:album:x"))
    assert outcome.ack is not None
    assert outcome.ack.ok
    if outcome.state is not None:
        s.controls.observe(state=outcome.state)


@on_loop
async def test_a_knob_detent_changes_the_volume_at_once() -> None:
    async with speaker() as s:
        revision = s.state.revision
        turn(s.pin("knob_a"), s.pin("knob_b"), 3)
        await until(lambda: s.state.volume_percent == 56, "three detents up")
        assert s.engine.volume_percent == 56  # what the listener hears, not only the state
        assert s.state.revision == revision + 3  # each a change the hub and remotes see
        turn(s.pin("knob_a"), s.pin("knob_b"), -5)
        await until(lambda: s.state.volume_percent == 46, "five detents down")
        assert s.engine.volume_percent == 46


@on_loop
async def test_the_play_button_toggles_and_long_play_stops_then_play_restarts() -> None:
    async with speaker() as s:
        play(s, ALBUM_A)
        assert s.state.is_playing
        await short_press(s.pin("play"))
        await until(lambda: not s.state.is_playing, "paused")
        await short_press(s.pin("knob_push"))  # the knob's push: play/pause too
        await until(lambda: s.state.is_playing, "playing again")
        s.pin("play").drive_low()  # held: long play = stop
        await until(lambda: s.state.current is None, "stopped")
        await release(s.pin("play"))
        await short_press(s.pin("play"))  # nothing loaded: the last context again
        await until(lambda: s.state.is_playing, "the last context playing")
        assert s.state.current is not None
        assert s.state.current.uri == ALBUM_A[0].uri


@on_loop
async def test_a_held_volume_button_repeats_until_it_is_let_go() -> None:
    async with speaker(repeat_s=0.05) as s:
        up = s.pin("vol_up")
        up.drive_low()
        await until(lambda: s.state.volume_percent >= 60, "the volume climbing while held")
        await release(up)
        await until(lambda: s.controls.events == 2, "the release handled (after its long)")
        stopped_at = s.state.volume_percent
        await asyncio.sleep(0.3)  # six repeat periods with the button up
        assert s.state.volume_percent == stopped_at
        assert s.engine.volume_percent == stopped_at


@on_loop
async def test_long_next_skips_to_the_next_album() -> None:
    async with speaker() as s:
        play(s, ALBUM_A + ALBUM_B)
        nxt = s.pin("next")
        nxt.drive_low()
        await until(lambda: s.state.current == ALBUM_B[0], "the next album's first track")
        await release(nxt)
        await short_press(nxt)  # a short press is plain next
        await until(lambda: s.state.current == ALBUM_B[1], "the next track")
