"""The multiroom bench's judge finds what it claims to: a window's place in the music to a
fraction of a frame, a known skew between members, the drift of free-running DACs, a
correction that jumps, and when a late joiner came within 1 ms.

Synthetic recordings made from a band-limited noise reference with known positions (the
DAC harness's ``Recording`` shape); ``bench/sync_analysis.py`` is imported as the bench
imports it (``bench/`` on ``sys.path``).
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from tests.virtual_dac import STRIDE_FRAMES, WINDOW_FRAMES, Recording

BENCH = Path(__file__).resolve().parents[1] / "bench"
RATE = 44100
SECONDS = 12
T0 = 1_000_000_000_000


def analysis() -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module("sync_analysis")


def noise(seconds: float, seed: int = 7) -> NDArray[np.float64]:
    """Noise low-passed to ~4 kHz with a slow envelope: sharp, unambiguous correlation."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    spec = np.fft.rfft(rng.standard_normal(n))
    spec[int(n * 4000 / RATE) :] = 0
    x = np.fft.irfft(spec, n)
    env = 0.6 + 0.4 * np.sin(np.arange(n) * 2 * np.pi / (RATE * 1.7))
    out: NDArray[np.float64] = x / np.abs(x).max() * env
    return out


REF = noise(SECONDS)


def recording(
    name: str,
    ppm: float,
    where: Callable[[float], float],
    *,
    gain: float = 8000.0,
    resampled: bool = True,
) -> Recording:
    """What a DAC at ``ppm`` records when the audio it plays at host instant t comes from
    reference position ``where(t)`` (NaN: silence); ``resampled``: a member on the group's
    timeline (the music at the nominal rate whatever its crystal), else a free-running one
    (one frame of music per frame of its own clock)."""
    dac = RATE * (1 + ppm / 1e6)
    ks, wins = [], []
    for k in range(0, int((SECONDS - 1) * dac) - WINDOW_FRAMES, STRIDE_FRAMES):
        pos = where(T0 + k * 1e9 / dac)
        if not math.isfinite(pos) or not 0 <= pos < REF.size - WINDOW_FRAMES - 2:
            continue
        drift = np.arange(WINDOW_FRAMES) * (RATE / dac if resampled else 1.0)
        win = np.interp(pos + drift, np.arange(REF.size), REF) * gain
        ks.append(k)
        wins.append(np.rint(win).astype(np.int16))
    return Recording(
        name=name,
        rate=RATE,
        ppm=ppm,
        t0_ns=T0,
        window_k=np.asarray(ks, dtype=np.int64),
        windows=np.asarray(wins, dtype=np.int16).reshape(-1, WINDOW_FRAMES),
        underrun_k=np.zeros(0, dtype=np.int64),
        underrun_frames=np.zeros(0, dtype=np.int64),
        gone_k=np.zeros(0, dtype=np.int64),
    )


def timeline(offset_ms: float = 0.0, start_s: float = 0.5) -> Callable[[float], float]:
    """The group's timeline: reference frame 0 at T0 + start_s, plus an offset (ahead +)."""
    return lambda t: (t - T0) / 1e9 * RATE - start_s * RATE + offset_ms * RATE / 1000


def located(*recs: Recording) -> list[object]:
    sa = analysis()
    ref = sa.Reference(REF)
    return [sa.locate_member(r.name, r, ref) for r in recs]


@settings(max_examples=8, deadline=None)
@given(st.integers(2000, REF.size - 5000), st.floats(0.0, 0.99))
def test_a_window_is_found_to_a_tenth_of_a_frame(start: int, frac: float) -> None:
    sa = analysis()
    ref = sa.Reference(REF)
    win = np.interp(start + frac + np.arange(WINDOW_FRAMES), np.arange(REF.size), REF) * 5000
    for around in (None, start + 1234.0):
        pos, corr = sa.locate(np.rint(win).astype(np.int16), ref, around)
        assert corr > 0.95
        assert abs(pos - (start + frac)) < 0.1


def test_silence_and_foreign_audio_are_skipped_not_placed() -> None:
    sa = analysis()
    ref = sa.Reference(REF)
    assert sa.locate(np.zeros(WINDOW_FRAMES, np.int16), ref, None)[1] == 0.0
    other = (noise(0.1, seed=99)[:WINDOW_FRAMES] * 8000).astype(np.int16)
    assert sa.locate(other, ref, None)[1] < sa.MIN_CORR


