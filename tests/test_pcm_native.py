"""The C loops (``pcm_native.c``) against their numpy twins, which are the reference.

``make`` builds the library; each test runs the same input through both paths
(``LEGATO_NATIVE_PCM=0`` selects numpy) and holds the results to each other, so
the speaker sounds the same with or without a C compiler.
"""

from __future__ import annotations

import ctypes
import math
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from connect_protocol.media import Quality
from device.audio import dsp, pcm_native
from device.audio.vorbis import VorbisError, VorbisStream
from tests.media_fixtures import Track, make_track, sweep

RATE = 44100
T = TypeVar("T")

pytestmark = pytest.mark.skipif(
    not pcm_native.LIBRARY.exists() and shutil.which("cc") is None,
    reason="no C compiler here, so no native library to compare (the numpy path is used)",
)


@pytest.fixture(scope="module", autouse=True)
def built() -> None:
    if not pcm_native.LIBRARY.exists():
        subprocess.run(["make", "native"], cwd=Path(__file__).parents[1], check=True)
        pcm_native._load.cache_clear()
    assert pcm_native._load() is not None, "the native library was built but does not load"


def both(fn: Callable[[], T]) -> tuple[T, T]:
    """``fn`` run with the C library, then with numpy (the environment restored after)."""
    saved = os.environ.pop(pcm_native.DISABLE_ENV, None)
    try:
        assert pcm_native.native() is not None
        fast = fn()
        os.environ[pcm_native.DISABLE_ENV] = "0"
        assert pcm_native.native() is None
        slow = fn()
    finally:
        os.environ.pop(pcm_native.DISABLE_ENV, None)
        if saved is not None:
            os.environ[pcm_native.DISABLE_ENV] = saved
    return fast, slow


@pytest.fixture(scope="module")
def track() -> Track:
    return make_track("n" * 22, sweep(int(RATE * 9.3), RATE), RATE, qualities=tuple(Quality))


def read_all(blob: bytes, block: int) -> np.ndarray:
    with VorbisStream(blob) as stream:
        parts = []
        while not stream.ended:
            parts.append(stream.read(block))
    return np.concatenate(parts)


@settings(max_examples=15, deadline=None)
@given(block=st.integers(1, 20000))
def test_decoding_gives_the_same_samples_in_any_block_size(track: Track, block: int) -> None:
    blob = track.blobs[(Quality.HIGH, 1)]
    fast, slow = both(lambda: read_all(blob, block))
    assert fast.shape == slow.shape
    assert fast.shape[0] > RATE
    assert np.array_equal(fast, slow)  # the same floats, copied: bit for bit


def test_a_corrupt_packet_is_an_error_on_both_paths(track: Track) -> None:
    blob = bytearray(track.blobs[(Quality.VERY_HIGH, 1)])
    blob[len(blob) // 2 : len(blob) // 2 + 64] = bytes(64)  # a hole mid-stream

    def outcome() -> str:
        try:
            read_all(bytes(blob), 4096)
        except VorbisError as exc:
            return str(exc)
        return "no error"

    fast, slow = both(outcome)
    assert fast == slow != "no error"


def test_non_finite_samples_are_caught_in_c(track: Track) -> None:
    """The C read flags NaN and infinity; fed straight from a fake ov_read_float."""
    lib = pcm_native._load()
    assert lib is not None
    frames = 100
    left = (ctypes.c_float * frames)(*([0.25] * frames))
    right = (ctypes.c_float * frames)(*([0.0] * 50 + [math.inf] + [0.0] * 49))
    as_pointer = ctypes.POINTER(ctypes.c_float)
    planes = (as_pointer * 2)(ctypes.cast(left, as_pointer), ctypes.cast(right, as_pointer))
    calls = []

    proto = ctypes.CFUNCTYPE(
        ctypes.c_long,
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.POINTER(ctypes.POINTER(ctypes.c_float))),
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_int),
    )

    @proto
    def fake_read(_vf, pcm, _samples, _section):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) > 1:
            return 0
        pcm[0] = ctypes.cast(planes, ctypes.POINTER(ctypes.POINTER(ctypes.c_float)))
        return frames

    out = np.empty((200, 2), np.float32)
    address = ctypes.cast(fake_read, ctypes.c_void_p).value
    code, ended, nonfinite = lib.read_interleaved(address, None, out)
    assert (code, ended, nonfinite) == (frames, True, True)
    assert np.array_equal(out[:frames, 0], np.full(frames, 0.25, np.float32))


