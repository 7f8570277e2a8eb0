"""Audio features measured from a track's decoded audio, a block at a time.

Every ingested track gets Spotify-shaped audio features, so a listener's own
files take part in content recommendations, not only the demo catalog.
``FeatureMeter`` is fed the same float blocks as the loudness meter.  It mixes
them to mono and decimates by an integer factor to about 22 kHz (a low-pass
``sosfilt`` whose state carries across blocks), then keeps only running sums:

- a pulse: spectral flux (the rise of log magnitude over 46 ms frames, 12 ms
  apart) is the onset envelope; its autocorrelation over lags up to 5 s is
  summed as blocks arrive.  Tempo is the lag whose first four multiples
  correlate best, weighted by a log-normal prior around 120 BPM (which decides
  between a beat and its double or half), folded into 60..200 BPM.  Time
  signature is 3 when the envelope repeats clearly more after three and six
  beats than after four and eight, else 4.
- a chroma profile: each sounding 370 ms frame's share of its magnitude that
  lies on each pitch class between 60 Hz and 2.5 kHz, summed (every frame
  weighs the same; a tonal frame puts more into pitches than a drum hit); key
  and mode are the Krumhansl-Kessler profile (of 24 rotations) it correlates
  with best.
- spectral shape of the track's long-term spectrum (the magnitude and power
  spectra of its frames above -60 dBFS, summed) below 0.7 of the analysis
  Nyquist frequency (7.7 kHz, where the decimation filter is still flat): the
  centroid of the magnitude (Hz), the flatness of the power (geometric over
  arithmetic mean: 0 a pure tone .. 1 white noise) and the frequency under
  which 85 % of the magnitude lies (Hz).
- level: the RMS of those frames in dBFS (``loudness`` unless the caller
  passes the integrated loudness it measured anyway).

Memory is the filter state, two frame buffers, and a few hundred numbers of
autocorrelation and spectrum, however long the track is.

The remaining 0..1 fields are *estimates* from those measurements by the
formulas in ``estimates``: nothing here detects a voice, an audience or an
instrument, so speechiness, liveness and instrumentalness in particular are
rough.  They exist so that the catalog's features have Spotify's shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray
from scipy.signal import butter, correlate, lfilter, sosfilt

Floats = NDArray[np.float64]

ANALYSIS_RATE = 22_050  # decimated to the nearest integer factor above this
ONSET_FRAME_S = 0.046
CHROMA_FRAME_S = 0.37
PULSE_HISTORY_S = 9.5  # longest lag kept: nine beats at 57 BPM
SILENT_FRAME_DBFS = -60.0
SMOOTHING = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)  # binomial: 12 ms frames, 23 ms wide
MIN_BPM, MAX_BPM = 60.0, 200.0
PRIOR_BPM, PRIOR_OCTAVES = 120.0, 1.0
CHROMA_LOW_HZ, CHROMA_HIGH_HZ = 60.0, 2500.0
ROLLOFF = 0.85
SPECTRUM_BAND = 0.7  # of the analysis Nyquist frequency: below the decimation filter's edge
WALTZ_MARGIN = 1.05  # how much more bars of three must stand out to read as 3/4

# Krumhansl & Kessler (1982) probe-tone profiles, tonic first.
MAJOR_PROFILE = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
MINOR_PROFILE = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioFeatures:
    """One track's features: the ``audio_features`` row, ``measured`` = 1."""

    tempo: float  # BPM, 60..200; 0 when there is no pulse at all (silence)
    key: int  # pitch class 0 (C) .. 11; -1 when nothing tonal was heard
    mode: int  # 1 major, 0 minor
    time_signature: int  # beats per bar, 3 or 4
    loudness: float  # dB
    energy: float
    danceability: float
    valence: float
    acousticness: float
    instrumentalness: float
    speechiness: float
    liveness: float
    spectral_centroid: float  # Hz
    spectral_flatness: float  # 0..1
    spectral_rolloff: float  # Hz, where 85 % of the magnitude lies below


@dataclass(frozen=True, slots=True, kw_only=True)
class Measured:
    """What the meter measured, before the estimates are derived from it."""

    tempo: float
    pulse: float  # 0..1: how strongly the envelope repeats at the tempo
    key: int
    mode: int
    key_strength: float  # correlation with the best key profile, -1..1
    time_signature: int
    loudness: float
    centroid: float
    flatness: float
    rolloff: float


class _Framer:
    """Frames of ``size`` samples every ``hop`` from a stream: keeps only the unfinished tail."""

    def __init__(self, size: int, hop: int) -> None:
        self.size, self.hop = size, hop
        self.tail = np.zeros(0, dtype=np.float64)

    def push(self, samples: Floats) -> Floats:
        data = np.concatenate((self.tail, samples))
        if len(data) < self.size:
            self.tail = data
            return np.zeros((0, self.size))
        count = (len(data) - self.size) // self.hop + 1
        frames = sliding_window_view(data, self.size)[:: self.hop][:count]
        self.tail = data[count * self.hop :].copy()
        return np.asarray(frames)


