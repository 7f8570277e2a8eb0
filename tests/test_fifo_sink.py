"""The fifo sink over real named pipes: a virtual DAC's pipe, as a speaker sees it.

The reader (a thread here, as a bench's virtual DAC would be a process) makes
the pipe and reads it at its own clock; the speaker only ever opens it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from device.audio.sinks import SinkError
from device.audio.sinks import fifo as fifo_module
from device.audio.sinks.fifo import FRAME_BYTES, FifoSink
from tests.fifo_reader import FifoReader

RATE = 44100


def tone(frames: int) -> np.ndarray:
    return np.full((frames, 2), 1000, np.int16)


def test_a_missing_pipe_is_a_clear_error_and_the_speaker_does_not_make_it(tmp_path: Path) -> None:
    path = tmp_path / "dac"
    with pytest.raises(SinkError, match="mkfifo"):
        FifoSink(path, RATE).open()
    assert not path.exists()


def test_a_plain_file_is_not_a_pipe(tmp_path: Path) -> None:
    path = tmp_path / "dac"
    path.write_bytes(b"")
    with pytest.raises(SinkError, match="not a named pipe"):
        FifoSink(path, RATE).open()


def test_a_pipe_nobody_reads_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "dac"
    os.mkfifo(path)
    started = time.monotonic()
    with pytest.raises(SinkError, match="nobody is reading"):
        FifoSink(path, RATE).open()
    assert time.monotonic() - started < 1.0  # never hangs waiting for a reader


def open_pipe(path: Path) -> int:
    os.mkfifo(path)
    return os.open(path, os.O_RDONLY | os.O_NONBLOCK)


def test_delay_is_what_waits_in_the_pipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fifo_module, "IDLE_AFTER_S", 60.0)  # no silence from the feeder here
    reader = open_pipe(tmp_path / "dac")
    sink = FifoSink(tmp_path / "dac", RATE, buffer_frames=8192)
    sink.open()
    try:
        assert sink.delay_frames() == 0
        sink.write(tone(3000))
        assert sink.delay_frames() == 3000
        sink.write(tone(1500))
        assert sink.delay_frames() == 4500
        os.read(reader, 1000 * FRAME_BYTES)  # the DAC plays 1000 frames
        assert sink.delay_frames() == 3500
        assert sink.frames_written == 4500
    finally:
        os.read(reader, 1 << 20)
        sink.close()
        os.close(reader)


def test_an_idle_pipe_is_kept_fed_so_the_dac_never_starves(tmp_path: Path) -> None:
    reader = FifoReader(tmp_path / "dac", RATE).start()
    sink = FifoSink(tmp_path / "dac", RATE)
    try:
        sink.open()
        sink.write(tone(RATE // 5))  # some audio (it fills the pipe), then the engine goes quiet
        time.sleep(0.6)
        assert reader.underruns == 0
        heard = reader.heard()
        assert (heard == 1000).all(axis=1).sum() == RATE // 5  # the audio, then silence
        assert sink.frames_written > RATE // 5  # the feeder's silence
        assert sink.underruns == 0
    finally:
        sink.close()
        reader.stop()


def test_an_underrun_is_counted_when_the_dac_drains_the_pipe_under_flowing_audio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fifo_module, "IDLE_AFTER_S", 60.0)  # the feeder stays out of it
    reader = open_pipe(tmp_path / "dac")
    sink = FifoSink(tmp_path / "dac", RATE)
    sink.open()
    try:
        sink.write(tone(441))
        sink.write(tone(441))  # flowing, the pipe never empty: no underrun
        assert sink.underruns == 0
        os.read(reader, 1 << 20)  # the DAC ran through everything
        sink.write(tone(441))
        assert sink.underruns == 1
    finally:
        os.read(reader, 1 << 20)
        sink.close()
        os.close(reader)


def test_a_reader_that_goes_away_fails_the_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fifo_module, "IDLE_AFTER_S", 60.0)
    reader = open_pipe(tmp_path / "dac")
    sink = FifoSink(tmp_path / "dac", RATE)
    sink.open()
    try:
        sink.write(tone(100))
        os.close(reader)
        with pytest.raises(SinkError, match="went away"):
            sink.write(tone(100))
    finally:
        sink.close()
