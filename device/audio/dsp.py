"""The speaker's signal path between decoder and sink, over float32 ``(frames, channels)``.

Everything here is either a pure function or a small object with the state a
stream needs between chunks (resampler, limiter).  Nothing adds latency or
changes a stream's length except the resampler, whose output length is a known
function of its input length, so gapless joins and position reports stay exact.
Only numpy and soxr: the speaker's install has no scipy.
"""

from __future__ import annotations

import math

import numpy as np
import soxr
from numpy.typing import NDArray

from connect_protocol.media import Loudness
from device.audio import pcm_native

Audio = NDArray[np.float32]

NORMALISATION_MODES = ("track", "album", "off")
#: Quiet masters are lifted at most this much: beyond it we would mostly raise noise.
MAX_BOOST_DB = 20.0
#: Volume 1% sits this far below 100%; 0% is true silence.
VOLUME_RANGE_DB = 60.0


def resampled_length(frames: int, in_rate: int, out_rate: int) -> int:
    """How many frames ``StreamResampler`` yields in total for ``frames`` input frames.

    libsoxr decides the stream's length when it is flushed (``rate_flush`` in
    rate.c): ``(size_t)((double)samples_in / io_ratio + .5)`` with
    ``io_ratio = in_rate / out_rate`` as a double.  That is round-half-up of
    ``frames * out_rate / in_rate`` except that the double division can land a
    hair under an exact half (240 frames 48 kHz -> 44.1 kHz gives 220, not 221),
    so this mirrors the double arithmetic instead of using exact fractions.  It
    does not depend on how the input was cut into chunks.
    """
    if frames < 0:
        raise ValueError("frames must be >= 0")
    if in_rate == out_rate:
        return frames
    return int(frames / (in_rate / out_rate) + 0.5)


class StreamResampler:
    """A chunk-in, chunk-out resampler whose total length is ``resampled_length``.

    Chunks may be any size (even empty); the output of each ``process`` is
    whatever soxr has ready, and ``flush`` returns the rest at end of stream.
    Concatenated, the pieces equal a one-shot conversion: no clicks at chunk
    boundaries.  Equal rates pass chunks through untouched (no copy).
    """

    def __init__(self, in_rate: int, out_rate: int, channels: int, *, quality: str = "HQ") -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError("sample rates must be positive")
        if channels < 1:
            raise ValueError("channels must be >= 1")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.channels = channels
        self._stream: soxr.ResampleStream | None = None
        if in_rate != out_rate:
            self._stream = soxr.ResampleStream(
                in_rate, out_rate, channels, dtype="float32", quality=quality
            )

    def _check(self, x: Audio) -> Audio:
        if x.ndim != 2 or x.shape[1] != self.channels:
            raise ValueError(f"expected (frames, {self.channels}) audio, got shape {x.shape}")
        return np.ascontiguousarray(x, dtype=np.float32)

    def process(self, x: Audio) -> Audio:
        x = self._check(x)
        if self._stream is None:
            return x
        out: Audio = self._stream.resample_chunk(x)
        return out

    def flush(self) -> Audio:
        """The tail soxr still holds; call once at end of stream (then ``reset`` to reuse)."""
        empty = np.zeros((0, self.channels), dtype=np.float32)
        if self._stream is None:
            return empty
        out: Audio = self._stream.resample_chunk(empty, last=True)
        return out

    def reset(self) -> None:
        """Forget the stream so far (after a seek): the next chunk starts a new stream."""
        if self._stream is not None:
            self._stream.clear()


def normalisation_gain_db(loudness: Loudness, mode: str, target_lufs: float = -14.0) -> float:
    """The gain (dB) that brings a track to ``target_lufs``: ``target - integrated``.

    "album" keeps the album's internal balance (one gain for every track of
    it); "track" evens out a shuffled queue; "off" leaves the master alone.
    Positive gain is allowed because the limiter catches the peaks it makes,
    but capped at ``MAX_BOOST_DB``; an unmeasurable (silent) track gets 0.
    """
    if mode == "off":
        return 0.0
    if mode == "track":
        integrated = loudness.track_lufs
    elif mode == "album":
        integrated = loudness.album_lufs
    else:
        raise ValueError(f"normalisation mode {mode!r}; expected one of {NORMALISATION_MODES}")
    if not math.isfinite(integrated):
        return 0.0
    return min(target_lufs - integrated, MAX_BOOST_DB)


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


