"""The mpv engine on real Ogg Vorbis segments: frames at joins, seeks, pause, volume, errors.

Tracks are encoded the way ingest cuts them (``tests.media_fixtures``) and
served from memory, the one stand-in here (the hub's HTTP path is covered by
the delivery tests).  Most tests play into the raw file sink with
``fast=True`` and compare every sample with the segments decoded one by one
(soundfile, exact by Ogg granules); pause and underrun need real time and use
the null sink.  Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
import soundfile as sf
from numpy.typing import NDArray

from connect_protocol.media import Manifest, Quality
from connect_protocol.messages import EventKind, TrackRef
from connect_protocol.ogg import BadSegmentError, check_segment, ogg_crc
from device.audio import dsp
from device.audio.mpv_engine import MpvEngine, mpv_volume
from device.audio.source import SourceError
from device.config import SpeakerConfig
from tests.media_fixtures import MemorySource, Track, make_track, sweep

RATE = 44_100
WAIT_S = 20.0
LSB = 1 / 32768
T = TypeVar("T")

Pcm = NDArray[np.float32]


def play(scenario: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(scenario, 60)

    return asyncio.run(bounded())


def decoded(track: Track, quality: Quality = Quality.NORMAL, skip: int | None = None) -> Pcm:
    """What the track must sound like: its segments decoded one by one (exact lengths)."""
    parts = []
    for n in range(len(track.manifest.boundaries) - 1):
        if n == skip:
            continue
        pcm, _ = sf.read(io.BytesIO(track.blobs[(quality, n)]), dtype="float32", always_2d=True)
        parts.append(pcm)
    return np.concatenate(parts).astype(np.float32)


def raw(path: Path) -> Pcm:
    return (np.fromfile(path, dtype="<i2").reshape(-1, 2) / 32768).astype(np.float32)


def assert_same_audio(got: Pcm, want: Pcm) -> None:
    assert got.shape == want.shape, f"{got.shape[0]} frames, expected {want.shape[0]}"
    worst = float(np.abs(got - want).max())
    assert worst <= 2 * LSB, f"differs by {worst * 32768:.1f} LSB"


@dataclass
class Run:
    engine: MpvEngine
    ended: asyncio.Queue[str]
    events: list[tuple[EventKind, str | None, str]] = field(default_factory=list)
    reports: list[tuple[str, int, bool]] = field(default_factory=list)

    async def next_end(self, timeout_s: float = WAIT_S) -> str:
        return await asyncio.wait_for(self.ended.get(), timeout_s)

    async def until(self, what: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while not what():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.02)

    def errors(self) -> list[str]:
        return [m for k, _, m in self.events if k is EventKind.ERROR]


@contextlib.asynccontextmanager
async def engine(
    source: MemorySource | GatedSource, sink: str, *, fast: bool = True, quality: str = "auto"
) -> AsyncIterator[Run]:
    ended: asyncio.Queue[str] = asyncio.Queue()
    config = SpeakerConfig(id="mpv-test", name="mpv test", engine="mpv", sink=sink, quality=quality)
    events: list[tuple[EventKind, str | None, str]] = []
    reports: list[tuple[str, int, bool]] = []
    mpv_engine = MpvEngine(
        ended.put_nowait,
        source=source,
        config=config,
        on_event=lambda kind, uri, message: events.append((kind, uri, message)),
        on_report=lambda uri, pos, buffering: reports.append((uri, pos, buffering)),
        loop=asyncio.get_running_loop(),
        fast=fast,
    )
    mpv_engine.set_volume(100)  # unity gain, so the output can be compared sample by sample
    try:
        yield Run(mpv_engine, ended, events, reports)
    finally:
        mpv_engine.close()


class GatedSource:
    """A ``MemorySource`` where one track's segments after the first fail (retryably)
    until the test opens the gate: a network that stalls mid-track."""

    def __init__(self, inner: MemorySource, track_id: str) -> None:
        self.inner = inner
        self.track_id = track_id
        self.open = False

    def manifest(self, track_id: str) -> Manifest:
        return self.inner.manifest(track_id)

    def segment(
        self, manifest: Manifest, quality: Quality, n: int, *, deadline_s: float | None = None
    ) -> bytes:
        if manifest.track_id == self.track_id and n > 0 and not self.open:
            time.sleep(0.02)
            raise SourceError("network down (test)", retryable=True)
        return self.inner.segment(manifest, quality, n, deadline_s=deadline_s)

    def held_quality(self, manifest: Manifest) -> Quality | None:
        return None

    def throughput_bps(self) -> float | None:
        return self.inner.throughput_bps()

    def close(self) -> None:
        self.inner.close()


def two_tracks() -> tuple[MemorySource, Track, Track]:
    source = MemorySource()
    a = source.add(make_track("a", sweep(int(RATE * 9.3), RATE), RATE))
    b = source.add(make_track("b", sweep(int(RATE * 4.7), RATE, f0=300, f1=900), RATE))
    return source, a, b


# --- gapless -----------------------------------------------------------------------------


def test_two_tracks_play_back_to_back_to_the_frame(tmp_path: Path) -> None:
    source, a, b = two_tracks()
    out = tmp_path / "out.raw"

    async def scenario() -> Run:
        async with engine(source, f"file:{out}") as run:
            run.engine.load(a.ref, 0, True)
            run.engine.set_next(b.ref)
            assert await run.next_end() == a.ref.uri
            run.engine.load(b.ref, 0, True)  # the join already started b: absorbed
            assert await run.next_end() == b.ref.uri
            return run

    run = play(scenario())
    assert run.errors() == []
    assert_same_audio(raw(out), np.concatenate([decoded(a), decoded(b)]))
    assert run.reports[0] == (a.ref.uri, 0, False)  # first audio; the join reports nothing


def test_a_replaced_next_track_is_not_played(tmp_path: Path) -> None:
    source, a, b = two_tracks()
    c = source.add(make_track("c", sweep(int(RATE * 4.3), RATE, f0=500, f1=600), RATE))
    out = tmp_path / "out.raw"

    async def scenario() -> None:
        async with engine(source, f"file:{out}") as run:
            for track in (a, b, c):  # paused loads fetch the manifests but play nothing
                run.engine.load(track.ref, 0, False)
                first = (track.ref.name, "normal", 0)
                await run.until(lambda: first in source.fetches)  # noqa: B023 - awaited here
            run.engine.load(a.ref, 0, True)
            run.engine.set_next(b.ref)  # manifests known: b's entries go in at once
            run.engine.set_next(c.ref)  # ... and come out again
            assert await run.next_end() == a.ref.uri
            run.engine.load(c.ref, 0, True)
            assert await run.next_end() == c.ref.uri

    play(scenario())
    assert_same_audio(raw(out), np.concatenate([decoded(a), decoded(c)]))


# --- seek --------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["load", "seek"])
@pytest.mark.parametrize("target_ms", [1234, 2000, 9876])
def test_seek_lands_on_the_sample(tmp_path: Path, how: str, target_ms: int) -> None:
    source = MemorySource()
    a = source.add(make_track("a", sweep(int(RATE * 15.3), RATE), RATE))
    out = tmp_path / "out.raw"

    async def scenario() -> Run:
        async with engine(source, f"file:{out}") as run:
            if how == "load":
                run.engine.load(a.ref, target_ms, True)
            else:
                run.engine.load(a.ref, 0, False)
                await asyncio.sleep(0.2)
                run.engine.seek(target_ms)
                run.engine.set_playing(True)
            assert await run.next_end() == a.ref.uri
            return run

    run = play(scenario())
    first = target_ms * RATE // 1000
    assert_same_audio(raw(out), decoded(a)[first:])
    assert (a.ref.uri, target_ms, False) in run.reports


# --- pause, volume, position -----------------------------------------------------------


def test_pause_holds_the_position_and_resume_carries_on() -> None:
    source = MemorySource()
    a = source.add(make_track("a", sweep(int(RATE * 4.5), RATE), RATE))

    async def scenario() -> None:
        async with engine(source, "null", fast=False) as run:
            started = time.monotonic()
            run.engine.load(a.ref, 0, True)
            await asyncio.sleep(1.0)
            run.engine.set_playing(False)
            await asyncio.sleep(0.1)
            held = run.engine.position_ms()
            assert 500 <= held <= 1300
            await asyncio.sleep(0.7)
            assert run.engine.position_ms() == held
            run.engine.set_playing(True)
            await asyncio.sleep(0.6)
            # mpv opens the next segment's playlist entry before its output has played the
            # last one out, so across a segment boundary time-pos may lead by its buffer
            assert held + 300 <= run.engine.position_ms() <= held + 1300
            assert await run.next_end(10) == a.ref.uri
            elapsed = time.monotonic() - started
            assert a.ref.duration_ms / 1000 + 0.6 <= elapsed <= a.ref.duration_ms / 1000 + 2.5

    play(scenario())


@pytest.mark.parametrize("percent", [100, 40, 0])
def test_volume_follows_the_native_curve(tmp_path: Path, percent: int) -> None:
    source = MemorySource()
    a = source.add(make_track("a", sweep(int(RATE * 4.3), RATE), RATE))
    out = tmp_path / "out.raw"

    async def scenario() -> None:
        async with engine(source, f"file:{out}") as run:
            run.engine.set_volume(percent)
            run.engine.load(a.ref, 0, True)
            assert await run.next_end() == a.ref.uri

    play(scenario())
    got, want = raw(out), decoded(a)
    assert got.shape == want.shape
    if percent == 0:
        assert not got.any()
        return
    gain = float(np.sqrt((got**2).mean() / (want**2).mean()))
    assert gain == pytest.approx(dsp.volume_gain(percent), rel=0.02)


def test_mpv_volume_is_the_cube_root_of_the_native_gain() -> None:
    for percent in (0, 1, 25, 50, 99, 100):
        assert (mpv_volume(percent) / 100) ** 3 == pytest.approx(dsp.volume_gain(percent))


def test_loudness_normalisation_applies_the_track_gain(tmp_path: Path) -> None:
    source = MemorySource()
    a = source.add(make_track("a", sweep(int(RATE * 4.3), RATE), RATE, lufs=-17.0))
    out = tmp_path / "out.raw"

    async def scenario() -> None:
        async with engine(source, f"file:{out}") as run:  # target -14 LUFS: +3 dB, no limiter
            run.engine.load(a.ref, 0, True)
            assert await run.next_end() == a.ref.uri

    play(scenario())
    assert_same_audio(raw(out), decoded(a) * np.float32(dsp.db_to_gain(3.0)))


def test_the_limiter_keeps_a_raised_track_under_the_ceiling(tmp_path: Path) -> None:
    source = MemorySource()  # -30 LUFS: +16 dB would take its -6 dBTP peaks to +10
    a = source.add(make_track("a", sweep(int(RATE * 4.3), RATE), RATE, lufs=-30.0))
    out = tmp_path / "out.raw"

    async def scenario() -> None:
        async with engine(source, f"file:{out}") as run:
            run.engine.load(a.ref, 0, True)
            assert await run.next_end() == a.ref.uri

    play(scenario())
    got = raw(out)
    ceiling = dsp.db_to_gain(-1.0)
    assert got.shape == decoded(a).shape
    assert float(np.abs(got).max()) <= ceiling + LSB
    assert float(np.abs(got[RATE : 2 * RATE]).max()) > ceiling - 0.05  # limited, not muted


def test_a_mono_rendition_plays_at_full_level(tmp_path: Path) -> None:
    """FFmpeg widens mono at -3 dB; the engine's pan filter keeps it level with stereo."""
    source = MemorySource()
    a = source.add(make_track("a", sweep(int(RATE * 9.3), RATE), RATE, qualities=(Quality.LOW,)))
    out = tmp_path / "out.raw"

    async def scenario() -> None:
        async with engine(source, f"file:{out}", quality="low") as run:
            run.engine.load(a.ref, 0, True)
            assert await run.next_end() == a.ref.uri

    play(scenario())
    got = raw(out)
    middle = slice(RATE * 3, RATE * 8)
    assert np.array_equal(got[:, 0], got[:, 1])
    level_db = 20 * np.log10(np.sqrt((got[middle, 0] ** 2).mean()) / np.sqrt(0.25**2 / 2))
    assert abs(level_db) < 0.5


