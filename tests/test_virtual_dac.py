"""The virtual DAC keeps its own crystal's time and says what it played: the pipes exist and
are read before any writer comes, a member's frames go at ``rate * (1 + ppm)``, the windows
it keeps are the audio written, in order, an empty pipe is an underrun and a writer that
goes away is noted (not an underrun).

Real named pipes and the harness's own process; plain writers on the pipes.
"""

from __future__ import annotations

import array
import fcntl
import os
import stat
import termios
import threading
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tests.virtual_dac import STRIDE_FRAMES, WINDOW_FRAMES, VirtualDac, read_recording

RATE = 44100


def ramp(frames: int, start: int = 0) -> NDArray[np.int16]:
    """Stereo frames whose left sample counts up (mod 30000): where a window came from is
    its first sample."""
    left = ((np.arange(start, start + frames) % 30000) + 1).astype(np.int16)
    out: NDArray[np.int16] = np.column_stack([left, -left])
    return out


class Writer(threading.Thread):
    """Keeps a pipe full with the ramp, 64 frames at a time: the DAC's reads pace it, so
    what it has written (minus what waits in the pipe) is what the DAC has taken."""

    def __init__(self, fifo: Path, seconds: float) -> None:
        super().__init__(name=f"writer-{fifo.stem}")
        self.fd = os.open(fifo, os.O_WRONLY)
        self.seconds = seconds
        self.written = 0

    def run(self) -> None:
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            os.write(self.fd, ramp(64, self.written).tobytes())  # atomic: < PIPE_BUF
            self.written += 64

    def taken(self) -> int:
        buf = array.array("i", [0])
        fcntl.ioctl(self.fd, termios.FIONREAD, buf)
        return self.written - buf[0] // 4


def test_members_play_at_their_own_rates_and_windows_are_what_was_written(
    tmp_path: Path,
) -> None:
    ppm = {"fast": 2000.0, "slow": -2000.0}
    with VirtualDac(tmp_path / "dac", ppm) as dac:
        for name in ppm:
            assert stat.S_ISFIFO(dac.fifo(name).stat().st_mode)  # made and read before us
        writers = {n: Writer(dac.fifo(n), 2.5) for n in ppm}
        for w in writers.values():
            w.start()
        time.sleep(0.4)
        a = {n: w.taken() for n, w in writers.items()}
        a_s = time.monotonic()
        time.sleep(1.8)
        b = {n: w.taken() for n, w in writers.items()}
        b_s = time.monotonic()
        for w in writers.values():
            w.join()
            os.close(w.fd)
        written_ns = time.monotonic_ns()
        time.sleep(0.6)  # what is in the pipes (64 KiB, 0.37 s) plays out
        recs = {n: dac.recording(n) for n in ppm}
    for name in ppm:  # frames taken per second of the host's clock, +-2 ticks
        rate = (b[name] - a[name]) / (b_s - a_s)
        assert abs(rate - RATE * (1 + ppm[name] / 1e6)) < 2 * 44 / (b_s - a_s), name
    for name, rec in recs.items():
        assert rec.windows.shape[1] == WINDOW_FRAMES
        assert np.all(np.diff(rec.window_k) % STRIDE_FRAMES == 0)
        whole = np.all(rec.windows != 0, axis=1)  # all ramp (no silence before or after)
        assert whole.sum() >= 40, name
        # consecutive pieces of the ramp, as far apart as their DAC frames
        firsts = rec.windows[whole, 0].astype(np.int64)
        assert np.array_equal(np.diff(firsts) % 30000, np.diff(rec.window_k[whole]) % 30000)
        # it kept up once the writer was going (under load its first bytes may come
        # after the DAC's first ticks: a dry start, not a dry run)
        running = rec.underrun_k[rec.underrun_k > rec.rate // 10]
        assert np.all(rec.play_ns(running) > written_ns), name
        assert rec.gone_k.size == 1, name  # and went away once, at the end


def test_an_empty_pipe_is_an_underrun_and_is_recorded_where_it_happened(tmp_path: Path) -> None:
    """A writer that stops writing but keeps the pipe open (no silence fed, unlike the
    speaker's sink when idle): the DAC runs dry and plays zeros."""
    with VirtualDac(tmp_path / "dac", {"solo": 0.0}) as dac:
        fd = os.open(dac.fifo("solo"), os.O_WRONLY)
        try:
            os.write(fd, ramp(RATE // 10).tobytes())  # 100 ms, fits in the pipe
            wrote_ns = time.monotonic_ns()
            time.sleep(0.3)
        finally:
            os.close(fd)
        time.sleep(0.1)
    rec = read_recording(tmp_path / "dac", "solo")
    assert rec.underrun_k.size >= 1
    ran_dry = float(rec.play_ns(rec.underrun_k[0]))
    assert wrote_ns < ran_dry < wrote_ns + 0.12e9  # when the 100 ms had played
    assert rec.gone_k.size == 1
    assert rec.gone_k[0] > rec.underrun_k[0]
    assert (tmp_path / "dac" / "solo.npz").exists()
