"""Multiroom's pure parts, by their properties: the timeline, the aligner, the clock, the wire.

What a listener relies on: the timeline says the same thing read either way
and runs on unbroken at a gapless join; a member whose sound card is off by
hundreds of ppm is brought onto the timeline and kept within a couple of
frames without an audible jump; a follower's idea of the leader's clock
converges under network jitter; and nothing arriving from the network, sealed
or not, can make a speaker raise anything but ``WireError``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connect_protocol.messages import TrackRef
from device.audio.native.alignment import Decision, SyncAlignment
from device.audio.pcm_queue import Chunk
from device.audio.timeline import Timeline
from device.sync.aligner import Aligner, apply_adjust
from device.sync.anchor import NS, Anchor
from device.sync.clock import ClockFilter, Exchange
from device.sync.wire import (
    MAGIC,
    MAX_DATAGRAM,
    TAG_BYTES,
    Kind,
    Plan,
    PlanRequest,
    TimeRequest,
    TimeResponse,
    WireError,
    decode,
    encode,
)

KEY = bytes(range(32))
RATE = 44100
BLOCK = 512

rates = st.sampled_from([8000, 22050, 44100, 48000, 96000, 384000])
uris = st.text(min_size=1, max_size=40)
times = st.integers(min_value=-(2**62), max_value=2**62)
frames = st.integers(min_value=0, max_value=2**34)  # 4.5 days at 44.1 kHz
TINY = 1e-3  # a thousandth of a frame: float rounding, far below hearing


@st.composite
def anchors(draw: st.DrawFn, playing: bool | None = None) -> Anchor:
    return Anchor(
        uri=draw(uris),
        frame=draw(frames),
        at_ns=draw(st.integers(min_value=-(2**60), max_value=2**60)),
        rate=draw(rates),
        playing=draw(st.booleans()) if playing is None else playing,
    )


# --- Anchor -------------------------------------------------------------------------


@given(anchors(playing=True), st.integers(min_value=-(2**40), max_value=2**40))
def test_anchor_time_of_and_frame_at_are_inverse(anchor: Anchor, delta: int) -> None:
    t = anchor.at_ns + delta
    assert abs(anchor.time_of(anchor.frame_at(t)) - t) <= 1
    frame = anchor.frame + delta // 1000
    assert abs(anchor.frame_at(anchor.time_of(frame)) - frame) <= anchor.rate / NS + TINY


@given(anchors(playing=True), uris, frames, st.integers(min_value=-(2**40), max_value=2**40))
def test_a_rebased_anchor_continues_the_same_timeline(
    anchor: Anchor, nxt: str, length: int, delta: int
) -> None:
    rebased = anchor.rebased(nxt, length)
    t = anchor.at_ns + delta
    # frame N of the next track is heard when frame length+N of this one would have been
    assert abs(rebased.frame_at(t) - (anchor.frame_at(t) - length)) <= anchor.rate / NS + TINY
    assert rebased.uri == nxt
    assert rebased.frame == 0


@given(anchors(), st.integers(min_value=-(2**40), max_value=2**40))
def test_a_held_anchor_stays_on_its_frame_and_moving_keeps_the_frame(
    anchor: Anchor, delta: int
) -> None:
    t = anchor.at_ns + delta
    held = anchor.moved(t, playing=False)
    assert held.frame_at(t + 10 * NS) == held.frame
    assert held.frame == max(0, round(anchor.frame_at(t)))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@given(anchors())
def test_an_anchor_survives_its_json(anchor: Anchor) -> None:
    if anchor.rate <= 384000 and len(anchor.uri) <= 256:
        assert Anchor.from_obj(json.loads(json.dumps(anchor.to_obj()))) == anchor


@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "uri": json_values,
                "frame": json_values,
                "at_ns": json_values,
                "rate": json_values,
            },
            optional={"playing": json_values},
        ),
    )
)
def test_anchor_from_junk_is_refused_with_value_error(obj: Any) -> None:
    try:
        anchor = Anchor.from_obj(obj)
    except ValueError:
        return
    assert isinstance(anchor.uri, str)
    assert 8000 <= anchor.rate <= 384000
    assert anchor.frame >= 0


# --- Aligner ------------------------------------------------------------------------


def simulate(
    aligner: Aligner, start_error: float, ppm: float, noise: float, blocks: int, seed: int
) -> list[float]:
    """A member writing ``blocks`` blocks to a DAC ``ppm`` fast, measuring its error with
    up to ``noise`` frames of error; returns the true error before each block."""
    rng = random.Random(seed)
    error = start_error
    trace = []
    for _ in range(blocks):
        trace.append(error)
        step = aligner.step(error + rng.uniform(-noise, noise), BLOCK)
        error -= step.silence  # silence: the track waits while the timeline runs on
        error += step.skip  # skipped audio: the track jumps ahead
        sink = BLOCK + step.adjust
        error += BLOCK - sink / (1 + ppm * 1e-6)  # the DAC plays the sink frames at its rate
    return trace


@settings(max_examples=40, deadline=None)
@given(
    start=st.floats(min_value=-5000, max_value=5000),
    ppm=st.floats(min_value=-500, max_value=500),
    noise=st.floats(min_value=0, max_value=1.0),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_the_aligner_brings_any_dac_onto_the_timeline_and_keeps_it_there(
    start: float, ppm: float, noise: float, seed: int
) -> None:
    aligner = Aligner(RATE)
    blocks = int(40 * RATE / BLOCK)  # 40 s
    trace = simulate(aligner, start, ppm, noise, blocks, seed)
    assert abs(trace[1]) <= 0.5 + noise + 1  # the start lands on the frame
    steady = trace[int(30 * RATE / BLOCK) :]  # the last 10 s
    assert max(abs(e) for e in steady) <= 2, f"error {max(abs(e) for e in steady):.1f} frames"
    assert aligner.hard_corrections == 0  # drift never needs a jump
    # and it learned the DAC's offset (within the noise of a 40 s run)
    assert abs(aligner.drift_ppm - ppm) <= 60


@given(
    st.integers(min_value=1, max_value=8192),
    st.lists(st.floats(min_value=-300, max_value=300), min_size=1, max_size=50),
)
def test_the_aligner_never_corrects_more_than_half_a_percent_per_block(
    block: int, errors: list[float]
) -> None:
    aligner = Aligner(RATE)
    aligner.step(0.0, block)  # started
    cap = math.ceil(block * 0.005)
    for error in errors:
        step = aligner.step(error, block)
        assert not step.hard
        assert step.silence == step.skip == 0
        assert abs(step.adjust) <= max(1, cap)


@given(st.floats(min_value=-1e6, max_value=1e6))
def test_a_start_is_exact(error: float) -> None:
    step = Aligner(RATE).step(error, BLOCK)
    assert step.silence - step.skip == round(error)
    assert step.adjust == 0


# --- apply_adjust -------------------------------------------------------------------


@given(st.integers(min_value=4, max_value=8000), st.data())
def test_apply_adjust_changes_the_length_and_only_blends_neighbours(n: int, data: Any) -> None:
    adjust = data.draw(st.integers(min_value=-(n // 3 - 1), max_value=n // 2 - 1))
    rng = np.random.default_rng(data.draw(st.integers(min_value=0, max_value=2**32)))
    music = rng.integers(-32768, 32768, n)
    ramp = 4 * np.arange(n)  # identifies each frame: 4i is frame i, 4i+2 a blend of i and i+1
    pcm = np.stack([music, ramp], axis=1).astype(np.int16)

    out = apply_adjust(pcm, adjust)

    assert out.shape == (n + adjust, 2)
    tags = out[:, 1].astype(np.int64)
    kept, made = np.flatnonzero(tags % 4 == 0), np.flatnonzero(tags % 4 != 0)
    assert len(made) == abs(adjust)
    assert np.array_equal(out[kept, 0], music[tags[kept] // 4])  # untouched frames are exact
    i = tags[made] // 4
    lo, hi = np.minimum(music[i], music[i + 1]), np.maximum(music[i], music[i + 1])
    assert np.all((lo <= out[made, 0]) & (out[made, 0] <= hi))  # never outside its neighbours
    assert 0 not in made
    assert out.shape[0] - 1 not in made
    assert not np.any(np.diff(made) < 2)  # never two next to each other


def test_apply_adjust_refuses_more_than_the_block_can_spread() -> None:
    with pytest.raises(ValueError, match="cannot adjust"):
        apply_adjust(np.zeros((10, 2), np.int16), 5)
    with pytest.raises(ValueError, match="cannot adjust"):  # removed pairs need a frame between
        apply_adjust(np.zeros((9, 2), np.int16), -3)


# --- ClockFilter --------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    offset=st.integers(min_value=-(10**15), max_value=10**15),
    skew_ppm=st.floats(min_value=-200, max_value=200),
    base_us=st.integers(min_value=20, max_value=2000),
    jitter_us=st.integers(min_value=0, max_value=500),  # mean extra delay each way: busy Wi-Fi
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_the_clock_filter_finds_the_leaders_clock_through_jitter(
    offset: int, skew_ppm: float, base_us: int, jitter_us: int, seed: int
) -> None:
    rng = random.Random(seed)
    skew = skew_ppm * 1e-6

    def leader(local: float) -> float:
        return offset + local * (1 + skew)

    filt = ClockFilter()
    local = 10**12
    for _ in range(64):
        local += 250_000_000
        fwd = base_us * 1000 + rng.expovariate(1 / (jitter_us * 1000 + 1))
        back = base_us * 1000 + rng.expovariate(1 / (jitter_us * 1000 + 1))
        t1 = local
        t2 = round(leader(t1 + fwd))
        t3 = t2 + 30_000
        t4 = round(t1 + fwd + 30_000 / (1 + skew) + back)
        filt.add(Exchange(t1, t2, t3, t4))
    estimate = filt.estimate
    assert estimate is not None
    now = local + 100_000_000
    # the symmetric part of the delay costs nothing; jitter, a fraction of itself (the
    # worst of 3000 random runs: 233 us and 23 ppm)
    error_us = abs(estimate.leader_ns(now) - leader(now)) / 1000
    assert error_us <= 500, f"{error_us:.0f} us off"
    assert abs(estimate.skew - skew) <= 50e-6


@settings(max_examples=25, deadline=None)
@given(
    offset=st.integers(min_value=-(10**12), max_value=10**12),
    skew_ppm=st.floats(min_value=-100, max_value=100),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_the_clock_filter_is_not_fooled_by_jitter_that_differs_each_way(
    offset: int, skew_ppm: float, seed: int
) -> None:
    """The bench's network: 1 ms floor each way, then 0-2 ms uniform towards the leader
    but mostly short back (triangular): the least round trip's midpoint is ~100 us off
    here; each way's own floor is not."""
    rng = random.Random(seed)
    skew = skew_ppm * 1e-6

    def leader(local: float) -> float:
        return offset + local * (1 + skew)

    filt = ClockFilter()
    local = 10**12
    for _ in range(256):  # 32 s at the peer's 8 a second
        local += 125_000_000
        fwd = 1_000_000 + rng.uniform(0, 2_000_000)
        back = 1_000_000 + rng.triangular(0, 2_000_000, 0)
        t2 = round(leader(local + fwd))
        filt.add(Exchange(local, t2, t2 + 20_000, round(local + fwd + 20_000 + back)))
    estimate = filt.estimate
    assert estimate is not None
    now = local + 100_000_000
    error_us = abs(estimate.leader_ns(now) - leader(now)) / 1000
    assert error_us <= 100, f"{error_us:.0f} us off"


