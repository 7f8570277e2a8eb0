"""Sinks against real alsa-lib (its ``file`` and ``null`` PCMs: no sound card here) and files.

Only the hardware mixer is faked: alsa-lib has no mixer without a card.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from device.audio.sinks import (
    AlsaSink,
    FileSink,
    NullSink,
    Pacer,
    Sink,
    SinkError,
    open_sink,
)
from device.audio.sinks.alsa import _mixer_device

RATE = 44_100
ODD_CHUNKS = [1, 7, 333, 1021, 4099, 2, 10_007]


def pattern(frames: int) -> NDArray[np.int16]:
    """Distinct left/right values covering the whole int16 range, wrapping around."""
    left = (np.arange(frames, dtype=np.int64) * 7919) % 65536 - 32768
    right = -1 - left
    return np.stack([left, right], axis=1).astype(np.int16)


def write_in_chunks(sink: Sink, pcm: NDArray[np.int16], sizes: list[int]) -> None:
    i, k = 0, 0
    while i < len(pcm):
        n = sizes[k % len(sizes)]
        sink.write(pcm[i : i + n])
        i, k = i + n, k + 1


def alsa_file_spec(path: Path) -> str:
    return f"alsa:file:FILE={path},FORMAT=raw"


def silence(seconds: float) -> NDArray[np.int16]:
    return np.zeros((round(seconds * RATE), 2), np.int16)


# --- byte exactness ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["alsa", "file"])
def test_sink_writes_byte_exact_s16le(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "out.raw"
    spec = alsa_file_spec(out) if kind == "alsa" else f"file:{out}"
    pcm = pattern(50_000)
    sink = open_sink(spec, rate=RATE, fast=True)
    assert isinstance(sink, AlsaSink if kind == "alsa" else FileSink)
    assert (sink.rate, sink.channels) == (RATE, 2)
    write_in_chunks(sink, pcm, ODD_CHUNKS)
    assert sink.frames_written == len(pcm)
    sink.close()
    assert out.read_bytes() == pcm.astype("<i2").tobytes()


def test_paced_alsa_file_pcm_is_byte_exact_and_real_time(tmp_path: Path) -> None:
    out = tmp_path / "out.raw"
    pcm = pattern(round(0.3 * RATE))
    start = time.monotonic()
    with AlsaSink(f"file:FILE={out},FORMAT=raw", RATE, period_frames=512, periods=4) as sink:
        write_in_chunks(sink, pcm, [1000, 37])
    elapsed = time.monotonic() - start
    assert out.read_bytes() == pcm.astype("<i2").tobytes()
    assert 0.27 <= elapsed <= 0.6  # close() drains, like a card, so the whole 0.3 s


def test_sinks_refuse_pcm_they_cannot_play(tmp_path: Path) -> None:
    sink = NullSink(RATE, fast=True)
    with pytest.raises(SinkError, match="not open"):
        sink.write(pattern(10))
    sink.open()
    with pytest.raises(ValueError, match="int16"):
        sink.write(np.zeros((10, 2), np.float32))
    with pytest.raises(ValueError, match=r"\(frames, 2\)"):
        sink.write(np.zeros((10, 1), np.int16))
    sink.close()


# --- opening -------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["alsa:hw:7", "alsa:nonexistent"])
def test_missing_alsa_device_is_a_clear_sink_error(spec: str) -> None:
    device = spec.removeprefix("alsa:")
    with pytest.raises(SinkError, match=f"ALSA device '{device}' not found") as info:
        open_sink(spec)
    assert "aplay -L" in str(info.value)


def test_unknown_specs_list_the_valid_forms(tmp_path: Path) -> None:
    for spec in ["pulse", "", "file:", "fifo:", "alsa:", "nul"]:
        with pytest.raises(SinkError, match=r"alsa:PCM .*file:PATH, fifo:PATH, null"):
            open_sink(spec)
    with pytest.raises(SinkError, match="cannot write audio to"):
        open_sink(f"file:{tmp_path}/missing-dir/out.raw")


def test_spec_forms_build_the_right_sinks(tmp_path: Path) -> None:
    null = open_sink("null", rate=48_000, fast=True, period_frames=256, periods=3)
    assert isinstance(null, NullSink)
    assert null.rate == 48_000
    assert null.buffer_frames == 768
    null.close()
    alsa = open_sink(alsa_file_spec(tmp_path / "ab.raw"), fast=True)
    assert isinstance(alsa, AlsaSink)
    assert alsa.pcm_name == f"file:FILE={tmp_path}/ab.raw,FORMAT=raw"
    assert alsa.buffer_frames == 4096  # explicit periods: not pyalsaaudio's 128-frame default
    alsa.close()


# --- pacing --------------------------------------------------------------------------------


def test_a_paced_sink_takes_real_time_and_fast_does_not() -> None:
    sink = open_sink("null", rate=RATE)
    start = time.monotonic()
    write_in_chunks(sink, silence(1.0), [256])  # 173 writes: per-write scheduling would drift
    written = time.monotonic() - start
    sink.close()
    total = time.monotonic() - start
    buffer_s = 4096 / RATE
    assert 1.0 - buffer_s - 0.02 <= written <= 1.3
    assert 0.97 <= total <= 1.3

    fast = open_sink("null", rate=RATE, fast=True)
    start = time.monotonic()
    write_in_chunks(fast, silence(10.0), [4096])
    fast.close()
    assert time.monotonic() - start < 0.5


def test_after_an_idle_pause_the_sink_does_not_burst() -> None:
    sink = NullSink(RATE, buffer_frames=2048)
    sink.open()
    sink.write(silence(0.1))
    time.sleep(0.3)  # paused: the "card" ran dry
    assert sink.delay_frames() == 0
    start = time.monotonic()
    write_in_chunks(sink, silence(0.3), [512])
    elapsed = time.monotonic() - start
    sink.drop()
    sink.close()
    assert elapsed >= 0.3 - 2048 / RATE - 0.02  # without a clock restart this is ~0


def paced_sink(kind: str, tmp_path: Path) -> Sink:
    """A real-time sink with a 4096-frame buffer, opened."""
    sink: Sink
    if kind == "file":
        sink = FileSink(tmp_path / "out.raw", RATE, buffer_frames=4096)
    elif kind == "null":
        sink = NullSink(RATE, buffer_frames=4096)
    else:
        sink = AlsaSink(f"file:FILE={tmp_path}/out.raw,FORMAT=raw", RATE, 1024, 4)
    sink.open()
    return sink


@pytest.mark.parametrize("kind", ["file", "alsa"])
def test_delay_stays_within_the_buffer_and_falls_to_zero_when_idle(
    tmp_path: Path, kind: str
) -> None:
    sink = paced_sink(kind, tmp_path)
    assert sink.delay_frames() == 0
    delays = []
    for _ in range(10):
        sink.write(silence(0.01))
        delays.append(sink.delay_frames())
    assert all(0 <= d <= 4096 for d in delays)
    assert delays[-1] > 2048  # the writer runs ahead by about a buffer
    time.sleep(4096 / RATE + 0.03)
    assert sink.delay_frames() == 0
    sink.write(silence(0.05))
    assert sink.delay_frames() > 0
    sink.drop()
    assert sink.delay_frames() == 0
    sink.close()


@pytest.mark.parametrize("kind", ["null", "alsa"])
def test_drop_releases_a_blocked_writer(tmp_path: Path, kind: str) -> None:
    sink = paced_sink(kind, tmp_path)
    done = threading.Event()

    def play() -> None:
        sink.write(silence(3.0))
        done.set()

    writer = threading.Thread(target=play, name="test-writer")
    writer.start()
    time.sleep(0.1)
    assert not done.is_set()
    sink.drop()
    assert done.wait(1.0)
    writer.join()
    assert sink.delay_frames() == 0
    sink.close()


def test_pacer_keeps_the_long_run_rate_exact() -> None:
    pacer = Pacer(8000, 64)
    start = time.monotonic()
    for _ in range(500):  # 500 writes of 8 frames: 0.5 s
        pacer.admit(8)
    pacer.drain()
    assert 0.49 <= time.monotonic() - start <= 0.6
    assert pacer.runs == 1


# --- ALSA mixer (faked: no card) -------------------------------------------------------------


class FakeMixer:
    def __init__(self, control: str, device: str) -> None:
        self.control, self.device = control, device
        self.volumes: list[int] = []
        self.closed = False

    def setvolume(self, volume: int) -> None:
        self.volumes.append(volume)

    def close(self) -> None:
        self.closed = True


def test_hardware_mixer_follows_set_volume(tmp_path: Path) -> None:
    made: list[FakeMixer] = []

    def factory(control: str, device: str) -> FakeMixer:
        made.append(FakeMixer(control, device))
        return made[-1]

    pcm = f"file:FILE={tmp_path}/out.raw,FORMAT=raw"
    sink = AlsaSink(pcm, RATE, mixer="Digital@hw:1", fast=True, mixer_factory=factory)
    sink.open()
    assert sink.hardware_volume
    sink.set_volume(40)
    sink.set_volume(140)
    sink.close()
    (mixer,) = made
    assert (mixer.control, mixer.device, mixer.volumes, mixer.closed) == (
        "Digital",
        "hw:1",
        [40, 100],
        True,
    )


def test_mixer_problems_are_sink_errors(tmp_path: Path) -> None:
    def missing(control: str, device: str) -> FakeMixer:
        raise OSError(f"Unable to find mixer control {control},0 [{device}]")

    pcm = f"file:FILE={tmp_path}/out.raw,FORMAT=raw"
    with pytest.raises(SinkError, match="mixer control 'Digital' not found on 'default'"):
        AlsaSink(pcm, RATE, mixer="Digital", fast=True, mixer_factory=missing).open()
    plain = AlsaSink(pcm, RATE, fast=True)
    plain.open()
    assert not plain.hardware_volume
    with pytest.raises(SinkError, match="software volume"):
        plain.set_volume(50)
    plain.close()


def test_mixer_device_is_the_card_of_the_pcm() -> None:
    assert _mixer_device("hw:1,0") == "hw:1"
    assert _mixer_device("plughw:CARD=sndrpihifiberry,DEV=0") == "hw:sndrpihifiberry"
    assert _mixer_device("default") == "default"


def test_sinks_without_a_mixer_say_so_through_the_interface(tmp_path: Path) -> None:
    sinks: list[Sink] = [
        NullSink(RATE, fast=True),
        FileSink(tmp_path / "out.raw", RATE, fast=True),
        AlsaSink("null", RATE, fast=True),
    ]
    for sink in sinks:
        sink.open()
        assert not sink.hardware_volume
        with pytest.raises(SinkError, match="no hardware mixer"):
            sink.set_volume(50)
        sink.close()
