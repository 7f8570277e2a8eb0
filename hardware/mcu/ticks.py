"""Millisecond tick arithmetic that survives wrap-around, the same under CPython and MicroPython.

MicroPython's ``time.ticks_ms()`` wraps at ``TICKS_PERIOD`` (2**30 on the RP2040 and on every
32-bit port), about 12.4 days after boot.  The pure modules never subtract tick values directly:
they call ``ticks_diff`` here, which gives the signed distance between two ticks as long as the
two are less than half a period apart, exactly as ``time.ticks_diff`` does.
"""

TICKS_PERIOD = 1 << 30
TICKS_MAX = TICKS_PERIOD - 1
_HALF_PERIOD = TICKS_PERIOD // 2


def ticks_diff(new_ms: int, old_ms: int) -> int:
    """Signed milliseconds from ``old_ms`` to ``new_ms`` (negative when ``new_ms`` is earlier)."""
    return ((new_ms - old_ms + _HALF_PERIOD) & TICKS_MAX) - _HALF_PERIOD


def ticks_add(ticks_ms: int, delta_ms: int) -> int:
    """The tick value ``delta_ms`` after ``ticks_ms``, wrapped into ``0 .. TICKS_MAX``."""
    return (ticks_ms + delta_ms) & TICKS_MAX
