"""The fifo sink: a named pipe read by another process at its own clock (``fifo:PATH``).

A virtual DAC for sync tests and benchmarks: whatever reads the pipe plays
the part of a sound card whose crystal the speaker does not control (slightly
fast or slow).  So this sink behaves like one:

- the reader makes the pipe and opens it first; the speaker opens it, never
  creates it (a missing pipe or one nobody reads is a clear ``SinkError``);
- ``write`` blocks while the pipe is full (back-pressure from the reader's clock);
- ``delay_frames`` is how much is waiting in the pipe (``FIONREAD``), as an
  ALSA device's delay is, so positions and sync follow the reader's clock;
- while the engine has nothing to play, a feeder thread keeps the pipe half
  full of silence, as a card plays silence, so the reader never starves;
- a write that finds the pipe empty after audio was playing is an underrun
  (``underruns`` counts them: the reader played its own silence meanwhile).

``drop`` cannot take bytes back out of a pipe: what is in it plays out (at
most one pipe, ``buffer_frames`` rounded up to a page).
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import logging
import os
import stat
import termios
import threading
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from device.audio.sinks.base import CHANNELS, SinkError, check_pcm

logger = logging.getLogger(__name__)

FRAME_BYTES = 2 * CHANNELS
IDLE_AFTER_S = 0.03  # no write for this long: the engine is idle, feed silence


class FifoSink:
    """Interleaved S16LE stereo into a named pipe another process reads in real time."""

    hardware_volume = False

    def __init__(self, path: Path, rate: int, *, buffer_frames: int = 4096) -> None:
        if rate <= 0 or buffer_frames <= 0:
            raise ValueError("rate and buffer_frames must be positive")
        self.path = Path(path)
        self.name = f"fifo:{path}"
        self.rate = rate
        self.channels = CHANNELS
        self.fast = False  # the reader's clock paces it, always
        self.frames_written = 0
        self.underruns = 0
        self.pipe_frames = buffer_frames  # what the pipe holds, once open (page-rounded)
        self._want_frames = buffer_frames
        self._fd: int | None = None
        self._lock = threading.Lock()  # one writer at a time: the engine or the feeder
        self._last_write = 0.0
        self._audio_flowing = False  # the last write was the engine's, not the feeder's
        self._stop = threading.Event()
        self._feeder: threading.Thread | None = None

    def open(self) -> None:
        if self._fd is not None:
            return
        try:
            mode = self.path.stat().st_mode
        except OSError as exc:
            raise SinkError(
                f"no named pipe at {self.path} ({exc.strerror}); its reader makes it "
                "(mkfifo) and opens it before the speaker starts"
            ) from exc
        if not stat.S_ISFIFO(mode):
            raise SinkError(f"{self.path} is not a named pipe (make it with mkfifo)")
        try:  # non-blocking: a pipe nobody reads fails at once (ENXIO) instead of hanging
            fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                raise SinkError(f"nobody is reading the pipe {self.path}") from exc
            raise SinkError(f"cannot open the pipe {self.path}: {exc.strerror}") from exc
        os.set_blocking(fd, True)
        # the kernel rounds up to a page; keep its default if it refuses
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, self._want_frames * FRAME_BYTES)
        self.pipe_frames = fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) // FRAME_BYTES
        self._fd = fd
        self.frames_written = 0
        self._audio_flowing = False
        self._last_write = time.monotonic()
        self._stop.clear()
        self._feeder = threading.Thread(target=self._feed, name="fifo-feeder", daemon=True)
        self._feeder.start()

    def write(self, pcm: NDArray[np.int16]) -> None:
        pcm = check_pcm(pcm)
        with self._lock:
            fd = self._require_open()
            if self._audio_flowing and self._waiting_bytes(fd) == 0:
                self.underruns += 1
            self._write_all(fd, pcm.tobytes())
            self.frames_written += pcm.shape[0]
            self._audio_flowing = True
            self._last_write = time.monotonic()

    def delay_frames(self) -> int:
        fd = self._fd
        if fd is None:
            return 0
        try:
            return self._waiting_bytes(fd) // FRAME_BYTES
        except SinkError:
            return 0

    def drop(self) -> None:
        """Bytes in a pipe cannot be taken back: they play out (at most one pipe's worth)."""

    def set_volume(self, percent: int) -> None:
        raise SinkError(f"{self.name!r} has no hardware mixer; use software volume")

    def close(self) -> None:
        """Let the reader take what is queued (a second at most), then close the pipe."""
        self._stop.set()
        if self._feeder is not None:
            self._feeder.join(timeout=2)
            self._feeder = None
        with self._lock:
            fd, self._fd = self._fd, None
            if fd is None:
                return
            deadline = time.monotonic() + 1.0
            with contextlib.suppress(SinkError):
                while self._waiting_bytes(fd) and time.monotonic() < deadline:
                    time.sleep(0.005)
            os.close(fd)

    # --- helpers -----------------------------------------------------------------

    def _require_open(self) -> int:
        if self._fd is None:
            raise SinkError(f"sink {self.name!r} is not open")
        return self._fd

    def _waiting_bytes(self, fd: int) -> int:
        buf = array.array("i", [0])
        try:
            fcntl.ioctl(fd, termios.FIONREAD, buf)
        except OSError as exc:
            raise SinkError(f"cannot read the fill of {self.path}: {exc.strerror}") from exc
        return int(buf[0])

    def _write_all(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                done = os.write(fd, view)
            except BrokenPipeError as exc:
                raise SinkError(f"the reader of {self.path} went away") from exc
            except OSError as exc:
                raise SinkError(f"cannot write to {self.path}: {exc.strerror}") from exc
            view = view[done:]

    def _feed(self) -> None:
        """While the engine writes nothing, keep the pipe half full of silence."""
        period = min(0.005, self.pipe_frames / self.rate / 8)
        while not self._stop.wait(period):
            with self._lock:
                fd = self._fd
                if fd is None or time.monotonic() - self._last_write < IDLE_AFTER_S:
                    continue
                try:
                    missing = self.pipe_frames // 2 - self._waiting_bytes(fd) // FRAME_BYTES
                    if missing > 0:  # never more than fits: this write cannot block
                        self._write_all(fd, bytes(missing * FRAME_BYTES))
                        self.frames_written += missing
                except SinkError as exc:
                    logger.warning("fifo feeder: %s", exc)
                    return
                self._audio_flowing = False