audio_blocks = hnp.arrays(
    np.float32,
    st.tuples(st.integers(1, 3000), st.sampled_from([1, 2])),
    elements=st.floats(-4.0, 4.0, width=32),
)


@settings(max_examples=60, deadline=None)
@given(blocks=st.lists(audio_blocks, min_size=1, max_size=4), release=st.sampled_from([5.0, 80.0]))
def test_the_limiter_matches_the_numpy_reference(blocks: list[np.ndarray], release: float) -> None:
    blocks = [b for b in blocks if b.shape[1] == blocks[0].shape[1]]

    def run() -> list[np.ndarray]:
        limiter = dsp.Limiter(RATE, -1.0, release)
        return [limiter.process(b) for b in blocks]

    originals = [b.copy() for b in blocks]
    fast, slow = both(run)
    ceiling = dsp.Limiter(RATE).ceiling
    for f, s, x in zip(fast, slow, blocks, strict=True):
        assert f.shape == s.shape == x.shape
        assert np.abs(f).max() <= ceiling
        assert np.abs(f - s).max() <= 2e-6
    # the input is the caller's: limited in a copy, never in place
    assert all(np.array_equal(b, o) for b, o in zip(blocks, originals, strict=True))


def test_the_limiter_leaves_quiet_audio_bit_identical() -> None:
    loud = np.full((1000, 2), 1.5, np.float32)
    wave = np.sin(np.arange(3 * RATE, dtype=np.float32) / 7) * np.float32(0.5)
    quiet = np.repeat(wave[:, None], 2, axis=1).astype(np.float32)

    def run() -> np.ndarray:
        limiter = dsp.Limiter(RATE)
        limiter.process(loud)
        return limiter.process(quiet)  # the 80 ms release has died away by 3 s

    fast, slow = both(run)
    assert np.array_equal(fast[-1000:], quiet[-1000:])
    assert np.abs(fast - slow).max() <= 2e-6


TIES = [0.5 / 32768, 1.5 / 32768, 2.5 / 32768, -2.5 / 32768, 32767.5 / 32768]
special = st.sampled_from([0.0, -0.0, 1.0, -1.0, *TIES, math.nan, math.inf, -math.inf, 1e30, -1e30])


@settings(max_examples=80, deadline=None)
@given(
    x=hnp.arrays(
        np.float32,
        st.tuples(st.integers(0, 500), st.just(2)),
        elements=st.one_of(st.floats(-1.25, 1.25, width=32), special.map(np.float32)),
    )
)
def test_float_to_int16_is_bit_exact(x: np.ndarray) -> None:
    fast, slow = both(lambda: dsp.to_s16(x))
    assert fast.dtype == slow.dtype == np.int16
    assert np.array_equal(fast, slow)


@settings(max_examples=60, deadline=None)
@given(
    x=hnp.arrays(np.int16, st.tuples(st.integers(0, 500), st.just(2))),
    start=st.floats(0.0, 1.0),
    end=st.floats(0.0, 1.0),
)
def test_software_volume_matches(x: np.ndarray, start: float, end: float) -> None:
    fast, slow = both(lambda: dsp.apply_volume(x, start))
    assert np.array_equal(fast, slow)
    fast, slow = both(lambda: dsp.ramp_volume(x, start, end))
    assert np.abs(fast.astype(int) - slow.astype(int)).max(initial=0) <= 1  # ramp rounding


@pytest.fixture
def stale_library(tmp_path: Path) -> Path:
    source = tmp_path / "stale.c"
    source.write_text("int lg_abi_version(void) { return 0; }\n")
    lib = tmp_path / "libstale.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", lib, source], check=True)
    return lib


def test_a_stale_build_is_not_loaded(
    stale_library: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(pcm_native, "LIBRARY", stale_library)
    pcm_native._load.cache_clear()
    try:
        assert pcm_native.native() is None
        assert "stale build" in caplog.text
    finally:
        monkeypatch.undo()
        pcm_native._load.cache_clear()
    assert pcm_native.native() is not None
