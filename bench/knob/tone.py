"""The material: a constant-level sine, ingested once by the hub's own pipeline and cached.

Its frequency is 44,100 / 64 Hz, so one period is exactly 64 frames: the level over
any 64 frames is the same wherever the window starts, and a change of gain shows within
a window of where it happens (``levels``).  Its length is a whole number of periods, so
played on repeat the tone joins itself without a step.  At -6 dBFS it stays far from
clipping and, at 50 % volume (-30 dB), far above Vorbis's noise.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
from audio.material import CACHE, Library, ingested
from numpy.typing import NDArray

from .common import RATE

PERIOD_FRAMES = 64
TONE_HZ = RATE / PERIOD_FRAMES  # 689.0625 Hz
PEAK_DBFS = -6.0


def tone_pcm(seconds: float) -> NDArray[np.int16]:
    """Stereo int16 frames of the tone, a whole number of periods long."""
    periods = max(1, round(seconds * RATE / PERIOD_FRAMES))
    one = np.sin(2 * np.pi * np.arange(PERIOD_FRAMES) / PERIOD_FRAMES)
    amplitude = 32767 * 10 ** (PEAK_DBFS / 20)
    period = np.rint(one * amplitude).astype(np.int16)
    mono = np.tile(period, periods)
    out: NDArray[np.int16] = np.column_stack([mono, mono])
    return out


def tone_flac(seconds: float) -> Path:
    """The tone as a tagged FLAC under the audio bench's cache, written only if changed."""
    path = CACHE / "flac" / "tone" / f"tone-{TONE_HZ:g}Hz-{seconds:g}s.flac"
    buffer = io.BytesIO()
    with sf.SoundFile(
        buffer, "w", RATE, 2, "PCM_16", format="FLAC"
    ) as out:  # libsndfile writes these as Vorbis comments, which ingest reads
        out.title = f"Test tone {TONE_HZ:g} Hz"
        out.artist = "Legato bench"
        out.album = "Bench tones"
        out.write(tone_pcm(seconds))
    data = buffer.getvalue()
    if not path.exists() or path.read_bytes() != data:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def prepare(seconds: float, say: Callable[[str], None]) -> Library:
    """The tone, ingested (from the cache when this tone was ingested before)."""
    return ingested([tone_flac(seconds)], f"a {seconds:g} s test tone", None, say)