def test_members_on_the_timeline_show_no_skew_whatever_their_crystals() -> None:
    sa = analysis()
    a, b, c = located(
        recording("a", +200, timeline()),
        recording("b", -200, timeline()),
        recording("c", +37, timeline(0.25)),  # a quarter of a millisecond ahead
    )
    s = sa.skew([a, b], RATE, T0 + 1e9, T0 + 10e9)
    assert s.stats["n"] > 150
    assert s.stats["p99"] < 0.01  # ms (under half a frame)
    assert all(abs(d) < 0.01 for d in s.drift_ms_per_min)
    s3 = sa.skew([a, b, c], RATE, T0 + 1e9, T0 + 10e9)
    assert s3.stats["p50"] == pytest.approx(0.25, abs=0.005)
    assert s3.signed_ms[:, 2].mean() == pytest.approx(0.25, abs=0.005)
    # on the timeline a fast crystal's audio is resampled: 200 ppm, far below 0.5 %
    corr = sa.corrections(a, 3 * STRIDE_FRAMES)
    assert corr.jumps == 0
    assert corr.max_rate == pytest.approx(200e-6, rel=0.25)


def test_free_running_dacs_drift_by_their_crystals() -> None:
    """The baseline: each DAC plays one frame per frame of its own clock."""
    sa = analysis()

    def free(ppm: float, start_ms: float) -> Callable[[float], float]:
        dac = RATE * (1 + ppm / 1e6)
        return lambda t: (t - T0) / 1e9 * dac - start_ms * RATE / 1000

    a, b = located(
        recording("a", +150, free(+150, 0.0), resampled=False),
        recording("b", -150, free(-150, 40), resampled=False),
    )
    s = sa.skew([a, b], RATE, T0 + 1e9, T0 + 10e9)
    # b started 40 ms later and loses 300 ppm: 18 ms a minute
    assert s.signed_ms[0, 1] == pytest.approx(-40 - 300e-6 * 1000, abs=0.1)
    assert s.drift_ms_per_min[0] == pytest.approx(-300e-6 * 60_000, rel=0.01)
    assert sa.corrections(a, 3 * STRIDE_FRAMES).max_rate < 1e-5


def test_a_jump_in_the_audio_is_a_correction_the_rate_does_not_explain() -> None:
    sa = analysis()
    base = timeline()

    def jumpy(t: float) -> float:
        return base(t) + (6 if t > T0 + 5e9 else 0)  # 6 frames skipped at once

    (a,) = located(recording("a", 0, jumpy))
    corr = sa.corrections(a, 3 * STRIDE_FRAMES)
    assert corr.jumps == 1
    assert corr.max_step_frames == pytest.approx(6, abs=0.2)
    assert corr.jump_t_ns[0] == pytest.approx(T0 + 5e9, abs=60e6)
    # the same frames spread over a second (one in ~7000: 0.014 %) are no jump
    (smooth,) = located(
        recording("s", 0, lambda t: base(t) + 6 * min(1, max(0, t - T0 - 5e9) / 1e9))
    )
    assert sa.corrections(smooth, 3 * STRIDE_FRAMES).jumps == 0


def test_a_late_joiner_counts_from_the_join_until_it_stays_within_a_millisecond() -> None:
    sa = analysis()
    base = timeline()
    join = T0 + 3e9

    def joiner(t: float) -> float:
        if t < join + 0.4e9:
            return math.nan  # still silent
        return base(t) + 20 * RATE / 1000 * math.exp(-(t - join - 0.4e9) / 0.3e9)  # 20 ms off

    a, b, j = located(
        recording("a", 100, base), recording("b", -100, base), recording("j", 50, joiner)
    )
    took = sa.time_to_sync(j, [a, b], RATE, join, T0 + 10e9)
    # 20 ms * exp(-x / 0.3 s) <= 1 ms after x = 0.3 * ln 20 = 0.9 s, plus 0.4 s of silence
    assert took == pytest.approx(0.4 + 0.3 * math.log(20), abs=0.06)
    assert sa.time_to_sync(j, [a, b], RATE, join, join + 0.8e9) is None
