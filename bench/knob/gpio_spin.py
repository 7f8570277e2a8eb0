"""The spin through GPIO: gpiozero's ``MockFactory`` pins driven edge by edge, in real time,
into the real ``GpioControls``, ``LocalControls`` and ``Controller`` (clock engine).

A thread plays the encoder: each detent is a full quadrature cycle of 4 steps spread
over its 50 ms, and each time phase A moves its contact bounces (``BOUNCE_FLIPS`` extra
edge pairs a fraction of a millisecond apart) before it settles.  What counts is what
reached the controller: the detents ``GpioControls`` reported, the ones ``LocalControls``
counted, and the volumes the lights were shown, whose turning points must be exactly
the spin's.  It also times each detent from its last edge to the controller applying
the new volume (in this process: the GPIO path without the speaker's other work).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from typing import Any

from connect_protocol.messages import Command, Play, SetVolume, TrackRef
from device.clock_engine import ClockEngine
from device.controller import Controller
from device.local_controls import LocalControls
from hardware.controls.keymap import ControlEvent, Turned
from hardware.controls.settings import ControlSettings
from hardware.controls.status import View

from .common import STEP_PERCENT, BenchError, Options, Progress, now_ns, stats_ms
from .spin import START_PERCENT, expected_turns, judge, legs_of

PINS = {"knob_a": 5, "knob_b": 6}
CW = [(True, False), (True, True), (False, True), (False, False)]  # (A, B) closed: A leads
BOUNCE_FLIPS = 3
BOUNCE_GAP_S = 0.0002
SETTLE_S = 5.0


class _Encoder:
    """Drives the encoder's two pins as a hand turning the knob would."""

    def __init__(self, factory: Any) -> None:
        self.a = factory.pin(PINS["knob_a"])
        self.b = factory.pin(PINS["knob_b"])
        self.last_edge_ns: list[int] = []  # per detent: just before its completing edge

    @staticmethod
    def _set(pin: Any, closed: bool) -> None:
        (pin.drive_low if closed else pin.drive_high)()

    def detent(self, clockwise: bool, step_s: float) -> None:
        steps = CW if clockwise else [(b, a) for a, b in CW]
        closed = (False, False)
        for k, (a_closed, b_closed) in enumerate(steps):
            if k:
                time.sleep(step_s)
            if k == len(steps) - 1:
                self.last_edge_ns.append(now_ns())
            if a_closed != closed[0]:
                for _ in range(BOUNCE_FLIPS):
                    self._set(self.a, a_closed)
                    time.sleep(BOUNCE_GAP_S)
                    self._set(self.a, not a_closed)
                    time.sleep(BOUNCE_GAP_S)
                self._set(self.a, a_closed)
            if b_closed != closed[1]:
                self._set(self.b, b_closed)
            closed = (a_closed, b_closed)


def _drive(encoder: _Encoder, legs: list[int], rate: float, stop: threading.Event) -> float:
    """The spin, paced by the clock from its start; how late the worst detent began (s)."""
    interval_s = 1 / rate
    step_s = interval_s / 5  # the cycle's 4 steps in 4/5 of the detent, then a rest
    t0 = time.monotonic()
    late_s = 0.0
    k = 0
    for n in legs:
        for _ in range(abs(n)):
            if stop.is_set():
                return late_s
            wait = t0 + k * interval_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            late_s = max(late_s, -wait)
            encoder.detent(n > 0, step_s)
            k += 1
    return late_s


