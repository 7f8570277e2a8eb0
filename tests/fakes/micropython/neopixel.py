"""A stand-in for MicroPython's ``neopixel`` on CPython: keeps every frame written."""

from __future__ import annotations

from machine import Pin


class NeoPixel:
    strips: list[NeoPixel] = []

    def __init__(self, pin: Pin, n: int) -> None:
        self.pin = pin
        self.n = n
        self.buffer = [(0, 0, 0)] * n
        self.frames: list[list[tuple[int, int, int]]] = []
        NeoPixel.strips.append(self)

    def __setitem__(self, index: int, colour: tuple[int, int, int]) -> None:
        self.buffer[index] = colour

    def __len__(self) -> int:
        return self.n

    def write(self) -> None:
        self.frames.append(list(self.buffer))
