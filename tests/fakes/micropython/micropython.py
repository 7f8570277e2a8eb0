"""A stand-in for MicroPython's ``micropython`` module on CPython."""

from __future__ import annotations

kbd_intr_value = 3
emergency_buffer = 0


def kbd_intr(char: int) -> None:
    global kbd_intr_value
    kbd_intr_value = char


def alloc_emergency_exception_buf(size: int) -> None:
    global emergency_buffer
    emergency_buffer = size


def const(value: int) -> int:
    return value
