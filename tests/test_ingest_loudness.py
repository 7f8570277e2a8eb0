"""EBU R128 loudness and true peak, checked against ffmpeg's ebur128 filter."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from numpy.typing import NDArray

from hub.ingest import loudness
from tests.audio_files import music, pink_noise, sine

FFMPEG = ("ffmpeg", "-nostdin", "-nostats", "-hide_banner")
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg CLI")


def ffmpeg_r128(pcm: NDArray[np.float32], rate: int, tmp_path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) as ``ffmpeg -af ebur128=peak=true`` reports them."""
    path = tmp_path / "signal.wav"
    sf.write(path, pcm, rate, subtype="FLOAT")
    out = subprocess.run(
        [*FFMPEG, "-i", str(path), "-af", "ebur128=peak=true", "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stderr
    summary = out[out.rindex("Summary:") :]
    lufs = re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary)
    peak = re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    assert lufs, summary
    assert peak, summary
    return float(lufs.group(1)), float(peak.group(1))


def gated(rate: int) -> NDArray[np.float32]:
    """Loud noise, 3 s near silence (under the relative gate), noise again, real silence."""
    pcm = pink_noise(rate * 9, seed=3)
    pcm[rate * 2 : rate * 5] *= 10 ** (-45 / 20)
    pcm[rate * 8 :] = 0
    return pcm


def intersample(rate: int) -> NDArray[np.float32]:
    """A sine at a quarter of the rate sampled 45 degrees off its peaks: true peak +3 dB.

    Faded in and out: an abrupt start rings in any oversampling filter and
    reads high (ffmpeg's by 0.6 dB), which is the filter's peak, not the signal's.
    """
    pcm = sine(rate * 3, rate, freq=rate / 4, dbfs=-6.0, phase=math.pi / 4)
    ramp = np.sin(np.linspace(0.0, np.pi / 2, rate // 10, dtype=np.float32)) ** 2
    pcm[: ramp.size] *= ramp[:, None]
    pcm[-ramp.size :] *= ramp[::-1, None]
    return pcm


SIGNALS = {
    "sine -20 dBFS stereo": lambda rate: sine(rate * 5, rate),
    "sine -20 dBFS mono": lambda rate: sine(rate * 5, rate, channels=1),
    "pink noise": lambda rate: pink_noise(rate * 6),
    "gated": gated,
    "music": lambda rate: music(6, rate),
    "inter-sample peaks": intersample,
}


@needs_ffmpeg
@pytest.mark.parametrize("rate", [44_100, 48_000])
@pytest.mark.parametrize("name", list(SIGNALS))
def test_agrees_with_ffmpeg(name: str, rate: int, tmp_path: Path) -> None:
    pcm = SIGNALS[name](rate)
    ours = loudness.measure(pcm, rate)
    lufs, peak = ffmpeg_r128(pcm, rate, tmp_path)
    assert ours.lufs == pytest.approx(lufs, abs=0.2)
    assert ours.peak_dbtp == pytest.approx(peak, abs=0.3)


def test_reference_levels() -> None:
    """BS.1770: a 1 kHz sine at -20 dBFS is -23 LUFS in one channel, -20 LUFS in two."""
    rate = 48_000
    assert loudness.measure(sine(rate * 4, rate, channels=1), rate).lufs == pytest.approx(
        -23.0, abs=0.05
    )
    assert loudness.measure(sine(rate * 4, rate), rate).lufs == pytest.approx(-20.0, abs=0.05)


def test_true_peak_sees_between_the_samples() -> None:
    rate = 48_000
    pcm = intersample(rate)
    assert 20 * math.log10(float(np.abs(pcm).max())) == pytest.approx(-9.03, abs=0.05)
    assert loudness.measure(pcm, rate).peak_dbtp == pytest.approx(-6.0, abs=0.1)


def test_silence_and_very_short_tracks_read_the_floor() -> None:
    rate = 44_100
    silent = loudness.measure(np.zeros((rate * 3, 2), dtype=np.float32), rate)
    assert (silent.lufs, silent.peak_dbtp) == (loudness.SILENCE_LUFS, loudness.SILENCE_DBTP)
    short = loudness.measure(sine(rate // 4, rate), rate)  # no whole 400 ms block
    assert short.blocks.size == 0
    assert short.lufs == loudness.SILENCE_LUFS
    assert short.peak_dbtp == pytest.approx(-20.0, abs=0.1)


@needs_ffmpeg
def test_album_loudness_gates_all_blocks_together(tmp_path: Path) -> None:
    rate = 44_100
    loud, quiet = music(6, rate, seed=1), music(4, rate, seed=2) * np.float32(0.05)
    tracks = [loudness.measure(loud, rate), loudness.measure(quiet, rate)]
    album_lufs, album_peak = loudness.album(tracks)
    # Not the mean of the two: the quiet track's blocks fall under the relative gate.
    assert album_lufs == pytest.approx(tracks[0].lufs, abs=0.1)
    assert album_peak == tracks[0].peak_dbtp
    # ffmpeg on the album as one file (a few blocks straddle the join: hence 0.2)
    lufs, peak = ffmpeg_r128(np.concatenate([loud, quiet]), rate, tmp_path)
    assert album_lufs == pytest.approx(lufs, abs=0.2)
    assert album_peak == pytest.approx(peak, abs=0.3)


def test_block_energies_cover_every_whole_block() -> None:
    rate = 44_100
    blocks = loudness.block_energies(sine(rate * 2 + 100, rate), rate)
    assert blocks.size == 17  # 400 ms blocks every 100 ms in 2.002 s
    assert np.allclose(blocks[2:], blocks[5], rtol=1e-3)


def streamed(pcm: NDArray[np.float32], rate: int, block: int) -> loudness.TrackLoudness:
    meter = loudness.LoudnessMeter(rate, pcm.shape[1])
    for start in range(0, pcm.shape[0], block):
        meter.feed(pcm[start : start + block])
    return meter.result()


@pytest.mark.parametrize("rate", [44_100, 48_000, 11_025])
@pytest.mark.parametrize("name", list(SIGNALS))
@pytest.mark.parametrize("block", [1103, 4410, 65_536])
def test_the_streamed_meter_gives_the_whole_array_measurement(
    name: str, rate: int, block: int
) -> None:
    """What ingest measures a block at a time is what ``measure`` gets from the whole track."""
    pcm = SIGNALS[name](rate)
    whole, meter = loudness.measure(pcm, rate), streamed(pcm, rate, block)
    assert (meter.lufs, meter.peak_dbtp) == (whole.lufs, whole.peak_dbtp)
    assert meter.blocks.shape == whole.blocks.shape
    assert np.allclose(meter.blocks, whole.blocks, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "frames",
    [
        1,
        4409,  # no whole 400 ms block
        4410,  # exactly one 400 ms block
        round(0.7 * 11_025),  # ends on a hop that rounds down onto the last frame
        11_025 * 3 + 1,
    ],
)
def test_the_meter_at_the_edges(frames: int) -> None:
    rate = 11_025
    pcm = music(frames / rate + 0.1, rate)[:frames]
    whole = loudness.measure(pcm, rate)
    for block in (1, 7, frames):
        meter = streamed(pcm, rate, block)
        assert (meter.lufs, meter.peak_dbtp) == (whole.lufs, whole.peak_dbtp)
        assert np.allclose(meter.blocks, whole.blocks, rtol=1e-12, atol=0)