def test_quality_changes_mid_track_across_rates_keep_every_frame(tmp_path: Path) -> None:
    """The ABR drops to ``low`` (22.05 kHz mono) after the first segment; mpv
    switches formats between entries without losing or adding a frame."""
    source = MemorySource(bytes_per_s=20_000)  # ~160 kbps: too slow for normal on a low buffer
    a = source.add(
        make_track(
            "a", sweep(int(RATE * 15.3), RATE), RATE, qualities=(Quality.LOW, Quality.NORMAL)
        )
    )
    out = tmp_path / "out.raw"

    async def scenario() -> Run:
        async with engine(source, f"file:{out}") as run:
            run.engine.load(a.ref, 0, False)  # paused: fetch everything first
            await run.until(lambda: any(f[2] == 2 for f in source.fetches))
            run.engine.set_playing(True)
            assert await run.next_end() == a.ref.uri
            return run

    run = play(scenario())
    assert source.fetches == [("a", "normal", 0), ("a", "low", 1), ("a", "low", 2)]
    assert (EventKind.QUALITY_CHANGE, a.ref.uri, "normal -> low") in run.events
    got, want = raw(out), decoded(a)
    assert got.shape == want.shape
    first = a.manifest.boundaries[1]
    assert_same_audio(got[:first], want[:first])
    low, ref = got[first + 100 :, 0], want[first + 100 :, 0]
    assert np.corrcoef(low, ref)[0, 1] > 0.99
    assert float(np.sqrt((low**2).mean() / (ref**2).mean())) == pytest.approx(1.0, abs=0.06)


