"""Two native engines keep to one group timeline through virtual DACs of different clocks.

Each engine writes to a real named pipe (``FifoSink``) read by a ``FifoReader``
whose crystal runs 200 ppm fast or slow.  Both play to one ``Anchor`` on one
shared clock; where each output is heard is found by cross-correlating what
its reader played against the track's own samples, at the times the reader
played them.  A listener in the room would hear the two within a millisecond
of each other and of the timeline, through a gapless join too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from connect_protocol.messages import EventKind
from device.audio.native import EngineOptions, NativeEngine
from device.audio.sinks.fifo import FifoSink
from device.sync.anchor import Anchor
from tests.fifo_reader import FifoReader
from tests.media_fixtures import MemorySource, make_track

RATE = 44100
MS = RATE // 1000  # frames in a millisecond (44)
WINDOW = 4096


class MonoClock:
    """The group's clock when every member shares this process's monotonic clock."""

    def __init__(self) -> None:
        self.known = True

    def now_ns(self) -> int | None:
        return time.monotonic_ns() if self.known else None


def noise(frames: int, seed: int = 19) -> NDArray[np.float32]:
    """Low-passed noise: unlike a tone, any window of it is found in one place only."""
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(frames + 8)
    mono = np.convolve(white, np.ones(8) / 8, mode="valid")[:frames]
    mono = 0.15 * mono / mono.std()
    return np.stack([mono, mono], axis=1).astype(np.float32)


def offset_of(heard: NDArray[np.int16], at: int, reference: NDArray[np.float32], guess: int) -> int:
    """Where ``heard[at:at+WINDOW]`` sits in ``reference``, searched 20 ms either side of
    ``guess``; returns its frame there."""
    y = heard[at : at + WINDOW, 0].astype(np.float64) / 32768
    lo = max(0, guess - 20 * MS)
    x = reference[lo : guess + WINDOW + 20 * MS, 0].astype(np.float64)
    corr = np.correlate(x, y, mode="valid")
    k = int(np.argmax(corr))
    peak = corr[k] / (np.linalg.norm(y) * np.linalg.norm(x[k : k + WINDOW]) + 1e-12)
    assert peak > 0.6, f"no match for the output at {at} (correlation {peak:.2f})"
    return lo + k


async def until(cond: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


def test_two_engines_on_clocks_400_ppm_apart_stay_within_a_millisecond(tmp_path: Path) -> None:
    a_frames, b_frames = RATE * 4 + 1234, RATE * 3
    reference = noise(a_frames + b_frames)
    source = MemorySource()
    track_a = source.add(make_track("a" * 22, reference[:a_frames], RATE))
    track_b = source.add(make_track("b" * 22, reference[a_frames:], RATE))
    readers = [
        FifoReader(tmp_path / f"dac{i}", RATE, ppm=ppm).start() for i, ppm in enumerate((-200, 200))
    ]
    clock = MonoClock()
    rebases: list[list[Anchor]] = [[], []]
    ended: list[str] = []
    events: list[tuple[EventKind, str | None, str]] = []

    async def go() -> tuple[Anchor, list[NativeEngine]]:
        options = EngineOptions(quality="normal", normalisation="off")
        engines = [
            NativeEngine(
                ended.append,
                source=source,
                sink=FifoSink(reader.path, RATE),
                options=options,
                on_event=lambda k, u, m: events.append((k, u, m)),
            )
            for reader in readers
        ]
        anchor = Anchor(
            uri=track_a.ref.uri, frame=0, at_ns=time.monotonic_ns() + 400_000_000, rate=RATE
        )
        for i, engine in enumerate(engines):
            assert engine.sink_rate == RATE
            engine.set_sync(clock, anchor, rebases[i].append)
            engine.set_volume(100)
            engine.load(track_a.ref, 0, True)
            engine.set_next(track_b.ref)
        end_ns = anchor.time_of(a_frames + b_frames)
        await until(lambda: time.monotonic_ns() > end_ns - 300_000_000, 15)
        return anchor, engines

    anchor, engines = asyncio.run(go())
    stats = [engine.sync_stats() for engine in engines]
    for engine in engines:
        engine.close()
    for reader in readers:
        reader.stop()

    # where each output is heard, against the timeline, before and after the join
    moments = [
        anchor.time_of(f) for f in (RATE * 2, RATE * 3.5, a_frames + RATE, a_frames + RATE * 2.2)
    ]
    errors = []
    for reader in readers:
        heard = reader.heard()
        row = []
        for t_ns in moments:
            expected = round(anchor.frame_at(t_ns))
            found = offset_of(heard, reader.frame_at(t_ns), reference, expected)
            row.append(found - expected)
        errors.append(row)
    between = [abs(a - b) for a, b in zip(errors[0], errors[1], strict=True)]
    print(f"errors (frames) slow DAC {errors[0]} fast DAC {errors[1]}; stats {stats}")
    assert max(between) <= MS, f"members apart by {between} frames"
    assert max(abs(e) for row in errors for e in row) <= MS, errors

    # the slow DAC had frames removed, the fast one had frames inserted; no stall, no jump
    slow, fast = stats
    assert slow.frames_removed > slow.frames_inserted
    assert fast.frames_inserted > fast.frames_removed
    assert slow.drift_ppm < 0 < fast.drift_ppm
    for s in stats:
        assert s.hard_corrections == 0
        assert s.starts == 1
        assert s.synced
    # each engine moved the timeline on by itself at the join, once, continuously
    for got in rebases:
        assert got == [anchor.rebased(track_b.ref.uri, a_frames)]
    assert ended[:2] == [track_a.ref.uri] * 2
    assert not [e for e in events if e[0] in (EventKind.ERROR, EventKind.UNDERRUN)]


@pytest.mark.parametrize("late_ms", [300])
def test_a_member_joining_late_skips_to_the_timeline_and_waits_for_the_clock(
    tmp_path: Path, late_ms: int
) -> None:
    signal = noise(RATE * 3, seed=7)
    source = MemorySource()
    track = source.add(make_track("c" * 22, signal, RATE))
    reader = FifoReader(tmp_path / "dac", RATE).start()
    clock = MonoClock()
    clock.known = False

    async def go() -> tuple[Anchor, NativeEngine]:
        options = EngineOptions(quality="normal", normalisation="off")
        engine = NativeEngine(
            lambda uri: None, source=source, sink=FifoSink(reader.path, RATE), options=options
        )
        # the group started this track late_ms ago; this member's clock is not known yet
        anchor = Anchor(
            uri=track.ref.uri, frame=0, at_ns=time.monotonic_ns() - late_ms * 1_000_000, rate=RATE
        )
        engine.set_sync(clock, anchor, None)
        engine.set_volume(100)
        engine.load(track.ref, 0, True)
        await asyncio.sleep(0.3)
        assert engine.position_ms() == 0  # silence meanwhile; the track holds at its start
        assert not engine.sync_stats().synced
        clock.known = True
        await until(lambda: engine.sync_stats().synced, 5)
        await asyncio.sleep(0.5)
        return anchor, engine

    anchor, engine = asyncio.run(go())
    t_ns = time.monotonic_ns() - 100_000_000
    position, position_ns = engine.position_ms(), time.monotonic_ns()
    stats = engine.sync_stats()
    engine.close()
    reader.stop()
    heard = reader.heard()
    expected = round(anchor.frame_at(t_ns))
    found = offset_of(heard, reader.frame_at(t_ns), signal, expected)
    # a start is aligned on one measurement of the pipe's fill, which carries the virtual
    # DAC thread's own scheduling jitter (a few ms on a loaded machine); a card's is exact
    assert abs(found - expected) <= 2 * MS
    assert abs(position - anchor.frame_at(position_ns) * 1000 / RATE) < 150
    assert stats.starts == 1
    assert stats.hard_corrections == 0


def test_pause_resume_and_seek_each_start_afresh_on_the_moved_timeline(tmp_path: Path) -> None:
    signal = noise(RATE * 6, seed=11)
    source = MemorySource()
    track = source.add(make_track("d" * 22, signal, RATE))
    reader = FifoReader(tmp_path / "dac", RATE, ppm=150).start()
    clock = MonoClock()
    checks: list[tuple[int, Anchor]] = []  # (monotonic ns, the timeline then)
    positions: list[tuple[int, float]] = []  # (reported ms, the timeline's ms then)

    def note(engine: NativeEngine, anchor: Anchor) -> None:
        now = time.monotonic_ns()
        checks.append((now - 150_000_000, anchor))
        positions.append((engine.position_ms(), anchor.frame_at(now) * 1000 / RATE))

    async def go() -> NativeEngine:
        options = EngineOptions(quality="normal", normalisation="off")
        engine = NativeEngine(
            lambda uri: None, source=source, sink=FifoSink(reader.path, RATE), options=options
        )
        anchor = Anchor(
            uri=track.ref.uri, frame=0, at_ns=time.monotonic_ns() + 300_000_000, rate=RATE
        )
        engine.set_sync(clock, anchor, None)
        engine.set_volume(100)
        engine.load(track.ref, 0, True)
        await asyncio.sleep(1.0)
        note(engine, anchor)
        # the group pauses at one instant, then resumes 300 ms later where it held
        anchor = anchor.moved(time.monotonic_ns() + 50_000_000, playing=False)
        engine.set_anchor(anchor)
        await asyncio.sleep(0.05)
        engine.set_playing(False)
        await asyncio.sleep(0.3)
        anchor = anchor.moved(time.monotonic_ns() + 200_000_000, playing=True)
        engine.set_anchor(anchor)
        engine.set_playing(True)
        await asyncio.sleep(0.8)
        note(engine, anchor)
        # a seek: the timeline jumps to 4 s, heard 200 ms from now
        anchor = Anchor(
            uri=track.ref.uri, frame=4 * RATE, at_ns=time.monotonic_ns() + 200_000_000, rate=RATE
        )
        engine.set_anchor(anchor)
        engine.seek(4000)
        await asyncio.sleep(0.8)
        note(engine, anchor)
        return engine

    engine = asyncio.run(go())
    stats = engine.sync_stats()
    engine.close()
    reader.stop()
    heard = reader.heard()
    for t_ns, anchor in checks:
        expected = round(anchor.frame_at(t_ns))
        found = offset_of(heard, reader.frame_at(t_ns), signal, expected)
        assert abs(found - expected) <= 2 * MS, (found - expected, checks.index((t_ns, anchor)))
    for reported, timeline in positions:
        assert abs(reported - timeline) <= 10, positions
    assert stats.starts == 3
    assert stats.hard_corrections == 0
