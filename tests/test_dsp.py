"""The speaker's DSP: resampling lengths and continuity, limiter guarantees, curves, S16."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from connect_protocol.media import Loudness
from device.audio.dsp import (
    MAX_BOOST_DB,
    VOLUME_RANGE_DB,
    Limiter,
    StreamResampler,
    crossfade,
    equal_power_fade,
    normalisation_gain_db,
    resampled_length,
    to_s16,
    to_stereo,
    volume_gain,
)

RATE_PAIRS = [
    (48_000, 44_100),
    (44_100, 48_000),
    (22_050, 44_100),
    (44_100, 22_050),
    (16_000, 44_100),
    (24_000, 48_000),
    (96_000, 44_100),
    (32_000, 48_000),
    (11_025, 48_000),
]


def sine(freq: float, rate: int, frames: int, amp: float = 0.5) -> NDArray[np.float32]:
    t = np.arange(frames) / rate
    mono = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(mono[:, np.newaxis], 2, axis=1)


def run_chunked(r: StreamResampler, x: NDArray[np.float32], cuts: list[int]) -> list[int]:
    """Feed ``x`` cut at ``cuts`` (sizes, cycled) and return every output piece's length."""
    lengths, i, k = [], 0, 0
    while i < len(x):
        size = cuts[k % len(cuts)]
        lengths.append(len(r.process(x[i : i + size])))
        i, k = i + size, k + 1
    lengths.append(len(r.flush()))
    return lengths


# --- resampler ---------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    rates=st.sampled_from(RATE_PAIRS),
    frames=st.integers(0, 30_000),
    cuts=st.lists(st.integers(0, 5_000), min_size=1, max_size=12).filter(lambda c: any(c)),
)
def test_resampled_length_does_not_depend_on_chunking(
    rates: tuple[int, int], frames: int, cuts: list[int]
) -> None:
    in_rate, out_rate = rates
    x = np.random.default_rng(frames).uniform(-0.5, 0.5, (frames, 2)).astype(np.float32)
    chunked = sum(run_chunked(StreamResampler(in_rate, out_rate, 2), x, cuts))
    one_shot = sum(run_chunked(StreamResampler(in_rate, out_rate, 2), x, [max(frames, 1)]))
    assert chunked == one_shot == resampled_length(frames, in_rate, out_rate)


def test_resampled_length_follows_soxr_double_rounding() -> None:
    # 240 * 44100/48000 = 220.5 exactly, but soxr divides by the double 48000/44100.
    assert resampled_length(240, 48_000, 44_100) == 220
    assert resampled_length(5, 44_100, 22_050) == 3  # an exact half rounds up
    assert resampled_length(44_100, 44_100, 48_000) == 48_000
    assert resampled_length(0, 48_000, 44_100) == 0
    assert resampled_length(1234, 44_100, 44_100) == 1234
    for frames in (240, 5, 1):
        r = StreamResampler(48_000, 44_100, 1)
        out = len(r.process(np.zeros((frames, 1), np.float32))) + len(r.flush())
        assert out == resampled_length(frames, 48_000, 44_100)


def test_equal_rates_pass_chunks_through_without_a_copy() -> None:
    r = StreamResampler(44_100, 44_100, 2)
    x = sine(440, 44_100, 1000)
    assert r.process(x) is x
    assert r.flush().shape == (0, 2)


def test_48k_to_44k1_keeps_the_tone_and_has_no_click_at_chunk_boundaries() -> None:
    x = sine(1000, 48_000, 48_000)
    whole = StreamResampler(48_000, 44_100, 2)
    reference = np.concatenate([whole.process(x), whole.flush()])
    chunked = StreamResampler(48_000, 44_100, 2)
    pieces = [chunked.process(x[i : i + 1001]) for i in range(0, len(x), 1001)]
    y = np.concatenate([*pieces, chunked.flush()])

    assert y.shape == reference.shape == (44_100, 2)
    np.testing.assert_allclose(y, reference, rtol=0, atol=1e-6)
    spectrum = np.abs(np.fft.rfft(y[:, 0] * np.hanning(len(y))))
    assert np.argmax(spectrum) * 44_100 / len(y) == pytest.approx(1000, abs=1)
    assert np.abs(y[1000:-1000]).max() == pytest.approx(0.5, abs=0.005)
    # A click is a step no 1 kHz sine of amplitude 0.5 can make between two samples.
    max_step = 2 * math.pi * 1000 / 44_100 * 0.5
    assert np.abs(np.diff(y[:, 0])).max() <= max_step * 1.01


def test_reset_starts_a_fresh_stream() -> None:
    r = StreamResampler(48_000, 44_100, 2)
    x = sine(440, 48_000, 4800)
    first = np.concatenate([r.process(x), r.flush()])
    r.reset()
    again = np.concatenate([r.process(x), r.flush()])
    np.testing.assert_array_equal(first, again)