def test_unload_stops_and_ends_nothing() -> None:
    source = MemorySource()
    a = source.add(make_track("a", sweep(int(RATE * 4.5), RATE), RATE))

    async def scenario() -> None:
        async with engine(source, "null", fast=False) as run:
            run.engine.load(a.ref, 0, True)
            await run.until(lambda: bool(run.reports))
            run.engine.unload()
            assert run.engine.position_ms() == 0
            with pytest.raises(TimeoutError):
                await run.next_end(0.5)

    play(scenario())


# --- failures ----------------------------------------------------------------------------


def test_a_bad_segment_is_an_error_and_skipped_not_noise(tmp_path: Path) -> None:
    source = MemorySource()
    a = source.add(make_track("a", sweep(int(RATE * 15.3), RATE), RATE))
    source.corrupt.add(("a", 1))
    out = tmp_path / "out.raw"

    async def scenario() -> Run:
        async with engine(source, f"file:{out}") as run:
            run.engine.load(a.ref, 0, True)
            assert await run.next_end() == a.ref.uri
            return run

    run = play(scenario())
    assert [m for m in run.errors() if m.startswith("skipped segment 1")]
    assert len(run.errors()) == 1
    assert source.fetches.count(("a", "normal", 1)) == 2  # fetched again once first
    assert_same_audio(raw(out), decoded(a, skip=1))


