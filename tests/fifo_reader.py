"""A minimal virtual DAC for tests: a thread that reads a named pipe at its own clock.

It plays the part of a sound card whose crystal runs ``ppm`` fast or slow:
by monotonic time ``t`` it has taken ``(t - t0) * rate * (1 + ppm/1e6)`` frames
from the pipe, a little at a time, and frame ``i`` of what it took was "heard"
at ``t0 + i / (rate * (1 + ppm/1e6))``.  When the pipe holds less than is due
it plays silence instead (an underrun, counted).  The reader makes the pipe
and opens it before the speaker does, as a real one must.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

FRAME_BYTES = 4
NS = 1_000_000_000


class FifoReader:
    """Reads ``path`` (made here with mkfifo) at ``rate * (1 + ppm/1e6)`` frames a second."""

    def __init__(self, path: Path, rate: int, *, ppm: float = 0.0, period_s: float = 0.001) -> None:
        self.path = Path(path)
        self.rate = rate
        self.ppm = ppm
        self.period_s = period_s
        self.t0_ns = 0
        self.underruns = 0
        self.late_reads = 0  # reads that came more than 20 ms late (the test's own jitter)
        self._chunks: list[bytes] = []
        self._frames = 0
        self._stop = threading.Event()
        self._fd: int | None = None
        self._thread = threading.Thread(target=self._run, name="virtual-dac", daemon=True)

    @property
    def actual_rate(self) -> float:
        return self.rate * (1 + self.ppm / 1e6)

    def start(self) -> FifoReader:
        if not self.path.exists():
            os.mkfifo(self.path)
        self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self.t0_ns = time.monotonic_ns()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def heard(self) -> NDArray[np.int16]:
        """Everything played so far, ``(frames, 2)``."""
        data = b"".join(self._chunks)
        return np.frombuffer(data, dtype="<i2").reshape(-1, 2)

    def frame_at(self, t_ns: int) -> int:
        """Which played frame was heard at monotonic ``t_ns``."""
        return int((t_ns - self.t0_ns) * self.actual_rate / NS)

    def time_of(self, frame: float) -> float:
        """When played frame ``frame`` was heard (monotonic ns)."""
        return self.t0_ns + frame * NS / self.actual_rate

    def _run(self) -> None:
        fd = self._fd
        assert fd is not None
        pending = b""
        flowing = False
        last = time.monotonic_ns()
        while not self._stop.wait(self.period_s):
            now = time.monotonic_ns()
            if now - last > 20_000_000:
                self.late_reads += 1
            last = now
            due = self.frame_at(now) - self._frames
            if due <= 0:
                continue
            want = due * FRAME_BYTES - len(pending)
            got = b""
            if want > 0:
                try:
                    got = os.read(fd, want)
                except BlockingIOError:
                    got = b""
            data = pending + got
            whole = len(data) // FRAME_BYTES * FRAME_BYTES
            data, pending = data[:whole], data[whole:]
            short = due * FRAME_BYTES - len(data)
            if short > 0:  # the pipe ran dry: the card plays silence
                if flowing:
                    self.underruns += 1
                flowing = False
                data += bytes(short)
            else:
                flowing = True
            self._chunks.append(data)
            self._frames += due