class Limiter:
    """A zero-latency peak limiter: instant attack, exponential release, stereo-linked.

    With no look-ahead the only way to guarantee ``|out| <= ceiling`` on every
    sample is to apply the full reduction on the very sample that needs it;
    the gain then recovers towards 1 with time constant ``release_ms``.  The
    gain is common to all channels so the stereo image does not wander.  A
    stream that stays under the ceiling comes out bit-identical (the same
    array is returned), and output length always equals input length, so the
    limiter never disturbs a gapless join.

    Vectorised: the reduction ``r[n] = max(need[n], a * r[n-1])`` is a running
    maximum of exponentially decaying peaks, which in the log domain is
    ``max.accumulate(log need[k] + k/tau) - n/tau``: numpy, no Python loop.
    """

    def __init__(
        self, sample_rate: int, ceiling_dbfs: float = -1.0, release_ms: float = 80.0
    ) -> None:
        if sample_rate <= 0 or release_ms <= 0:
            raise ValueError("sample_rate and release_ms must be positive")
        if ceiling_dbfs > 0:
            raise ValueError("ceiling_dbfs must be <= 0")
        ceiling = np.float32(db_to_gain(ceiling_dbfs))
        if float(ceiling) > db_to_gain(ceiling_dbfs):  # float32 rounding must not raise it
            ceiling = np.nextafter(ceiling, np.float32(0))
        #: The linear ceiling as float32: every output sample satisfies ``|y| <= ceiling``.
        self.ceiling = float(ceiling)
        self._ceiling32 = ceiling
        self._tau = release_ms / 1000.0 * sample_rate  # release time constant in frames
        self._reduction = 0.0  # 1 - gain after the last frame processed

    def reset(self) -> None:
        """Forget the release in progress (after a seek or a new stream)."""
        self._reduction = 0.0

    @property
    def gain(self) -> float:
        """The gain that applied to the last frame processed (1.0: not limiting)."""
        return 1.0 - self._reduction

    def process(self, x: Audio) -> Audio:
        """Limit a block; the result may be ``x`` itself when nothing needs limiting."""
        if x.ndim == 1:
            return self.process(x[:, np.newaxis])[:, 0]
        n = x.shape[0]
        if n == 0:
            return x
        # A release left over from the previous block, decayed below half a float32
        # ulp of 1.0, no longer changes any sample: a quiet block passes untouched.
        carried = self._reduction * math.exp(-1.0 / self._tau)
        if carried < 2.0**-25 and float(np.abs(x).max()) <= self.ceiling:
            self._reduction = carried * math.exp(-(n - 1) / self._tau)
            return x
        fast = pcm_native.native()
        if fast is not None:
            y = np.array(x, dtype=np.float32, order="C")  # limited in place: a copy
            self._reduction, _over = fast.limit(
                y, self._ceiling32, math.exp(-1.0 / self._tau), self._reduction
            )
            return y
        peak = np.abs(x[:, 0])
        for c in range(1, x.shape[1]):  # a column loop: numpy's max(axis=1) is slow here
            np.maximum(peak, np.abs(x[:, c]), out=peak)
        over = np.flatnonzero(peak > self._ceiling32)
        ramp = np.arange(n, dtype=np.float64) / self._tau
        logs = np.full(n, -math.inf)
        logs[over] = np.log1p(-float(self._ceiling32) / peak[over].astype(np.float64))
        logs[over] += ramp[over]
        if carried > 0:
            logs[0] = max(logs[0], math.log(carried))
        np.maximum.accumulate(logs, out=logs)
        logs -= ramp
        reduction = np.exp(logs.astype(np.float32))
        self._reduction = float(np.exp(logs[-1]))
        gain = np.subtract(np.float32(1.0), reduction, dtype=np.float32)
        y = np.multiply(x, gain[:, np.newaxis], dtype=np.float32)
        # Rounding of the gain may leave a sample one ulp over: the guarantee is exact.
        np.clip(y, -self._ceiling32, self._ceiling32, out=y)
        return y