def test_a_track_that_cannot_load_is_an_error_and_ends() -> None:
    source = MemorySource()
    missing = TrackRef(uri="legato:track:missing", duration_ms=3000)

    async def scenario() -> Run:
        async with engine(source, "null") as run:
            run.engine.load(missing, 0, True)
            assert await run.next_end() == missing.uri
            return run

    run = play(scenario())
    assert run.events
    assert run.events[0][:2] == (EventKind.ERROR, missing.uri)


def test_a_late_segment_is_an_underrun_then_playback_resumes() -> None:
    inner = MemorySource()
    a = inner.add(make_track("a", sweep(int(RATE * 9.3), RATE), RATE))
    source = GatedSource(inner, "a")

    async def scenario() -> Run:
        async with engine(source, "null", fast=False) as run:
            run.engine.load(a.ref, 0, True)
            await run.until(lambda: any(k is EventKind.UNDERRUN for k, _, _ in run.events), 8)
            assert run.reports[-1][0] == a.ref.uri
            assert run.reports[-1][2] is True
            stalled_at = run.reports[-1][1]
            assert 1500 <= stalled_at <= 2000  # the first segment (2 s) played out
            source.open = True
            await run.until(lambda: run.reports[-1][2] is False, 5)
            await asyncio.sleep(0.5)
            assert run.engine.position_ms() > stalled_at + 200
            return run

    run = play(scenario())
    assert run.errors() == []


