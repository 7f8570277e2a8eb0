"""A hand-written stand-in for MicroPython's ``machine`` on CPython, for the panel's main.py.

Pins keep a level the test drives with ``Pin.drive``, which fires the pin's IRQ handler on a
matching edge; UARTs keep what was written and hand out what the test queued.
"""

from __future__ import annotations

from collections.abc import Callable


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8

    pins: dict[int, Pin] = {}

    def __init__(self, number: int, mode: int = -1, pull: int = -1) -> None:
        self.number = number
        self.mode = mode
        existing = Pin.pins.get(number)
        self.level = existing.level if existing else (1 if pull == Pin.PULL_UP else 0)
        self.handler: Callable[[Pin], None] | None = None
        self.trigger = 0
        self.hard = False
        Pin.pins[number] = self

    def value(self, level: int | None = None) -> int:
        if level is not None:
            self.level = level
        return self.level

    def irq(self, handler: Callable[[Pin], None], trigger: int, hard: bool = False) -> None:
        self.handler = handler
        self.trigger = trigger
        self.hard = hard

    def drive(self, level: int) -> None:
        """The outside world sets the pin's level (an edge fires the IRQ handler)."""
        old, self.level = self.level, level
        edge = Pin.IRQ_RISING if level > old else Pin.IRQ_FALLING if level < old else 0
        if self.handler is not None and edge & self.trigger:
            self.handler(self)


class UART:
    uarts: dict[int, UART] = {}

    def __init__(
        self, uart_id: int, baudrate: int = 115200, tx: Pin | None = None, rx: Pin | None = None
    ) -> None:
        self.uart_id = uart_id
        self.baudrate = baudrate
        self.incoming = bytearray()
        self.written = bytearray()
        UART.uarts[uart_id] = self

    def any(self) -> int:
        return len(self.incoming)

    def read(self, nbytes: int = -1) -> bytes | None:
        if not self.incoming:
            return None
        count = len(self.incoming) if nbytes < 0 else nbytes
        data = bytes(self.incoming[:count])
        del self.incoming[:count]
        return data

    def write(self, data: bytes) -> int:
        self.written += data
        return len(data)


class WDT:
    feeds = 0

    def __init__(self, timeout: int = 5000) -> None:
        self.timeout = timeout

    def feed(self) -> None:
        WDT.feeds += 1


def reset_fakes() -> None:
    Pin.pins.clear()
    UART.uarts.clear()
    WDT.feeds = 0