def test_resampler_rejects_the_wrong_channel_count() -> None:
    with pytest.raises(ValueError, match="frames, 2"):
        StreamResampler(48_000, 44_100, 2).process(np.zeros((10, 1), np.float32))


# --- loudness normalisation ----------------------------------------------------------------

LOUD = Loudness(track_lufs=-9.0, track_peak_dbtp=0.5, album_lufs=-10.5, album_peak_dbtp=0.8)
QUIET = Loudness(track_lufs=-23.0, track_peak_dbtp=-6.0, album_lufs=-20.0, album_peak_dbtp=-4.0)


def test_normalisation_gain_is_target_minus_integrated_loudness() -> None:
    assert normalisation_gain_db(LOUD, "track") == pytest.approx(-5.0)
    assert normalisation_gain_db(LOUD, "album") == pytest.approx(-3.5)
    assert normalisation_gain_db(QUIET, "track") == pytest.approx(9.0)  # boost allowed
    assert normalisation_gain_db(QUIET, "album", target_lufs=-16.0) == pytest.approx(4.0)
    assert normalisation_gain_db(LOUD, "off") == 0.0


def test_normalisation_gain_edge_cases() -> None:
    near_silent = Loudness(
        track_lufs=-70.0, track_peak_dbtp=-40.0, album_lufs=-math.inf, album_peak_dbtp=-40.0
    )
    assert normalisation_gain_db(near_silent, "track") == MAX_BOOST_DB
    assert normalisation_gain_db(near_silent, "album") == 0.0
    with pytest.raises(ValueError, match="track"):
        normalisation_gain_db(LOUD, "loud")


# --- limiter ---------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    gain_db=st.floats(-6.0, 26.0),
    ceiling_dbfs=st.floats(-12.0, 0.0),
    release_ms=st.floats(1.0, 500.0),
    block=st.integers(1, 5000),
    frames=st.integers(0, 20_000),
)
def test_limiter_never_lets_a_sample_over_the_ceiling(
    seed: int,
    gain_db: float,
    ceiling_dbfs: float,
    release_ms: float,
    block: int,
    frames: int,
) -> None:
    rng = np.random.default_rng(seed)
    x = (rng.uniform(-1, 1, (frames, 2)) * 10 ** (gain_db / 20)).astype(np.float32)
    if frames:
        x[rng.integers(0, frames)] = [1.0, -1.0]  # full scale, and a lone spike
    limiter = Limiter(44_100, ceiling_dbfs=ceiling_dbfs, release_ms=release_ms)
    pieces = [limiter.process(x[i : i + block]) for i in range(0, frames, block)]
    y = np.concatenate(pieces) if pieces else x
    assert y.shape == x.shape
    assert limiter.ceiling <= 10 ** (ceiling_dbfs / 20)
    assert float(np.abs(y).max(initial=0.0)) <= limiter.ceiling


def test_limiter_is_bit_transparent_under_the_ceiling() -> None:
    limiter = Limiter(44_100)
    x = sine(440, 44_100, 44_100, amp=0.85)  # -1.4 dBFS peaks, ceiling -1 dBFS
    for i in range(0, len(x), 4096):
        block = x[i : i + 4096]
        assert limiter.process(block) is block
    # After a burst, once the release has died away, it is transparent again.
    limiter.process(sine(440, 44_100, 4410, amp=1.0))
    limiter.process(np.zeros((2 * 44_100, 2), np.float32))
    quiet = sine(440, 44_100, 4096, amp=0.5)
    np.testing.assert_array_equal(limiter.process(quiet), quiet)
    assert limiter.gain == pytest.approx(1.0, abs=1e-9)