def test_closing_during_a_stall_does_not_hang() -> None:
    inner = MemorySource()
    a = inner.add(make_track("a", sweep(int(RATE * 9.3), RATE), RATE))
    source = GatedSource(inner, "a")  # never opened: mpv waits on segment 1

    async def scenario() -> float:
        async with engine(source, "null") as run:
            run.engine.load(a.ref, 0, True)
            await run.until(lambda: bool(run.reports))
            await asyncio.sleep(0.3)
            closing = time.monotonic()
            run.engine.close()
            return time.monotonic() - closing

    assert play(scenario()) < 2.0


def test_an_audio_output_that_fails_is_retried_not_skipped() -> None:
    source = MemorySource()
    a = source.add(make_track("a", sweep(int(RATE * 9.3), RATE), RATE))

    async def scenario() -> Run:
        async with engine(source, "alsa:no-such-pcm") as run:
            run.engine.load(a.ref, 0, True)
            with pytest.raises(TimeoutError):
                await run.next_end(2.5)  # two retries, and the track has not been skipped
            assert run.engine.position_ms() == 0
            return run

    run = play(scenario())
    assert run.errors() == ["audio output alsa:no-such-pcm failed to open"]


# --- ALSA --------------------------------------------------------------------------------


def test_alsa_file_pcm_gets_every_frame(tmp_path: Path) -> None:
    source, a, _ = two_tracks()
    out = tmp_path / "alsa.raw"

    async def scenario() -> None:
        async with engine(source, f"alsa:file:FILE={out},FORMAT=raw") as run:
            run.engine.load(a.ref, 0, True)
            assert await run.next_end() == a.ref.uri

    play(scenario())
    assert_same_audio(raw(out), decoded(a))


def test_first_audio_is_reported_with_its_time() -> None:
    source = MemorySource()
    a = source.add(make_track("a", sweep(int(RATE * 2.5), RATE), RATE))

    async def scenario() -> tuple[int, int | None]:
        async with engine(source, "null") as run:
            asked = time.monotonic_ns()
            run.engine.load(a.ref, 0, True)
            assert await run.next_end() == a.ref.uri
            return asked, run.engine.first_audio_ns

    asked, first = play(scenario())
    assert first is not None
    assert 0 < first - asked < 2_000_000_000


# --- segment checks ------------------------------------------------------------------------


def _crc_bitwise(page: bytes) -> int:
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def test_ogg_crc_matches_the_specification() -> None:
    for data in (b"", b"OggS", bytes(range(256)) * 3):
        assert ogg_crc(data) == _crc_bitwise(data)
    assert ogg_crc(b"a") != zlib.crc32(b"a")


def test_check_segment_accepts_good_segments_and_names_bad_ones() -> None:
    a = make_track("a", sweep(int(RATE * 4.3), RATE), RATE)
    rendition = a.manifest.rendition(Quality.NORMAL)
    blob, frames = a.blobs[(Quality.NORMAL, 1)], rendition.segments[1].frames
    check_segment(blob, frames, rendition)
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0x10
    bad = {
        "cut short|no end": blob[: len(blob) // 2],
        "CRC": bytes(flipped),
        "no Ogg page": b"garbage" + blob,
        "frames": blob,
    }
    for reason, data in bad.items():
        with pytest.raises(BadSegmentError, match=reason):
            check_segment(data, frames + (1 if reason == "frames" else 0), rendition)
