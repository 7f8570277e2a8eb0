"""Buttons, the rotary encoder and the status LED on the board's GPIO pins (gpiozero).

Wiring the board profiles assume: every button and the encoder's A, B and push
switch between its GPIO and ground, with the Pi's internal pull-ups (pressed =
low); the LED from its GPIO through a resistor to ground.

Threads: gpiozero calls our edge handlers on its own thread (on a Pi, the pin
library's callback thread; with the mock pin factory, whichever thread drives
the pin).  Button edges are stamped with the time under a lock and handed to
one worker thread, which runs each button's ``ButtonGestures`` and draws the
LED, so ``show`` never blocks the event loop and each button's gestures come out
in order.  The encoder's detents are reported straight from gpiozero's callback.

Debouncing is ours, not the pin library's: the mock pin factory ignores
``bounce_time``, and RPi.GPIO's and the native factory's drop every edge for a
while after one, which can lose a short press's release and leave a button
"held".  ``ButtonGestures`` takes a level only once the contact has been quiet
at it for ``bounce_s``, identically on every pin factory.  The encoder needs no
debouncing: gpiozero's ``RotaryEncoder`` counts a detent only after the full
quadrature cycle, so a phase bouncing back and forth moves it between
intermediate states and never counts (or reverses) a detent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from gpiozero import DigitalInputDevice, RotaryEncoder
from gpiozero.exc import GPIOZeroError, GPIOZeroWarning

from hardware.controls.gestures import ButtonGestures
from hardware.controls.keymap import ControlEvent, Gesture, Pressed, Turned
from hardware.controls.led import StatusLed
from hardware.controls.settings import ControlSettings
from hardware.controls.status import LOOKS, Look, View
from hardware.errors import ControlsError

logger = logging.getLogger(__name__)

#: pin name in ``[pins]`` -> the button name events carry
BUTTON_PINS = {
    "play": "play",
    "next": "next",
    "prev": "prev",
    "vol_up": "vol_up",
    "vol_down": "vol_down",
    "knob_push": "knob",
}
#: the worker looks up at least this often even with nothing due (it is woken for edges)
MAX_IDLE_S = 1.0
#: edges waiting for the worker; more means a pin is oscillating (a floating input)
MAX_PENDING_EDGES = 4096
CLOSE_TIMEOUT_S = 5.0


class GpioControls:
    """A ``ControlDevice``: GPIO buttons and knob in, the status LED out."""

    name = "gpio"

    def __init__(
        self,
        settings: ControlSettings,
        submit: Callable[[ControlEvent], None],
        *,
        pin_factory: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._submit = submit
        self._clock = clock
        self._pins = dict(settings.pins)
        self._wake = threading.Condition()
        self._edges: list[tuple[float, str, bool]] = []  # (time, button, pressed), under _wake
        self._look: Look | None = None  # to draw next, under _wake
        self._closing = False
        self._inputs: list[DigitalInputDevice | RotaryEncoder] = []
        self._buttons: dict[str, ButtonGestures] = {}
        self._led: StatusLed | None = None
        self.counts = {"presses": 0, "long_presses": 0, "detents_cw": 0, "detents_ccw": 0}
        self.edges_dropped = 0
        try:
            self._open(settings, pin_factory)
        except (GPIOZeroError, GPIOZeroWarning) as exc:
            self._close_devices()
            raise ControlsError(f"cannot open the GPIO pins: {exc}") from exc
        except BaseException:
            self._close_devices()
            raise
        self._thread = threading.Thread(target=self._run, name="gpio-controls", daemon=True)
        self._thread.start()

    def _open(self, settings: ControlSettings, pin_factory: Any) -> None:
        for pin_name, button in BUTTON_PINS.items():
            if pin_name in self._pins:
                self._open_button(button, self._pins[pin_name], settings, pin_factory)
        if "knob_a" in self._pins and "knob_b" in self._pins:
            knob = RotaryEncoder(
                self._pins["knob_a"], self._pins["knob_b"], max_steps=0, pin_factory=pin_factory
            )
            self._inputs.append(knob)
            knob.when_rotated_clockwise = self._turned_cw
            knob.when_rotated_counter_clockwise = self._turned_ccw
        self._led = StatusLed(self._pins, pin_factory)

    def _open_button(
        self, button: str, pin: int, settings: ControlSettings, pin_factory: Any
    ) -> None:
        device = DigitalInputDevice(pin, pull_up=True, pin_factory=pin_factory)
        self._inputs.append(device)
        self._buttons[button] = ButtonGestures(
            button,
            long_press_s=settings.long_press_s,
            bounce_s=settings.bounce_s,
            pressed=bool(device.is_active),
        )
        device.when_activated = lambda: self._edge(button, True)
        device.when_deactivated = lambda: self._edge(button, False)

    # --- gpiozero's threads --------------------------------------------------------

    def _edge(self, button: str, pressed: bool) -> None:
        with self._wake:
            if len(self._edges) >= MAX_PENDING_EDGES:
                self.edges_dropped += 1
                return
            # stamped under the lock: the worker never sees time pass an edge it has not got
            self._edges.append((self._clock(), button, pressed))
            self._wake.notify()

    def _turned_cw(self) -> None:
        self.counts["detents_cw"] += 1
        self._hand_on(Turned(1))

    def _turned_ccw(self) -> None:
        self.counts["detents_ccw"] += 1
        self._hand_on(Turned(-1))

    def _hand_on(self, event: ControlEvent) -> None:
        try:
            self._submit(event)
        except Exception:  # the speaker going away must not kill the pin library's thread
            logger.exception("could not hand on %s", event)

    # --- the worker ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wake:
                self._wait_for_work()
                now = self._clock()
                edges, self._edges = self._edges, []
                look, self._look = self._look, None
                closing = self._closing
            if closing:
                return
            events: list[Pressed] = []
            for at_s, button, pressed in edges:
                events += self._buttons[button].edge(at_s, pressed)
            for gestures in self._buttons.values():
                events += gestures.advance(now)
            for event in events:
                self._report(event)
            if look is not None and self._led is not None:
                self._draw(look)

    def _wait_for_work(self) -> None:
        """Under the lock: until an edge, a look, closing, or a button's next deadline."""
        if self._edges or self._look is not None or self._closing:
            return
        due = [d for d in (b.deadline() for b in self._buttons.values()) if d is not None]
        timeout_s = MAX_IDLE_S if not due else min(MAX_IDLE_S, min(due) - self._clock())
        if timeout_s > 0:
            self._wake.wait(timeout_s)

    def _report(self, event: Pressed) -> None:
        if event.gesture is Gesture.PRESS:
            self.counts["presses"] += 1
        elif event.gesture is Gesture.LONG:
            self.counts["long_presses"] += 1
        self._hand_on(event)

    def _draw(self, look: Look) -> None:
        assert self._led is not None
        try:
            self._led.draw(look)
        except Exception:  # a light that cannot be drawn must not stop the buttons
            logger.exception("status LED failed to draw %s", look)

    # --- the ControlDevice interface ---------------------------------------------------

    def show(self, view: View) -> None:
        """From the event loop: draw ``view``'s pattern (on the worker; never blocks)."""
        with self._wake:
            self._look = LOOKS[view.pattern]
            self._wake.notify()

    def diagnostics(self) -> dict[str, Any]:
        return {
            "pins": dict(self._pins),
            "led": self._led.kind if self._led is not None else "none",
            **self.counts,
            "edges_dropped": self.edges_dropped,
        }

    def close(self) -> None:
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join(CLOSE_TIMEOUT_S)
        self._close_devices()

    def _close_devices(self) -> None:
        if self._led is not None:
            self._led.close()
        for device in self._inputs:
            device.close()
        self._inputs.clear()
