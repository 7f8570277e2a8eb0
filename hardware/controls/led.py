"""The status LED on GPIO: one colour (``led``) or RGB (``led_r``/``led_g``/``led_b``).

Draws a ``Look`` with gpiozero's own background blink and pulse, so nothing of
ours has to keep time for it.  A pin factory without PWM falls back to plain
on/off: a pulse becomes a blink, a dimmed colour becomes fully on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from gpiozero import LED, PWMLED, RGBLED
from gpiozero.exc import PinPWMUnsupported

from hardware.controls.status import Look

logger = logging.getLogger(__name__)

RGB_PINS = ("led_r", "led_g", "led_b")


def _on_off(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    r, g, b = (1.0 if c > 0 else 0.0 for c in rgb)
    return (r, g, b)


class StatusLed:
    """One status light; ``draw`` may take a moment (it stops the last blink): call it
    off the event loop."""

    def __init__(self, pins: Mapping[str, int], pin_factory: Any = None) -> None:
        self.kind = "none"
        self._one: LED | PWMLED | None = None
        self._rgb: RGBLED | None = None
        self._pwm = True
        if all(p in pins for p in RGB_PINS):
            red, green, blue = (pins[p] for p in RGB_PINS)
            try:
                self._rgb = RGBLED(red, green, blue, pin_factory=pin_factory)
            except PinPWMUnsupported:
                self._rgb = RGBLED(red, green, blue, pwm=False, pin_factory=pin_factory)
                self._pwm = False
            self.kind = "rgb"
        elif "led" in pins:
            try:
                self._one = PWMLED(pins["led"], pin_factory=pin_factory)
            except PinPWMUnsupported:
                self._one = LED(pins["led"], pin_factory=pin_factory)
                self._pwm = False
            self.kind = "one_colour"
        if not self._pwm:
            logger.warning("status LED: no PWM on this pin factory; patterns drawn on/off")

    def draw(self, look: Look) -> None:
        if self._rgb is not None:
            self._draw_rgb(self._rgb, look)
        elif isinstance(self._one, PWMLED):
            self._draw_pwm(self._one, look)
        elif self._one is not None:
            self._draw_on_off(self._one, look)

    def _draw_rgb(self, led: RGBLED, look: Look) -> None:
        r, g, b = look.rgb
        colour = (r * look.brightness, g * look.brightness, b * look.brightness)
        if not self._pwm:
            colour = _on_off(colour)
        if look.steady:
            led.color = colour
        elif look.fade and self._pwm:
            led.pulse(fade_in_time=look.on_s, fade_out_time=look.off_s, on_color=colour)
        else:
            led.blink(on_time=look.on_s, off_time=look.off_s, on_color=colour)

    def _draw_pwm(self, led: PWMLED, look: Look) -> None:
        if look.steady:
            led.value = look.brightness
        elif look.fade:
            led.pulse(fade_in_time=look.on_s, fade_out_time=look.off_s)
        else:
            led.blink(on_time=look.on_s, off_time=look.off_s)

    def _draw_on_off(self, led: LED, look: Look) -> None:
        if look.steady:
            led.value = 1 if look.brightness > 0 else 0
        else:
            led.blink(on_time=look.on_s, off_time=look.off_s)

    def close(self) -> None:
        for led in (self._rgb, self._one):
            if led is not None:
                led.close()
