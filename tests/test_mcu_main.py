"""The panel firmware's main.py on CPython, against fake hardware (tests/fakes/micropython).

Fake pins, a fake UART and a fake NeoPixel strip stand in for the Pico's; ``time`` gets
MicroPython's ``ticks_ms``/``sleep_ms`` from a synthetic clock, so the loop runs for some passes
with no waiting.  main.py is imported by name at run time: the main mypy run checks it
against MicroPython's stubs (hardware/mcu/mypy.ini), not CPython's typeshed.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import frames
import pytest
from ticks import TICKS_MAX, ticks_add

FAKES = Path(__file__).resolve().parent / "fakes" / "micropython"
FAKE_MODULES = ("machine", "neopixel", "micropython", "main")


class Clock:
    def __init__(self, start_ms: int) -> None:
        self.now_ms = start_ms

    def ticks_ms(self) -> int:
        return self.now_ms

    def sleep_ms(self, ms: int) -> None:
        self.now_ms = ticks_add(self.now_ms, ms)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    # close to the tick counter's wrap, so the loop crosses it
    fake = Clock(TICKS_MAX - 3000)
    monkeypatch.setattr(time, "ticks_ms", fake.ticks_ms, raising=False)
    monkeypatch.setattr(time, "sleep_ms", fake.sleep_ms, raising=False)
    return fake


@pytest.fixture
def hardware(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The fake ``machine`` module, fresh, with main.py importable against it."""
    monkeypatch.syspath_prepend(str(FAKES))
    for name in FAKE_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    machine = importlib.import_module("machine")
    importlib.import_module("neopixel").NeoPixel.strips.clear()
    machine.reset_fakes()
    config = importlib.import_module("config")
    monkeypatch.setattr(config, "LINK", "uart0")
    yield machine
    for name in FAKE_MODULES:
        sys.modules.pop(name, None)


def main_module() -> ModuleType:
    return importlib.import_module("main")


def sent_payloads(uart: object) -> list[str]:
    reader = frames.LineReader()
    payloads = reader.feed(bytes(uart.written))  # type: ignore[attr-defined]
    assert reader.dropped == 0
    return payloads


def run_for(firmware: object, clock: Clock, ms: int) -> None:
    end = ticks_add(clock.now_ms, ms)
    while clock.now_ms != end:
        firmware.step(clock.now_ms)  # type: ignore[attr-defined]
        clock.sleep_ms(1)


def test_it_says_hello_and_draws_the_ring(hardware: ModuleType, clock: Clock) -> None:
    firmware = main_module().run(max_iterations=50)
    uart = hardware.UART.uarts[0]
    assert sent_payloads(uart)[0] == "HELLO,1,1.0.0"
    strip = importlib.import_module("neopixel").NeoPixel.strips[0]
    assert len(strip.frames) >= 2
    assert len(strip.frames[-1]) == 12
    assert firmware.errors == 0
    assert hardware.WDT.feeds >= 50


def test_a_button_press_sends_btn(hardware: ModuleType, clock: Clock) -> None:
    firmware = main_module().run(max_iterations=1)
    uart = hardware.UART.uarts[0]
    play = hardware.Pin.pins[2]
    play.drive(0)
    run_for(firmware, clock, 100)
    play.drive(1)
    run_for(firmware, clock, 50)
    knob = hardware.Pin.pins[9]
    knob.drive(0)
    run_for(firmware, clock, 1000)
    knob.drive(1)
    run_for(firmware, clock, 50)
    buttons_sent = [p for p in sent_payloads(uart) if p.startswith("BTN")]
    assert buttons_sent == ["BTN,play,press", "BTN,knob,long", "BTN,knob,release"]


def test_encoder_edges_send_enc(hardware: ModuleType, clock: Clock) -> None:
    firmware = main_module().run(max_iterations=1)
    uart = hardware.UART.uarts[0]
    a, b = hardware.Pin.pins[7], hardware.Pin.pins[8]
    assert a.hard
    assert b.hard
    for _ in range(3):  # three detents forward: 3 -> 2 -> 0 -> 1 -> 3
        b.drive(0)
        a.drive(0)
        b.drive(1)
        a.drive(1)
    run_for(firmware, clock, 20)
    a.drive(0)  # one back, with contact A chattering: 3 -> 1 -> 0 -> 2 -> 0 -> 2 -> 3
    b.drive(0)
    a.drive(1)
    a.drive(0)
    a.drive(1)
    b.drive(1)
    run_for(firmware, clock, 40)
    assert [p for p in sent_payloads(uart) if p.startswith("ENC")] == ["ENC,+3", "ENC,-1"]


def test_pongs_keep_the_link_and_silence_brings_hello_again(
    hardware: ModuleType, clock: Clock
) -> None:
    firmware = main_module().run(max_iterations=1)
    uart = hardware.UART.uarts[0]
    uart.incoming += frames.state("playing") + frames.volume(30)
    for _ in range(8):  # answer every PING for 8 s
        run_for(firmware, clock, 1000)
        if sent_payloads(uart).count("PING") > 0:
            uart.incoming += frames.pong()
    assert firmware.panel.link_up
    assert sent_payloads(uart).count("HELLO,1,1.0.0") == 1
    assert sent_payloads(uart).count("PING") >= 3
    uart.written.clear()
    run_for(firmware, clock, 7000)  # the speaker went quiet
    assert "HELLO,1,1.0.0" in sent_payloads(uart)
    assert firmware.panel.pattern() == "connecting"


def test_leds_follow_the_speaker_and_show_a_volume_change(
    hardware: ModuleType, clock: Clock
) -> None:
    firmware = main_module().run(max_iterations=1)
    uart = hardware.UART.uarts[0]
    strip = importlib.import_module("neopixel").NeoPixel.strips[0]
    uart.incoming += frames.state("playing") + frames.volume(50)
    run_for(firmware, clock, 100)
    green = strip.frames[-1][0]
    assert green[1] > green[0]
    assert green[1] > green[2]
    uart.incoming += frames.volume(25)
    run_for(firmware, clock, 100)
    assert [pixel != (0, 0, 0) for pixel in strip.frames[-1]] == [True] * 3 + [False] * 9
    run_for(firmware, clock, 1600)
    assert strip.frames[-1][0] == green


def test_garbage_never_stops_it(hardware: ModuleType, clock: Clock) -> None:
    firmware = main_module().run(max_iterations=1)
    uart = hardware.UART.uarts[0]
    uart.incoming += bytes(range(256)) * 3 + b"$$$***\r\n\n$VOL,999*00\r\n" + frames.pong()
    run_for(firmware, clock, 200)
    assert firmware.errors == 0
    assert firmware.panel.bad_frames > 0
    assert firmware.panel.link_up


def test_the_knob_held_at_power_up_leaves_the_repl(hardware: ModuleType, clock: Clock) -> None:
    hardware.Pin(9).value(0)
    assert main_module().run(max_iterations=10) is None
    assert 0 not in hardware.UART.uarts