def volume_gain(percent: int) -> float:
    """Linear gain for a volume percentage: 0 dB at 100%, ``-VOLUME_RANGE_DB`` at 1%, mute at 0%.

    Loudness is heard logarithmically, so equal steps of the slider should be
    equal steps in dB; a plain linear gain would crowd all the audible change
    into the bottom few percent.  Out-of-range input is clamped.
    """
    p = min(max(int(percent), 0), 100)
    if p == 0:
        return 0.0
    return float(10.0 ** (VOLUME_RANGE_DB * (p - 100) / 100 / 20.0))


def apply_volume(pcm: NDArray[np.int16], gain: float) -> NDArray[np.int16]:
    """Software volume on the sink's int16 frames (``gain`` <= 1: nothing clips)."""
    fast = pcm_native.native()
    if fast is not None:
        return fast.scale_s16(pcm, gain)
    out: NDArray[np.int16] = np.rint(pcm * np.float32(gain)).astype(np.int16)
    return out


def ramp_volume(pcm: NDArray[np.int16], start: float, end: float) -> NDArray[np.int16]:
    """Volume moving linearly from ``start`` to ``end`` over a block: a change never clicks."""
    fast = pcm_native.native()
    if fast is not None:
        return fast.ramp_s16(pcm, start, end)
    ramp = np.linspace(start, end, pcm.shape[0], dtype=np.float32)
    out: NDArray[np.int16] = np.rint(pcm * ramp[:, None]).astype(np.int16)
    return out


def equal_power_fade(n: int) -> tuple[Audio, Audio]:
    """Fade-out and fade-in curves (cos, sin) of ``n`` frames with ``out**2 + in**2 == 1``.

    Equal power rather than equal gain keeps the loudness steady across a
    crossfade of uncorrelated material (two different tracks).  Samples sit at
    the centres of the frames, so the curves are mirror images of each other.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    t = (np.arange(n, dtype=np.float64) + 0.5) * (math.pi / 2 / max(n, 1))
    return np.cos(t).astype(np.float32), np.sin(t).astype(np.float32)


def crossfade(tail: Audio, head: Audio) -> Audio:
    """Mix the end of one track into the start of the next, over equal-length blocks."""
    if tail.shape != head.shape:
        raise ValueError(f"crossfade needs equal shapes, got {tail.shape} and {head.shape}")
    fade_out, fade_in = equal_power_fade(tail.shape[0])
    if tail.ndim == 2:
        fade_out, fade_in = fade_out[:, np.newaxis], fade_in[:, np.newaxis]
    out: Audio = (tail * fade_out + head * fade_in).astype(np.float32, copy=False)
    return out


def to_stereo(x: Audio) -> Audio:
    """Mono (1-D or one column) becomes two identical channels; stereo is returned as is."""
    if x.ndim == 1:
        x = x[:, np.newaxis]
    if x.ndim != 2 or x.shape[1] not in (1, 2):
        raise ValueError(f"expected mono or stereo (frames, channels) audio, got shape {x.shape}")
    if x.shape[1] == 2:
        return x
    return np.repeat(x, 2, axis=1)


def to_s16(x: Audio) -> NDArray[np.int16]:
    """Float in [-1, 1) to interleaved, C-contiguous S16 ``(frames, 2)`` for the sink.

    Scales by 32768 and rounds to nearest (ties to even), so every int16 value
    read as ``v / 32768`` converts back to itself; anything at or beyond full
    scale clips to -32768 / 32767, and NaN (a DSP bug) becomes silence rather
    than a crash.  Mono is duplicated to both channels.
    """
    fast = pcm_native.native()
    if fast is not None:
        return fast.to_s16(np.ascontiguousarray(to_stereo(x), dtype=np.float32))
    with np.errstate(over="ignore", invalid="ignore"):  # clipped and zeroed below
        y = np.multiply(to_stereo(x), np.float32(32768.0), dtype=np.float32)
        if not np.isfinite(y.sum()):  # one cheap test; the full scan only when something is off
            np.nan_to_num(y, copy=False, nan=0.0)
    np.rint(y, out=y)
    np.clip(y, -32768.0, 32767.0, out=y)
    return np.ascontiguousarray(y.astype(np.int16))
