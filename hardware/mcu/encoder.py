"""Quadrature rotary encoder: pin states in, detents out, tolerant of contact bounce.

A state is ``(A << 1) | B``.  Turning forward walks the Gray sequence 0 -> 1 -> 3 -> 2 -> 0,
backward the reverse; an encoder with 4 transitions per detent rests in one state
(``rest_state``, 3 for the common EC11 with pull-ups) between detents.

Invariants:
- Each valid transition adds +1 or -1 to a step count; a repeated state adds nothing; a jump of
  both bits (a transition lost between two samples) adds nothing, is counted in ``invalid`` and
  spoils the detent it falls in.
- A detent is reported only on arriving in the rest state with a step count of exactly +4 or -4
  since the last arrival there (then +1 or -1), and no jump in between; the count restarts.
  Contact bounce is a valid step and its undoing, so it cancels out: a bouncing contact never
  yields a detent and never reverses one.  A jump cannot be told forward from backward, so the
  detent holding one is dropped rather than guessed (a guess, with bounce around it, can come
  out reversed).

``EdgeRing`` is the hand-off from the pin interrupt: ``record`` stores a state in a preallocated
buffer without allocating (safe in a hard IRQ); the main loop drains it into the decoder.

Pure: runs unchanged under CPython and MicroPython.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# Index (old << 2) | new: +1 forward, -1 backward, 0 for no change or an invalid jump.
_STEP = (0, 1, -1, 0, -1, 0, 0, 1, 1, 0, 0, -1, 0, -1, 1, 0)
REST_STATE = 3


class QuadratureDecoder:
    def __init__(self, rest_state: int = REST_STATE, reverse: bool = False) -> None:
        self.rest_state = rest_state
        self._sign = -1 if reverse else 1
        self._state = rest_state
        self._steps = 0
        self._spoilt = False
        self.invalid = 0

    def reset(self, state: int) -> None:
        """Start from the pins' current ``state`` (at boot the knob may rest between detents)."""
        self._state = state & 3
        self._steps = 0
        self._spoilt = False

    def step(self, state: int) -> int:
        """Feed the pins' new state; return the detent it completes (+1, -1) or 0."""
        state &= 3
        old = self._state
        if state == old:
            return 0
        self._state = state
        if old ^ state == 3:
            self.invalid += 1
            self._spoilt = True
        else:
            self._steps += _STEP[(old << 2) | state]
        if state != self.rest_state:
            return 0
        steps = self._steps
        spoilt = self._spoilt
        self._steps = 0
        self._spoilt = False
        if spoilt:
            return 0
        if steps == 4:
            return self._sign
        if steps == -4:
            return -self._sign
        return 0

    def feed(self, states: bytes | bytearray | list[int]) -> int:
        """Feed several states in order; return the net detents they complete."""
        total = 0
        for state in states:
            total += self.step(state)
        return total


class EdgeRing:
    """Pin states recorded by an interrupt handler, drained later by the main loop."""

    def __init__(self, size: int = 64) -> None:
        if size & (size - 1):
            raise ValueError("size must be a power of two")
        self._buffer = bytearray(size)
        self._mask = size - 1
        # head and tail count modulo a multiple of the size, so they stay small ints.
        self._wrap = size * 256 - 1
        self._head = 0
        self._tail = 0
        self.overflows = 0

    def record(self, state: int) -> None:
        """Store one state.  Allocation-free: call it from the IRQ handler."""
        self._buffer[self._head & self._mask] = state
        self._head = (self._head + 1) & self._wrap

    def drain(
        self, decoder: QuadratureDecoder, on_detent: "Callable[[int], None] | None" = None
    ) -> int:
        """Feed every state recorded since the last drain to ``decoder``; return net detents.

        ``on_detent`` is called with each detent (+1 or -1) in order, so that a quick turn back
        and forth between two drains is seen as the two detents it was, not as no turn.
        """
        head = self._head
        pending = (head - self._tail) & self._wrap
        if pending > self._mask + 1:
            # The loop fell behind: the oldest states were overwritten.
            self.overflows += 1
            pending = self._mask + 1
        total = 0
        tail = (head - pending) & self._wrap
        while tail != head:
            detent = decoder.step(self._buffer[tail & self._mask])
            if detent:
                total += detent
                if on_detent is not None:
                    on_detent(detent)
            tail = (tail + 1) & self._wrap
        self._tail = head
        return total