async def spin(opts: Options, progress: Progress) -> dict[str, Any]:
    from gpiozero.pins.mock import MockFactory

    from hardware.controls.gpio import GpioControls

    loop = asyncio.get_running_loop()
    engine = ClockEngine(lambda uri: None, loop=loop)
    controller = Controller(engine)
    volumes: list[int] = []
    applied_ns: list[int] = []

    def apply(cmd: Command) -> None:
        outcome = controller.handle(cmd)
        if isinstance(cmd, SetVolume):
            applied_ns.append(now_ns())
        if outcome.state is not None:
            controls.observe(state=outcome.state)

    class Lights:
        def show(self, view: View) -> None:
            volumes.append(view.volume_percent)

    settings = dataclasses.replace(ControlSettings(), pins=PINS, volume_step=STEP_PERCENT)
    controls = LocalControls(settings, loop=loop, apply=apply, state=lambda: controller.state)
    apply(Play(id="bench-play", tracks=(TrackRef(uri="legato:track:bench", duration_ms=600_000),)))
    apply(SetVolume(id="bench-volume", volume_percent=START_PERCENT))
    applied_ns.clear()
    controls.add_indicator(Lights())
    volumes.clear()
    submitted: list[int] = []

    handled = asyncio.Event()

    def submit(event: ControlEvent) -> None:  # gpiozero's thread
        if isinstance(event, Turned):
            submitted.append(event.detents)
        controls.submit(event)
        loop.call_soon_threadsafe(handled.set)  # after the event: the loop runs it first

    factory = MockFactory()
    gpio = GpioControls(settings, submit, pin_factory=factory)
    encoder = _Encoder(factory)
    total = round(opts.spin_rate * opts.spin_seconds)
    legs = legs_of(total)
    stop = threading.Event()
    try:
        t0 = time.monotonic()
        driving = asyncio.create_task(
            asyncio.to_thread(_drive, encoder, legs, opts.spin_rate, stop)
        )
        while not driving.done():
            progress.show(f"spin (GPIO): {len(encoder.last_edge_ns)}/{total} detents")
            await asyncio.wait({driving}, timeout=0.5)
        late_s = driving.result()
        wall_s = time.monotonic() - t0
        with contextlib.suppress(TimeoutError):  # judged below if some never arrive
            async with asyncio.timeout(SETTLE_S):
                while controls.events < len(submitted):
                    handled.clear()
                    await handled.wait()
    finally:
        stop.set()
        gpio.close()
        controls.close()
        engine.close()
        factory.reset()
    if len(encoder.last_edge_ns) != total:
        raise BenchError(f"the GPIO spin drove {len(encoder.last_edge_ns)} of {total} detents")
    counts = gpio.counts
    out: dict[str, Any] = {
        "detents_sent": total,
        "signed_sum_sent": sum(legs),
        "legs": legs,
        "spin_s": round(wall_s, 2),
        "rate_per_s": round(total / wall_s, 2) if wall_s else None,
        "max_late_ms": round(late_s * 1000, 1),
        "bounce_flips_per_a_edge": BOUNCE_FLIPS,
        "gpio_counts": {"cw": counts["detents_cw"], "ccw": counts["detents_ccw"]},
        "events_counted": len(submitted),
        "detents_counted": controls.detents,
        "indicator": judge(volumes, START_PERCENT, legs, STEP_PERCENT),
        "final_volume": controller.state.volume_percent,
        "expected_final_volume": expected_turns(START_PERCENT, legs, STEP_PERCENT)[-1],
    }
    if len(applied_ns) == total:
        out["edge_to_controller_ms"] = stats_ms(
            [b - a for a, b in zip(encoder.last_edge_ns, applied_ns, strict=True)]
        )
    out["every_detent_counted"] = (
        len(submitted) == total
        and sum(submitted) == sum(legs)
        and controls.detents == sum(legs)
        and out["final_volume"] == out["expected_final_volume"]
    )
    out["none_reversed"] = bool(out["indicator"]["ok"]) and all(abs(d) == 1 for d in submitted)
    out["ok"] = out["every_detent_counted"] and out["none_reversed"]
    progress.finish(
        f"spin (GPIO): {total} detents in {wall_s:.1f} s; reported {len(submitted)}, "
        f"counted {controls.detents} net; {'OK' if out['ok'] else 'FAILED'}"
    )
    return out
