"""EBU R128 loudness (ITU-R BS.1770-4) and true peak, per track and per album.

Integrated loudness: K-weighting (a high shelf and a high-pass), the mean
square of 400 ms blocks every 100 ms, then two gates: blocks under -70 LUFS
are dropped, then blocks more than 10 LU under the loudness of what is left.
A track returns its blocks' energies so that an album's loudness is the same
gating over all its tracks' blocks together (not an average of loudnesses).
True peak is the largest magnitude after 4x oversampling (soxr), in dBTP.

Channels are weighted 1 (mono and stereo only: sources are down-mixed first).
Silence has no blocks above the gate; it reads ``SILENCE_LUFS`` (as ffmpeg's
ebur128 does) and a peak of ``SILENCE_DBTP``, so the manifest stays finite.

Ingest measures with ``LoudnessMeter``, fed a track a block at a time (the
filters' state and the oversampler carry across blocks, so memory is the
blocks' energies: 10 numbers a second).  ``measure`` does the same over a
whole array at once and is the reference the meter is tested against.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import soxr
from numpy.typing import NDArray
from scipy.signal import sosfilt

SILENCE_LUFS = -70.0
SILENCE_DBTP = -120.0
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
OVERSAMPLING = 4
_OFFSET = -0.691  # BS.1770's constant, so a 997 Hz full-scale sine reads -3.01 LUFS
_HOPS_PER_BLOCK = 4  # 400 ms blocks, 100 ms apart
_CHUNK_HOPS = 600  # a minute at a time keeps memory flat on long tracks


@dataclass(frozen=True, slots=True)
class TrackLoudness:
    lufs: float
    peak_dbtp: float
    blocks: NDArray[np.float64]  # K-weighted mean square of each gating block


def k_weighting(rate: int) -> NDArray[np.float64]:
    """The two K-weighting biquads at ``rate`` as second-order sections.

    BS.1770 gives coefficients for 48 kHz only; these are the analogue
    prototypes it was derived from (as libebur128), bilinear-transformed.
    """
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / rate)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf = [
        (vh + vb * k / q + k * k) / a0,
        2.0 * (k * k - vh) / a0,
        (vh - vb * k / q + k * k) / a0,
        1.0,
        2.0 * (k * k - 1.0) / a0,
        (1.0 - k / q + k * k) / a0,
    ]
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / rate)
    a0 = 1.0 + k / q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    return np.array([shelf, highpass], dtype=np.float64)


def _hop_positions(first: int, stop: int, rate: int) -> NDArray[np.int64]:
    """Where hops ``first`` to ``stop - 1`` start: every 100 ms, rounded to a frame."""
    return np.round(np.arange(first, max(first, stop)) * rate / 10).astype(np.int64)


def _hop_starts(frames: int, rate: int) -> NDArray[np.int64]:
    """Sample positions every 100 ms up to the last that ends a whole block."""
    starts = _hop_positions(0, int(frames * 10 // rate) + 1, rate)
    return starts[starts <= frames]


def block_energies(pcm: NDArray[np.float32], rate: int) -> NDArray[np.float64]:
    """Each gating block's K-weighted mean square, summed over channels."""
    sos = k_weighting(rate)
    hops = _hop_starts(pcm.shape[0], rate)
    if len(hops) <= _HOPS_PER_BLOCK:
        return np.zeros(0, dtype=np.float64)
    zi = np.zeros((sos.shape[0], 2, pcm.shape[1]), dtype=np.float64)
    sums = np.empty(len(hops) - 1, dtype=np.float64)
    for first in range(0, len(hops) - 1, _CHUNK_HOPS):
        last = min(first + _CHUNK_HOPS, len(hops) - 1)
        chunk = pcm[hops[first] : hops[last]].astype(np.float64)
        weighted, zi = sosfilt(sos, chunk, axis=0, zi=zi)
        energy = np.square(weighted).sum(axis=1)
        sums[first:last] = np.add.reduceat(energy, hops[first:last] - hops[first])
    window = np.convolve(sums, np.ones(_HOPS_PER_BLOCK), mode="valid")
    lengths = hops[_HOPS_PER_BLOCK:] - hops[:-_HOPS_PER_BLOCK]
    return np.asarray(window / lengths, dtype=np.float64)


def _lufs(energy: float) -> float:
    return _OFFSET + 10.0 * math.log10(energy)


def integrated(blocks: NDArray[np.float64]) -> float:
    """Gated loudness of a set of blocks (a track's, or an album's together)."""
    absolute = blocks[blocks > 10.0 ** ((ABSOLUTE_GATE_LUFS - _OFFSET) / 10.0)]
    if absolute.size == 0:
        return SILENCE_LUFS
    threshold = _lufs(float(absolute.mean())) + RELATIVE_GATE_LU
    gated = absolute[absolute > 10.0 ** ((threshold - _OFFSET) / 10.0)]
    return round(_lufs(float(gated.mean())), 2)


