"""``Pacer``: holds a sink with no clock of its own to real time, as a sound card would.

Sinks with no clock of their own (a file, the null sink, and alsa-lib's
``file``/``null`` PCMs, which run as fast as they are fed) are paced against
the monotonic clock by it; ``fast=True`` on a sink turns that off for
benchmarks and byte-exactness tests.
"""

from __future__ import annotations

import math
import threading
import time


class Pacer:
    """Holds a writer to real time: it may run ahead of the play head by ``buffer_frames``.

    Models a sound card's ring buffer: the "play head" moves at ``rate`` from
    the moment the first frame of a run arrives, and ``admit`` sleeps while
    more than a buffer's worth is unplayed.  Deadlines are computed from the
    run's start time and its total frame count, never from the previous write,
    so rounding and sleep overshoot do not accumulate into drift.  When the
    buffer has run dry (a pause, a stall, a stream that ended) the next write
    starts a new run, as a card restarts after an underrun, instead of
    bursting to catch up on the time it was idle.
    """

    def __init__(self, rate: int, buffer_frames: int) -> None:
        if rate <= 0 or buffer_frames <= 0:
            raise ValueError("rate and buffer_frames must be positive")
        self.rate = rate
        self.buffer_frames = buffer_frames
        self.runs = 0  # how many times the play head (re)started: 1 + underruns/pauses
        self._cond = threading.Condition()
        self._start = 0.0  # monotonic time the current run's first frame began playing
        self._frames = 0  # frames admitted in the current run
        self._epoch = 0  # bumped by reset() so a blocked admit() gives up

    def _played(self, now: float) -> float:
        return (now - self._start) * self.rate

    def admit(self, frames: int) -> None:
        """Account for ``frames`` just written; return once the backlog fits the buffer."""
        if frames <= 0:
            return
        with self._cond:
            now = time.monotonic()
            if self._frames == 0 or self._played(now) >= self._frames:
                self._start, self._frames = now, 0
                self.runs += 1
            self._frames += frames
            deadline = self._start + (self._frames - self.buffer_frames) / self.rate
            epoch = self._epoch
            while self._epoch == epoch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)

    def delay(self) -> int:
        """Frames admitted but not yet played, at most one buffer (the rest is still ours)."""
        with self._cond:
            if self._frames == 0:
                return 0
            pending = self._frames - self._played(time.monotonic())
            return max(0, min(self.buffer_frames, math.ceil(pending)))

    def drain(self) -> None:
        """Wait until everything admitted has played (or ``reset`` is called)."""
        with self._cond:
            if self._frames == 0:
                return
            end = self._start + self._frames / self.rate
            epoch = self._epoch
            while self._epoch == epoch:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)

    def reset(self) -> None:
        """Discard the backlog and wake a blocked writer (seek, stop)."""
        with self._cond:
            self._epoch += 1
            self._frames = 0
            self._cond.notify_all()
