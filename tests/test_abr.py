"""The ABR choice: examples a listener would notice, then properties."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from device.abr import BITRATES_BPS, AbrInput, AbrPolicy, Quality, carried, choose

L, N, H, V = Quality.LOW, Quality.NORMAL, Quality.HIGH, Quality.VERY_HIGH


def test_first_segment_starts_fast() -> None:
    assert choose(AbrInput(current=None, buffer_s=0, throughput_bps=None)) == N
    assert choose(AbrInput(current=None, buffer_s=0, throughput_bps=10_000_000)) == N
    assert choose(AbrInput(current=None, buffer_s=0, throughput_bps=50_000)) == L
    assert choose(AbrInput(current=None, buffer_s=0, throughput_bps=None, cap=L)) == L


def test_pinned_quality_is_kept_whatever_happens() -> None:
    for stalled in (False, True):
        inp = AbrInput(
            current=L, buffer_s=0, throughput_bps=1_000, stalled=stalled, cap=H, pinned=True
        )
        assert choose(inp) == H


def test_a_stall_drops_to_what_the_network_carries() -> None:
    inp = AbrInput(current=V, buffer_s=20, throughput_bps=250_000, stalled=True)
    assert choose(inp) == N  # 96k x 2 <= 250k < 160k x 2
    unknown = dataclasses.replace(inp, throughput_bps=None)
    assert choose(unknown) == H  # one step down when nothing is measured


def test_low_buffer_drops_too() -> None:
    assert choose(AbrInput(current=H, buffer_s=3, throughput_bps=100_000)) == L


def test_rises_one_step_only_with_a_full_buffer_and_margin() -> None:
    fast = 10_000_000
    assert choose(AbrInput(current=L, buffer_s=31, throughput_bps=fast)) == N
    assert choose(AbrInput(current=L, buffer_s=20, throughput_bps=fast)) == L  # not full yet
    barely = BITRATES_BPS[N] * 1.4  # below the 1.5 margin
    assert choose(AbrInput(current=L, buffer_s=31, throughput_bps=barely)) == L


def test_a_session_follows_the_network_down_and_back_up() -> None:
    level: Quality | None = None
    trace = []
    for buffer_s, bps, stalled in [
        (0, None, False),
        (8, 2_000_000, False),
        (31, 2_000_000, False),
        (31, 2_000_000, False),
        (31, 2_000_000, False),
        (2, 60_000, True),
        (10, 60_000, False),
        (31, 2_000_000, False),
    ]:
        level = choose(
            AbrInput(current=level, buffer_s=buffer_s, throughput_bps=bps, stalled=stalled)
        )
        trace.append(level.label)
    assert trace == ["normal", "normal", "high", "very_high", "very_high", "low", "low", "normal"]


levels = st.sampled_from(list(Quality))
inputs = st.builds(
    AbrInput,
    current=st.none() | levels,
    buffer_s=st.floats(0, 120, allow_nan=False),
    throughput_bps=st.none() | st.floats(0, 5_000_000, allow_nan=False),
    stalled=st.booleans(),
    cap=levels,
    pinned=st.booleans(),
)


@given(inputs)
def test_never_above_the_cap_and_pinned_is_the_cap(inp: AbrInput) -> None:
    chosen = choose(inp)
    assert chosen <= inp.cap
    if inp.pinned:
        assert chosen == inp.cap


@given(inputs)
def test_no_rise_on_trouble_and_at_most_one_step_up(inp: AbrInput) -> None:
    chosen = choose(inp)
    if inp.current is None or inp.pinned:
        return
    current = min(inp.current, inp.cap)
    if inp.stalled or inp.buffer_s < AbrPolicy().low_watermark_s:
        assert chosen <= current
    assert chosen <= current + 1
    if chosen > current:
        assert inp.buffer_s > AbrPolicy().high_watermark_s
        assert inp.throughput_bps is not None
        assert inp.throughput_bps >= BITRATES_BPS[chosen] * AbrPolicy().rise_margin


@given(inputs, st.floats(0, 5_000_000, allow_nan=False))
def test_more_throughput_never_means_a_lower_level(inp: AbrInput, extra: float) -> None:
    if inp.throughput_bps is None:
        return
    more = dataclasses.replace(inp, throughput_bps=inp.throughput_bps + extra)
    assert choose(more) >= choose(inp)


@given(st.floats(0, 10_000_000, allow_nan=False), levels)
def test_carried_is_within_reach(bps: float, cap: Quality) -> None:
    level = carried(bps, 1.5, cap)
    assert level <= cap
    assert level == L or BITRATES_BPS[level] * 1.5 <= bps