@settings(max_examples=10, deadline=None)
@given(
    skew_ppm=st.floats(min_value=-100, max_value=100),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_over_minutes_the_clock_filter_holds_the_rate_and_the_offset_steady(
    skew_ppm: float, seed: int
) -> None:
    """Four minutes of exchanges through the bench's network, with a busy interpreter
    adding its own delays: the long view (floor points over minutes) keeps the rate
    within a few ppm and the offset within 100 us at every moment after the first
    half minute, instead of wandering with each window's luck."""
    rng = random.Random(seed)
    skew = skew_ppm * 1e-6

    def leader(local: float) -> float:
        return 5_000_000 + local * (1 + skew)

    filt = ClockFilter()
    local = 10**12
    worst_us = worst_ppm = 0.0
    for i in range(8 * 240):
        local += 125_000_000
        fwd = 1_000_000 + rng.uniform(0, 2_000_000) + rng.expovariate(1 / 300_000)
        back = 1_000_000 + rng.triangular(0, 2_000_000, 0) + rng.expovariate(1 / 300_000)
        t2 = round(leader(local + fwd))
        estimate = filt.add(Exchange(local, t2, t2 + 20_000, round(local + fwd + 20_000 + back)))
        if i >= 8 * 45 and estimate is not None:
            now = local + fwd + 20_000 + back
            worst_us = max(worst_us, abs(estimate.leader_ns(round(now)) - leader(now)) / 1000)
            worst_ppm = max(worst_ppm, abs(estimate.skew - skew) * 1e6)
    assert worst_us <= 200, f"{worst_us:.0f} us off at worst"
    assert worst_ppm <= 10, f"rate {worst_ppm:.1f} ppm off at worst"


def test_the_clock_filter_refuses_nonsense() -> None:
    filt = ClockFilter(min_samples=1)
    good = Exchange(100, 1_000_100, 1_000_200, 300)
    assert filt.add(good) is not None
    before = filt.estimate
    for bad in (
        Exchange(100, 1_000_100, 1_000_200, 50),  # received before it was sent
        Exchange(100, 1_000_300, 1_000_200, 500),  # answered before it arrived
        Exchange(100, 0, 0, 100 + 2 * NS),  # a round trip of two seconds
    ):
        assert filt.add(bad) is before
    assert filt.refused == 3
    filt.reset()
    assert filt.estimate is None


# --- wire ---------------------------------------------------------------------------

nonces = st.binary(min_size=8, max_size=8)
i64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
tracks = st.builds(
    TrackRef,
    uri=st.text(max_size=30),
    duration_ms=st.integers(min_value=0, max_value=2**40),
    name=st.text(max_size=20),
    artists=st.lists(st.text(max_size=10), max_size=3).map(tuple),
    album=st.text(max_size=20),
)
messages = st.one_of(
    st.builds(TimeRequest, nonces, i64),
    st.builds(TimeResponse, nonces, i64, i64, i64, st.integers(min_value=0, max_value=2**64 - 1)),
    st.builds(PlanRequest, nonces),
    st.builds(
        Plan,
        st.integers(min_value=0, max_value=2**64 - 1),
        st.none() | anchors().filter(lambda a: len(a.uri) <= 256),
        st.none() | tracks,
        st.none() | tracks,
    ),
)


@given(messages)
def test_every_message_survives_the_wire(msg: Any) -> None:
    assert decode(KEY, encode(KEY, msg)) == msg


@given(messages, st.data())
def test_any_flipped_bit_is_refused(msg: Any, data: Any) -> None:
    sealed = bytearray(encode(KEY, msg))
    bit = data.draw(st.integers(min_value=0, max_value=len(sealed) * 8 - 1))
    sealed[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(WireError):
        decode(KEY, bytes(sealed))


@given(st.binary(max_size=2000))
def test_random_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(WireError):
        decode(KEY, data)


def seal(kind: int, body: bytes) -> bytes:
    head = MAGIC + bytes([kind]) + body
    return head + hmac.new(KEY, head, hashlib.sha256).digest()[:TAG_BYTES]


@given(
    st.sampled_from(list(Kind)) | st.integers(0, 255),
    st.one_of(
        st.binary(max_size=MAX_DATAGRAM),
        json_values.map(lambda v: bytes(8) + json.dumps(v).encode()),
        st.integers(1, 1400).map(lambda n: bytes(8) + b"[" * n),
        st.fixed_dictionaries(
            {"anchor": json_values, "current": json_values, "next": json_values}
        ).map(lambda v: bytes(8) + json.dumps(v).encode()),
    ),
)
def test_sealed_garbage_is_a_wire_error_and_nothing_else(kind: int, body: bytes) -> None:
    """Even a member holding the key cannot make another raise anything else."""
    data = seal(int(kind), body)
    with contextlib.suppress(WireError):
        decode(KEY, data)
    if len(data) > MAX_DATAGRAM:
        with pytest.raises(WireError):
            decode(KEY, data)


def test_a_plan_too_big_for_one_datagram_is_refused_when_sent() -> None:
    big = TrackRef(uri="u" * 2000, duration_ms=1)
    with pytest.raises(WireError):
        encode(KEY, Plan(1, None, big, None))


# --- the engine's timeline and the sink thread's decisions ---------------------------


def test_the_timeline_holds_through_a_gap_and_is_exact_again_after_an_adjusted_block() -> None:
    tl = Timeline()
    tl.gap(300, 1, "u", 1000)  # silence before track frame 1000
    assert tl.heard(0) == (tl.spans[0], 1000)
    assert tl.heard(299) == (tl.spans[0], 1000)  # the track holds during the silence
    tl.wrote(1, "u", 1000, 514, False, track_frames=512)  # two frames inserted
    tl.wrote(1, "u", 1512, 512, True)
    assert tl.heard(300)[1] == 1000  # type: ignore[index]
    assert tl.heard(300 + 514)[1] == 1512  # type: ignore[index]  # exact after the block
    assert tl.heard(300 + 514 + 511)[1] == 2023  # type: ignore[index]
    assert tl.ended(300 + 514 + 512 - 1) == []
    assert [m.uri for m in tl.ended(300 + 514 + 512)] == ["u"]  # the end where it is heard


class StepClock:
    """A group clock a test moves by hand."""

    def __init__(self, now: int | None) -> None:
        self.now = now

    def now_ns(self) -> int | None:
        return self.now


def chunk(uri: str, start: int, frames: int = BLOCK, gen: int = 1, last: bool = False) -> Chunk:
    return Chunk(gen, uri, start, np.zeros((frames, 2), np.int16), last)


def test_the_sink_thread_waits_in_silence_for_the_clock_then_starts_exactly() -> None:
    clock = StepClock(None)
    sync = SyncAlignment(RATE, BLOCK)
    anchor = Anchor(uri="a", frame=0, at_ns=NS, rate=RATE)
    sync.set_sync(clock, anchor, None)
    assert sync.decide(chunk("a", 0), 0, None) == Decision(audio=False, silence=BLOCK)
    clock.now = NS - 100 * NS // RATE  # 100 frames before the anchor: 100 frames of silence
    assert sync.decide(chunk("a", 0), 0, None) == Decision(silence=100)
    clock.now = NS + 1000 * NS // RATE  # 1000 frames late: drop them (within the chunk)
    assert sync.decide(chunk("a", 0), 0, None) == Decision(audio=False, skip=BLOCK)
    assert sync.starts == 1  # the first start is done; a skip is part of no new one


def test_a_stall_is_re_aligned_at_once_and_counted_hard() -> None:
    clock = StepClock(NS)
    sync = SyncAlignment(RATE, BLOCK)
    sync.set_sync(clock, Anchor(uri="a", frame=0, at_ns=NS, rate=RATE), None)
    assert sync.decide(chunk("a", 0), 0, None) == Decision()
    clock.now = 2 * NS  # a second later the member is still at frame 512: far behind
    assert sync.decide(chunk("a", BLOCK), 0, None) == Decision(audio=False, skip=BLOCK)
    assert sync.aligner.hard_corrections == 1
    assert sync.decide(chunk("a", RATE), 0, None) == Decision()  # on time again: a soft loop
    assert sync.starts == 1
    assert sync.aligner.hard_corrections == 1


def test_the_timeline_runs_on_into_the_next_track_at_a_gapless_join() -> None:
    clock = StepClock(NS)
    sync = SyncAlignment(RATE, BLOCK)
    anchor = Anchor(uri="a", frame=0, at_ns=NS, rate=RATE)
    sync.set_sync(clock, anchor, None)
    sync.decide(chunk("a", 0), 0, "b")
    sync.wrote(chunk("a", 0, 1000, last=True))
    clock.now = NS + 1000 * NS // RATE
    assert sync.decide(chunk("b", 0, gen=2), 0, None) == Decision()
    assert sync.rebased == anchor.rebased("b", 1000) == sync.anchor
    assert sync.aligner.started  # no new start: the join is seamless


def test_an_anchor_for_the_next_track_waits_for_the_join_and_another_track_for_its_audio() -> None:
    sync = SyncAlignment(RATE, BLOCK)
    sync.set_sync(StepClock(NS), Anchor(uri="b", frame=0, at_ns=2 * NS, rate=RATE), None)
    assert sync.decide(chunk("a", 5000), 0, "b") == Decision()  # written as it is
    assert sync.decide(chunk("a", 5000), 0, None) == Decision(audio=False, silence=BLOCK)