def true_peak(pcm: NDArray[np.float32], rate: int) -> float:
    """Largest magnitude of the 4x-oversampled signal (at least the sample peak), dBTP."""
    peak = float(np.abs(pcm).max()) if pcm.size else 0.0
    stream = soxr.ResampleStream(rate, rate * OVERSAMPLING, pcm.shape[1], dtype="float32")
    step = rate * 10
    for start in range(0, pcm.shape[0], step):
        end = start + step
        out = stream.resample_chunk(pcm[start:end], last=end >= pcm.shape[0])
        if out.size:
            peak = max(peak, float(np.abs(out).max()))
    return round(20.0 * math.log10(peak), 2) if peak > 0 else SILENCE_DBTP


def measure(pcm: NDArray[np.float32], rate: int) -> TrackLoudness:
    blocks = block_energies(pcm, rate)
    return TrackLoudness(lufs=integrated(blocks), peak_dbtp=true_peak(pcm, rate), blocks=blocks)


class LoudnessMeter:
    """``measure`` a track fed in blocks of any size; ``result`` once it has all."""

    def __init__(self, rate: int, channels: int) -> None:
        self.rate = rate
        self.frames = 0
        self._sos = k_weighting(rate)
        self._zi = np.zeros((self._sos.shape[0], 2, channels), dtype=np.float64)
        self._hop_count = 1  # hop starts passed so far (the first is frame 0)
        self._open_sum = 0.0  # energy of the hop under way
        self._sums: list[NDArray[np.float64]] = []  # finished hops' energies
        self._peak = 0.0
        self._oversampler = soxr.ResampleStream(
            rate, rate * OVERSAMPLING, channels, dtype="float32"
        )

    def feed(self, pcm: NDArray[np.float32]) -> None:
        if not pcm.shape[0]:
            return
        start, end = self.frames, self.frames + pcm.shape[0]
        weighted, self._zi = sosfilt(self._sos, pcm.astype(np.float64), axis=0, zi=self._zi)
        energy = np.square(weighted).sum(axis=1)
        ends = self._hops_until(end) - start  # hops that finish in this block, relative
        cuts = np.concatenate(([0], ends[ends < len(energy)])).astype(np.int64)
        parts = np.add.reduceat(energy, cuts)
        if len(ends):
            finished = parts[: len(ends)].copy()
            finished[0] += self._open_sum
            self._sums.append(finished)
            self._open_sum = float(parts[len(ends)]) if len(parts) > len(ends) else 0.0
        else:
            self._open_sum += float(parts[0])
        self.frames = end
        self._peak = max(self._peak, float(np.abs(pcm).max()))
        self._oversample(pcm, last=False)

    def _hops_until(self, end: int) -> NDArray[np.int64]:
        """Hop starts in (frames fed, ``end``]: where finished hops end."""
        # One more than end * 10 / rate: a start can round down onto ``end``.
        stop = int((end + 1) * 10 // self.rate) + 1
        starts = _hop_positions(self._hop_count, stop, self.rate)
        starts = starts[starts <= end]
        self._hop_count += len(starts)
        return starts

    def _oversample(self, pcm: NDArray[np.float32], *, last: bool) -> None:
        out = self._oversampler.resample_chunk(pcm, last=last)
        if out.size:
            self._peak = max(self._peak, float(np.abs(out).max()))

    def result(self) -> TrackLoudness:
        """The track's loudness; the meter takes nothing more after this."""
        self._oversample(np.zeros((0, self._zi.shape[2]), dtype=np.float32), last=True)
        peak = round(20.0 * math.log10(self._peak), 2) if self._peak > 0 else SILENCE_DBTP
        hops = _hop_starts(self.frames, self.rate)
        if len(hops) <= _HOPS_PER_BLOCK:
            blocks = np.zeros(0, dtype=np.float64)
        else:
            # _hop_starts leaves out a last start that rounds down onto the very end
            sums = np.concatenate(self._sums)[: len(hops) - 1]
            window = np.convolve(sums, np.ones(_HOPS_PER_BLOCK), mode="valid")
            lengths = hops[_HOPS_PER_BLOCK:] - hops[:-_HOPS_PER_BLOCK]
            blocks = np.asarray(window / lengths, dtype=np.float64)
        return TrackLoudness(lufs=integrated(blocks), peak_dbtp=peak, blocks=blocks)


def album(tracks: Sequence[TrackLoudness]) -> tuple[float, float]:
    """(loudness, true peak) of tracks heard as one programme."""
    if not tracks:
        return SILENCE_LUFS, SILENCE_DBTP
    blocks = np.concatenate([t.blocks for t in tracks])
    return integrated(blocks), max(t.peak_dbtp for t in tracks)
