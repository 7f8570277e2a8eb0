"""What every sink is (``Sink``), the error it raises, and the body shared by the sinks
with no clock of their own (``PacedSink``: a file, the null sink).

Every sink takes interleaved S16LE stereo ``(frames, 2)`` and ``write`` blocks
until the frames are accepted, the way a sound card does once its buffer is
full.  The engine leans on that back-pressure for timing and on
``delay_frames`` (written but not yet heard) for the position it reports.
"""

from __future__ import annotations

import sys
from typing import Protocol, Self

import numpy as np
from numpy.typing import NDArray

from device.audio.sinks.pacer import Pacer
from device.errors import DeviceError

CHANNELS = 2


class SinkError(DeviceError):
    """The sink cannot play; the message is meant for the person setting the speaker up."""


class Sink(Protocol):
    """What the engine's sink thread drives; ``open_sink`` builds one from a spec string."""

    rate: int
    channels: int  # always 2
    name: str
    fast: bool  # runs as fast as it is fed (benchmarks), not at the device's pace
    frames_written: int  # since open()

    def open(self) -> None:
        """Acquire the output (idempotent); raises ``SinkError`` with a message for people."""
        ...

    def write(self, pcm: NDArray[np.int16]) -> None:
        """Queue int16 ``(frames, 2)``; blocks while the device buffer is full."""
        ...

    def delay_frames(self) -> int:
        """Frames written but not yet heard (0 to one buffer): position = written - delay."""
        ...

    def drop(self) -> None:
        """Discard what is queued and release a blocked ``write`` (seek, stop)."""
        ...

    def close(self) -> None:
        """Let the queue play out, then release the output."""
        ...

    @property
    def hardware_volume(self) -> bool:
        """Whether ``set_volume`` drives a hardware mixer (full resolution); when not,
        the engine scales the samples itself."""
        ...

    def set_volume(self, percent: int) -> None:
        """Set the hardware mixer (0-100); raises ``SinkError`` when there is none."""
        ...


def check_pcm(pcm: NDArray[np.int16]) -> NDArray[np.int16]:
    """The PCM as a sink writes it: C-contiguous little-endian int16 ``(frames, 2)``."""
    if pcm.dtype != np.int16 or pcm.ndim != 2 or pcm.shape[1] != CHANNELS:
        raise ValueError(f"sinks take int16 (frames, 2) PCM, got {pcm.dtype} {pcm.shape}")
    if sys.byteorder != "little":
        pcm = pcm.astype("<i2")
    return np.ascontiguousarray(pcm)


class PacedSink:
    """Shared body of the sinks with no clock of their own: pacing, counters, state."""

    hardware_volume = False  # no mixer: the engine scales the samples

    def __init__(self, name: str, rate: int, fast: bool, buffer_frames: int) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.name = name
        self.rate = rate
        self.channels = CHANNELS
        self.fast = fast
        self.frames_written = 0
        self._pacer = Pacer(rate, buffer_frames)
        self._open = False

    @property
    def buffer_frames(self) -> int:
        return self._pacer.buffer_frames

    def open(self) -> None:
        if not self._open:
            self._open_output()
            self._open = True
            self.frames_written = 0
            self._pacer.reset()

    def write(self, pcm: NDArray[np.int16]) -> None:
        if not self._open:
            raise SinkError(f"sink {self.name!r} is not open")
        pcm = check_pcm(pcm)
        self._write_output(pcm)
        self.frames_written += pcm.shape[0]
        if not self.fast:
            self._pacer.admit(pcm.shape[0])

    def delay_frames(self) -> int:
        return 0 if self.fast or not self._open else self._pacer.delay()

    def drop(self) -> None:
        self._pacer.reset()

    def set_volume(self, percent: int) -> None:
        raise SinkError(f"{self.name!r} has no hardware mixer; use software volume")

    def close(self) -> None:
        """Let what is queued finish playing (as ALSA drains), then release the output."""
        if self._open:
            if not self.fast:
                self._pacer.drain()
            self._open = False
            self._close_output()

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_output(self) -> None:
        pass

    def _write_output(self, pcm: NDArray[np.int16]) -> None:
        pass

    def _close_output(self) -> None:
        pass