def test_limiter_attacks_at_once_and_releases_smoothly() -> None:
    rate, release_ms = 44_100, 80.0
    limiter = Limiter(rate, ceiling_dbfs=-6.0, release_ms=release_ms)
    x = np.full((rate // 2, 2), 0.25, np.float32)
    x[1000] = 1.0  # one full-scale frame in a steady -12 dBFS signal
    y = limiter.process(x)
    gain = y[:, 0].astype(np.float64) / x[:, 0]
    assert np.array_equal(y[:1000], x[:1000])  # zero latency: nothing before the peak moves
    assert y[1000, 0] == pytest.approx(limiter.ceiling, rel=1e-6)
    after = gain[1001:]
    assert np.all(np.diff(after) >= -1e-7)  # recovers monotonically, no pumping
    reduction0 = 1 - limiter.ceiling
    tau = int(release_ms / 1000 * rate)
    assert 1 - gain[1000 + tau] == pytest.approx(reduction0 / math.e, rel=0.01)
    end = len(x) - 1 - 1000
    assert 1 - gain[-1] == pytest.approx(reduction0 * math.exp(-end / tau), rel=0.01)


def test_limiter_output_does_not_depend_on_block_size() -> None:
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((30_000, 2)) * 0.6).astype(np.float32)
    whole = Limiter(48_000, release_ms=20).process(x)
    limiter = Limiter(48_000, release_ms=20)
    blocks = np.concatenate([limiter.process(x[i : i + 777]) for i in range(0, len(x), 777)])
    np.testing.assert_allclose(blocks, whole, rtol=0, atol=1e-6)


def test_limiter_is_fast_enough_for_a_pi() -> None:
    rng = np.random.default_rng(1)
    rate = 44_100
    x = (rng.standard_normal((10 * rate, 2)) * 0.7).astype(np.float32)  # limits ~20% of frames
    limiter = Limiter(rate)
    start = time.perf_counter()
    for i in range(0, len(x), 4096):
        limiter.process(x[i : i + 4096])
    elapsed = time.perf_counter() - start
    assert 10.0 / elapsed > 20  # measured ~600x real time on the dev box


# --- volume and fades ----------------------------------------------------------------------


def test_volume_curve_endpoints_are_exact() -> None:
    assert volume_gain(0) == 0.0
    assert volume_gain(100) == 1.0
    assert 20 * math.log10(volume_gain(1)) == pytest.approx(-VOLUME_RANGE_DB * 0.99)
    assert 20 * math.log10(volume_gain(50)) == pytest.approx(-VOLUME_RANGE_DB / 2)
    assert volume_gain(-5) == 0.0
    assert volume_gain(150) == 1.0


@given(a=st.integers(0, 100), b=st.integers(0, 100))
def test_volume_curve_is_monotone(a: int, b: int) -> None:
    if a < b:
        assert volume_gain(a) < volume_gain(b)
    assert 0.0 <= volume_gain(a) <= 1.0


@given(n=st.integers(0, 10_000))
def test_equal_power_fade_keeps_power_constant(n: int) -> None:
    fade_out, fade_in = equal_power_fade(n)
    assert fade_out.shape == fade_in.shape == (n,)
    np.testing.assert_allclose(fade_out.astype(np.float64) ** 2 + fade_in**2, 1.0, atol=1e-6)
    assert np.all(np.diff(fade_out) <= 0)
    assert np.all(np.diff(fade_in) >= 0)
    np.testing.assert_allclose(fade_out, fade_in[::-1], atol=1e-7)


def test_crossfade_mixes_tail_into_head() -> None:
    n = 1000
    tail = np.ones((n, 2), np.float32)
    head = -np.ones((n, 2), np.float32)
    fade_out, fade_in = equal_power_fade(n)
    mixed = crossfade(tail, head)
    assert mixed.shape == (n, 2)
    assert mixed.dtype == np.float32
    np.testing.assert_allclose(mixed[:, 1], fade_out - fade_in, atol=1e-6)
    # Uncorrelated material keeps its power through the fade.
    rng = np.random.default_rng(3)
    a, b = (rng.standard_normal((200_000, 2)).astype(np.float32) for _ in range(2))
    assert float(np.mean(crossfade(a, b) ** 2)) == pytest.approx(1.0, rel=0.02)
    with pytest.raises(ValueError, match="equal shapes"):
        crossfade(tail, head[:-1])


# --- S16 conversion ----------------------------------------------------------------------------


def test_to_s16_clips_and_rounds() -> None:
    lsb = 1 / 32768
    values = [1.0, -1.0, 2.0, -3.0, 0.5, lsb, 0.4 * lsb, 0.6 * lsb, -0.6 * lsb, math.nan, 0.0]
    expected = [32767, -32768, 32767, -32768, 16384, 1, 0, 1, -1, 0, 0]
    x = np.array([[v, -v] for v in values], np.float32)
    y = to_s16(x)
    assert y.dtype == np.int16
    assert y.shape == (len(values), 2)
    assert y.flags.c_contiguous
    assert y[:, 0].tolist() == expected
    assert y[1, 1] == 32767
    assert y[0, 1] == -32768


@given(st.lists(st.integers(-32768, 32767), min_size=1, max_size=200))
def test_to_s16_round_trips_every_int16(values: list[int]) -> None:
    v = np.array(values, np.int16)
    x = (np.stack([v, v[::-1]], axis=1) / 32768).astype(np.float32)
    np.testing.assert_array_equal(to_s16(x), np.stack([v, v[::-1]], axis=1))


def test_to_stereo_duplicates_mono_and_leaves_stereo_alone() -> None:
    mono = (np.arange(5) / 10).astype(np.float32)
    assert to_stereo(mono).tolist() == [[v, v] for v in mono.tolist()]
    assert to_stereo(mono[:, np.newaxis]).shape == (5, 2)
    stereo = np.zeros((5, 2), np.float32)
    assert to_stereo(stereo) is stereo
    assert to_s16(mono).shape == (5, 2)
    with pytest.raises(ValueError, match="mono or stereo"):
        to_stereo(np.zeros((5, 6), np.float32))