class FeatureMeter:
    """Measure a track fed in blocks of (frames, channels) float PCM at ``rate``."""

    def __init__(self, rate: int, channels: int) -> None:
        self.factor = max(1, rate // ANALYSIS_RATE)
        self.rate = rate / self.factor  # the analysis rate
        self.channels = channels
        self._phase = 0  # index in the next block of the next sample kept
        self._sos = butter(8, 0.8 / self.factor, output="sos") if self.factor > 1 else None
        self._zi = np.zeros((4, 2)) if self._sos is not None else None
        onset_n = _pow2(ONSET_FRAME_S * self.rate)
        chroma_n = _pow2(CHROMA_FRAME_S * self.rate)
        self._onset = _Framer(onset_n, onset_n // 4)
        self._chroma_frames = _Framer(chroma_n, chroma_n // 2)
        self.fps = self.rate / (onset_n // 4)  # onset envelope values a second
        self._window = np.hanning(onset_n)
        self._chroma_window = np.hanning(chroma_n)
        freqs = np.fft.rfftfreq(onset_n, 1.0 / self.rate).astype(np.float64)
        self._freqs = freqs[freqs <= SPECTRUM_BAND * self.rate / 2.0]
        self._pitch = _pitch_classes(np.fft.rfftfreq(chroma_n, 1.0 / self.rate).astype(np.float64))
        self._previous = np.zeros(len(freqs))  # last frame's log magnitude
        self._trend_zi = np.zeros(1)
        self._smooth_zi = np.zeros(len(SMOOTHING) - 1)
        lags = int(PULSE_HISTORY_S * self.fps) + 2
        self._history = np.zeros(lags)  # the last ``lags`` envelope values
        self.autocorrelation = np.zeros(lags + 1)
        self.chroma = np.zeros(12)
        self._magnitude = np.zeros(len(self._freqs))  # summed over sounding frames
        self._power = np.zeros(len(self._freqs))
        self._level = np.zeros(2)  # sounding frames, their summed mean square

    def feed(self, pcm: NDArray[np.float32]) -> None:
        if not pcm.shape[0]:
            return
        mono = pcm.astype(np.float64).mean(axis=1)
        if self._sos is not None:
            mono, self._zi = sosfilt(self._sos, mono, zi=self._zi)
            kept = mono[self._phase :: self.factor]
            self._phase = (self._phase - len(mono)) % self.factor
            mono = kept
        self._spectra(self._onset.push(mono))
        self._chroma(self._chroma_frames.push(mono))

    def _spectra(self, frames: Floats) -> None:
        if not len(frames):
            return
        mags = np.abs(np.fft.rfft(frames * self._window, axis=1)) * (2.0 / self._window.sum())
        logs = np.log1p(100.0 * mags)
        previous = np.vstack((self._previous, logs[:-1]))
        flux = np.maximum(logs - previous, 0.0).sum(axis=1)
        self._previous = logs[-1]
        # Minus a 1 s moving trend: what is left is the pulse, not the track's loudness.
        alpha = 1.0 / self.fps
        trend, self._trend_zi = lfilter([alpha], [1.0, alpha - 1.0], flux, zi=self._trend_zi)
        # Widened over a few frames, so a beat between two frames still lines up.
        pulse, self._smooth_zi = lfilter(SMOOTHING, [1.0], flux - trend, zi=self._smooth_zi)
        self._correlate(pulse)
        rms = np.sqrt(np.mean(np.square(frames), axis=1))
        sounding = rms > 10.0 ** (SILENT_FRAME_DBFS / 20.0)
        if sounding.any():
            band = mags[sounding, : len(self._freqs)]
            self._magnitude += band.sum(axis=0)
            self._power += np.square(band).sum(axis=0)
            self._level += (sounding.sum(), np.square(rms[sounding]).sum())

    def _correlate(self, envelope: Floats) -> None:
        """Add this block's products with the last ``lags`` values to the autocorrelation."""
        lags = len(self._history)
        data = np.concatenate((self._history, envelope))
        out = correlate(data, envelope, mode="valid")  # out[k] pairs envelope with data[k:]
        self.autocorrelation += out[lags::-1]
        self._history = data[-lags:].copy()

    def _chroma(self, frames: Floats) -> None:
        rms = np.sqrt(np.mean(np.square(frames), axis=1)) if len(frames) else frames
        frames = frames[rms > 10.0 ** (SILENT_FRAME_DBFS / 20.0)]
        if len(frames):
            mags = np.abs(np.fft.rfft(frames * self._chroma_window, axis=1))
            # Each frame weighs the same, and tonal frames put more of it into pitches.
            share = (mags / mags.sum(axis=1, keepdims=True)).sum(axis=0)
            self.chroma += np.bincount(self._pitch[0], share[self._pitch[1]], minlength=12)

    def measured(self, loudness_db: float | None = None) -> Measured:
        """The measurements so far; ``loudness_db`` replaces the RMS level when given."""
        frames, power = self._level
        heard = frames > 0
        level = 10.0 * math.log10(power / frames) if heard and power > 0 else -70.0
        centroid, flatness, rolloff = spectral_shape(self._freqs, self._magnitude, self._power)
        bpm, pulse = tempo(self.autocorrelation, self.fps) if heard else (0.0, 0.0)
        key, mode, strength = find_key(self.chroma)
        return Measured(
            tempo=bpm,
            pulse=pulse,
            key=key,
            mode=mode,
            key_strength=strength,
            time_signature=meter(self.autocorrelation, self.fps, bpm),
            loudness=round(level if loudness_db is None else loudness_db, 2),
            centroid=centroid,
            flatness=flatness,
            rolloff=rolloff,
        )

    def result(self, loudness_db: float | None = None) -> AudioFeatures:
        """The track's features; ``loudness_db`` is the integrated loudness if measured."""
        return estimates(self.measured(loudness_db))


def _pow2(samples: float) -> int:
    return 1 << max(6, round(math.log2(max(samples, 2.0))))


def _pitch_classes(freqs: Floats) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(pitch class, bin) for the bins between ``CHROMA_LOW_HZ`` and ``CHROMA_HIGH_HZ``."""
    bins = np.flatnonzero((freqs >= CHROMA_LOW_HZ) & (freqs <= CHROMA_HIGH_HZ))
    midi = np.round(69.0 + 12.0 * np.log2(freqs[bins] / 440.0)).astype(np.int64)
    return midi % 12, bins


def spectral_shape(freqs: Floats, magnitude: Floats, power: Floats) -> tuple[float, float, float]:
    """(centroid Hz, flatness 0..1, 85 % roll-off Hz) of a long-term spectrum; zeros if silent."""
    total = float(magnitude.sum())
    if total <= 0.0:
        return 0.0, 0.0, 0.0
    centroid = float((magnitude * freqs).sum()) / total
    floor = power + 1e-20 * max(float(power.max()), 1e-20)
    flatness = float(np.exp(np.mean(np.log(floor))) / np.mean(floor))
    below = int(np.searchsorted(np.cumsum(magnitude), ROLLOFF * total))
    return centroid, min(flatness, 1.0), float(freqs[min(below, len(freqs) - 1)])


def _at(values: Floats, lag: float) -> float:
    """``values`` at a fractional index, linearly interpolated."""
    low = int(lag)
    if low + 1 >= len(values):
        return 0.0
    frac = lag - low
    return float(values[low] * (1.0 - frac) + values[low + 1] * frac)


def tempo(autocorrelation: Floats, fps: float) -> tuple[float, float]:
    """(BPM, pulse clarity 0..1) from an onset envelope's autocorrelation at ``fps``.

    Each candidate on a 0.1 BPM grid scores the mean autocorrelation at its
    first four beat multiples (which pins the beat to a fraction of a frame),
    times a log-normal prior; the best is refined by a parabola through its
    neighbours.
    """
    energy = float(autocorrelation[0])
    if energy <= 0.0:
        return 0.0, 0.0
    grid = np.arange(MIN_BPM, MAX_BPM + 0.05, 0.1)
    longest = len(autocorrelation) - 2
    scores = np.empty(len(grid))
    for i, bpm in enumerate(grid):
        beat = 60.0 * fps / bpm
        hits = [_at(autocorrelation, k * beat) for k in range(1, 5) if k * beat <= longest]
        scores[i] = max(sum(hits) / max(len(hits), 1), 0.0)
    prior = np.exp(-0.5 * np.square(np.log2(grid / PRIOR_BPM) / PRIOR_OCTAVES))
    weighted = scores * prior
    best = int(np.argmax(weighted))
    if weighted[best] <= 0.0:
        return 0.0, 0.0
    shift = 0.0
    if 0 < best < len(grid) - 1:
        a, b, c = weighted[best - 1 : best + 2]
        bend = a - 2.0 * b + c
        shift = 0.5 * (a - c) / bend if bend < 0 else 0.0
    bpm = float(grid[best] + 0.1 * shift)
    return round(bpm, 2), min(max(float(scores[best]) / energy, 0.0), 1.0)


def meter(autocorrelation: Floats, fps: float, bpm: float) -> int:
    """3 when bars of three beats stand out more than bars of four, else 4.

    A bar stands out when the envelope repeats more after it (and after two of
    it) than after a beat less or more: the lag's value over the geometric mean
    of its neighbours', which cancels the slow decay over longer lags.  Each
    lag's value is the largest within a frame of it, as a beat may fall between
    two frames.
    """
    if bpm <= 0.0:
        return 4
    beat = 60.0 * fps / bpm

    def near(beats: int) -> float:
        lag = beats * beat
        low, high = max(int(lag) - 1, 0), min(int(lag) + 3, len(autocorrelation))
        return max(float(autocorrelation[low:high].max()), 1e-12) if low < high else 1e-12

    def stands_out(bar: int) -> float:
        return sum(near(n) / math.sqrt(near(n - 1) * near(n + 1)) for n in (bar, 2 * bar))

    return 3 if stands_out(3) > WALTZ_MARGIN * stands_out(4) else 4


_PROFILES = np.array(
    [np.roll(profile, tonic) for profile in (MINOR_PROFILE, MAJOR_PROFILE) for tonic in range(12)]
)
_PROFILES = (_PROFILES - _PROFILES.mean(axis=1, keepdims=True)) / np.linalg.norm(
    _PROFILES - _PROFILES.mean(axis=1, keepdims=True), axis=1, keepdims=True
)


def key_correlations(chroma: Floats) -> Floats:
    """Pearson correlation of a chroma profile with each key: [mode (0 minor, 1 major), tonic]."""
    centred = chroma - chroma.mean()
    norm = float(np.linalg.norm(centred))
    if not norm > 1e-9 * max(float(np.abs(chroma).max()), 1e-300):
        return np.zeros((2, 12))  # flat: every pitch class alike, no key
    return np.asarray(_PROFILES @ (centred / norm), dtype=np.float64).reshape(2, 12)


def find_key(chroma: Floats) -> tuple[int, int, float]:
    """(key, mode, correlation) of the best of the 24 rotated key profiles; key -1 if none."""
    correlations = key_correlations(chroma)
    if not np.any(correlations):
        return -1, 1, 0.0
    mode, tonic = np.unravel_index(int(np.argmax(correlations)), correlations.shape)
    return int(tonic), int(mode), round(float(correlations[mode, tonic]), 3)


def _clip(x: float) -> float:
    return round(min(max(x, 0.0), 1.0), 3)


def estimates(m: Measured) -> AudioFeatures:
    """The Spotify-shaped 0..1 fields, estimated from the measurements:

    - loud = (loudness + 40) / 35 and bright = centroid / 2 kHz, each clipped to 0..1;
      tempo_fit = a Gaussian in octaves from 115 BPM (sd 0.6 octave).
    - energy = 0.6 loud + 0.25 bright + 0.15 flatness
    - danceability = 0.55 pulse' + 0.3 tempo_fit + 0.15 loud, pulse' = min(1, 3 pulse)
    - valence = 0.3 + 0.25 mode + 0.2 (tempo - 60) / 140 + 0.25 bright - 0.1 (1 - mode) key_strength
    - acousticness = 1 - 0.7 bright - 0.6 flatness
    - speechiness = 0.5 flatness (1 - pulse') (speech is noisy and has no steady beat)
    - instrumentalness = 1 - 1.5 speechiness
    - liveness = 0.08 + 0.3 flatness (1 - pulse') (a room's noise, a loose pulse)
    """
    loud = min(max((m.loudness + 40.0) / 35.0, 0.0), 1.0)
    bright = min(m.centroid / 2000.0, 1.0)
    pulse = min(3.0 * m.pulse, 1.0)
    fit = math.exp(-0.5 * (math.log2(m.tempo / 115.0) / 0.6) ** 2) if m.tempo >= 1.0 else 0.0
    speech = _clip(0.5 * m.flatness * (1.0 - pulse))
    return AudioFeatures(
        tempo=m.tempo,
        key=m.key,
        mode=m.mode,
        time_signature=m.time_signature,
        loudness=m.loudness,
        energy=_clip(0.6 * loud + 0.25 * bright + 0.15 * m.flatness),
        danceability=_clip(0.55 * pulse + 0.3 * fit + 0.15 * loud),
        valence=_clip(
            0.3
            + 0.25 * m.mode
            + 0.2 * max(m.tempo - 60.0, 0.0) / 140.0
            + 0.25 * bright
            - 0.1 * (1 - m.mode) * max(m.key_strength, 0.0)
        ),
        acousticness=_clip(1.0 - 0.7 * bright - 0.6 * m.flatness),
        instrumentalness=_clip(1.0 - 1.5 * speech),
        speechiness=speech,
        liveness=_clip(0.08 + 0.3 * m.flatness * (1.0 - pulse)),
        spectral_centroid=round(m.centroid, 1),
        spectral_flatness=round(m.flatness, 4),
        spectral_rolloff=round(m.rolloff, 1),
    )
