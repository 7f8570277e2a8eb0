"""GPIO controls seen from the hub: knob and buttons on a speaker, checked on the Web API.

Mosquitto and the hub run as processes on loopback, as in the other end-to-end
tests; the speaker's ``SpeakerService`` runs in this process on its own event
loop (its config written by the hub's provisioning and read by
``device.config.load``), so that its GPIO pins are gpiozero's mock pins
(``GPIOZERO_PIN_FACTORY=mock``), which the test drives edge by edge.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPin

from device.clock_engine import ClockEngine
from device.config import load
from device.hub_link import resolve
from device.service import MdnsPlan, SpeakerService
from hub.demo_music.seed import seed_demo
from tests.system import Api, System

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

PINS = """
[controls]
long_press_s = 0.3

[controls.pins]
play = 17
next = 27
prev = 23
vol_up = 24
vol_down = 25
knob_a = 5
knob_b = 6
knob_push = 13
led = 12
"""
WAIT_S = 15.0
HELD_S = 0.05


@pytest.fixture
def mock_gpio(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """gpiozero's own mock factory, chosen the way a maker would on a desk: by env."""
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    monkeypatch.setenv("GPIOZERO_MOCK_PIN_CLASS", "mockpwmpin")
    monkeypatch.setattr(Device, "pin_factory", None)
    yield
    factory = Device.pin_factory
    if isinstance(factory, MockFactory):
        factory.reset()  # its pins, for whatever test makes the next one


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    sysm = System(tmp_path)
    seed_demo(sysm.db)
    config = sysm.provision("den")
    with config.open("a") as f:
        f.write(PINS)
    try:
        sysm.start_broker()
        sysm.start_hub()
        yield sysm
    finally:
        sysm.stop()


def album_tracks(system: System) -> list[str]:
    with system.db.reading() as conn:
        album_id = conn.execute("SELECT album_id FROM tracks ORDER BY album_id LIMIT 1").fetchone()
        rows = conn.execute(
            "SELECT id FROM tracks WHERE album_id = ? ORDER BY track_number", (album_id[0],)
        ).fetchall()
    return [f"spotify:track:{r[0]}" for r in rows]


async def until(check: Callable[[], Any], what: str) -> Any:
    """Poll ``check`` (run off the loop: it may call the Web API) until it is truthy."""
    deadline = time.monotonic() + WAIT_S
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def turn(a: MockPin, b: MockPin, detents: int) -> None:
    if detents < 0:
        a, b = b, a
    for _ in range(abs(detents)):
        for a_closed, b_closed in [(1, 0), (1, 1), (0, 1), (0, 0)]:
            (a.drive_low if a_closed else a.drive_high)()
            (b.drive_low if b_closed else b.drive_high)()


async def short_press(pin: MockPin) -> None:
    for closed in (True, False, True):  # with a bounce
        (pin.drive_low if closed else pin.drive_high)()
    await asyncio.sleep(HELD_S)
    pin.drive_high()
    await asyncio.sleep(HELD_S)


async def steady_at(pin: MockPin, value: float) -> None:
    """The LED at ``value`` and staying there longer than any blink or pulse period."""
    await until(lambda: abs(float(pin.state) - value) < 1e-6, f"the LED at {value}")
    pin.clear_states()
    await asyncio.sleep(0.6)
    assert len(pin.states) == 1, f"the LED changed: {pin.states}"


async def blinking(pin: MockPin) -> None:
    pin.clear_states()
    await until(lambda: len(pin.states) >= 3, "the LED blinking")


async def scenario(system: System, api: Api) -> None:
    config, broker = await resolve(load(system.configs["den"]), 10)
    speaker = SpeakerService(config, broker, mdns_plan=MdnsPlan(advertise=False))
    await speaker.start()
    try:
        factory = Device.pin_factory
        assert isinstance(factory, MockFactory)
        led = factory.pin(12)
        knob_a, knob_b, play = factory.pin(5), factory.pin(6), factory.pin(17)
        await asyncio.to_thread(api.wait_online, "den")
        r = await asyncio.to_thread(
            api.client.put,
            "/v1/me/player/play",
            params={"device_id": "den"},
            json={"uris": album_tracks(system)},
        )
        assert r.status_code == 204, r.text
        await until(lambda: (api.player() or {}).get("is_playing"), "playing at the hub")
        await steady_at(led, 1.0)  # playing: steady

        turn(knob_a, knob_b, 3)
        await until(
            lambda: (api.player() or {}).get("device", {}).get("volume_percent") == 56,
            "the hub seeing the knob's three detents (50 -> 56)",
        )
        await short_press(play)
        await until(lambda: (api.player() or {}).get("is_playing") is False, "paused at the hub")
        await short_press(play)
        await until(lambda: (api.player() or {}).get("is_playing"), "playing again")

        assert system.broker is not None
        await asyncio.to_thread(system.broker.stop)  # the hub is out of reach
        await blinking(led)  # connecting
        turn(knob_a, knob_b, -2)  # and the knob still works, here and now
        assert speaker.controller is not None
        engine = speaker.controller.engine
        assert isinstance(engine, ClockEngine)
        await until(lambda: engine.volume_percent == 52, "the volume turned down locally")
        info = speaker.diagnostics()["controls"]["devices"]["gpio"]
        assert (info["detents_cw"], info["detents_ccw"], info["presses"]) == (3, 2, 2)
    finally:
        await speaker.stop()


def test_knob_and_buttons_reach_the_hub_and_the_led_follows(
    mock_gpio: None, system: System
) -> None:
    api = Api(system)
    try:
        asyncio.run(scenario(system, api))
    finally:
        api.close()
