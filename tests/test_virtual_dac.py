"""The virtual DAC keeps its own crystal's time and says what it played: the pipes exist and
are read before any writer comes, a member's frames go at ``rate * (1 + ppm)``, the windows
it keeps are the audio written, in order, an empty pipe is an underrun and a writer that
goes away is noted (not an underrun).

Real named pipes and the harness's own process; the writer is the speaker's ``FifoSink``.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from device.audio.sinks.fifo import FifoSink
from tests.virtual_dac import STRIDE_FRAMES, WINDOW_FRAMES, VirtualDac, read_recording

RATE = 44100


def ramp(frames: int, start: int = 0) -> NDArray[np.int16]:
    """Stereo frames whose left sample counts up (mod 30000): where a window came from is
    its first sample."""
    left = ((np.arange(start, start + frames) % 30000) + 1).astype(np.int16)
    out: NDArray[np.int16] = np.column_stack([left, -left])
    return out


def _feed(sink: FifoSink, seconds: float) -> None:
    """Write the ramp for ``seconds``: the pipe's back-pressure paces it at the DAC's rate."""
    written = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sink.write(ramp(512, written))
        written += 512


def test_members_play_at_their_own_rates_and_windows_are_what_was_written(
    tmp_path: Path,
) -> None:
    ppm = {"fast": 2000.0, "slow": -2000.0}
    with VirtualDac(tmp_path / "dac", ppm) as dac:
        for name in ppm:
            assert stat.S_ISFIFO(dac.fifo(name).stat().st_mode)  # made and read before us
        sinks = {n: FifoSink(dac.fifo(n), RATE) for n in ppm}
        for sink in sinks.values():
            sink.open()
        writers = [threading.Thread(target=_feed, args=(s, 2.5)) for s in sinks.values()]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        written_ns = time.monotonic_ns()
        consumed = {n: s.frames_written - s.delay_frames() for n, s in sinks.items()}
        for sink in sinks.values():
            sink.close()
        time.sleep(0.2)
        recs = {n: dac.recording(n) for n in ppm}
    # 4000 ppm apart over 2.5 s: the fast one took ~441 frames more (10 ms)
    assert abs(consumed["fast"] - consumed["slow"] - 4000e-6 * RATE * 2.5) < 120
    for name, rec in recs.items():
        assert rec.windows.shape[1] == WINDOW_FRAMES
        assert np.all(np.diff(rec.window_k) % STRIDE_FRAMES == 0)
        whole = np.all(rec.windows != 0, axis=1)  # all ramp (no silence before or after)
        assert whole.sum() >= 40, name
        # consecutive pieces of the ramp, as far apart as their DAC frames
        firsts = rec.windows[whole, 0].astype(np.int64)
        assert np.array_equal(np.diff(firsts) % 30000, np.diff(rec.window_k[whole]) % 30000)
        # the writer kept up (closing, the sink lets the pipe run out: that one is no matter)
        assert np.all(rec.play_ns(rec.underrun_k) > written_ns), name
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
