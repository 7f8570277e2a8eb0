"""Adaptive bitrate: which quality to fetch the next segment in.

A pure function over values (no clock, no sockets), so every rule below is
tested directly and with hypothesis:

- ``--quality LEVEL`` pins that level; ``auto`` lets the policy choose, never
  above the cap.
- Start so that sound comes out fast: with no throughput measured yet, the
  ``start`` level (``normal``); with a measurement, the best level it carries
  with margin, but not above ``start`` until the buffer has filled.
- Drop at once on a stall or below the low watermark, to the best level the
  measured throughput carries with a wide margin (one step down if nothing is
  measured).
- Rise only above the high watermark, one level at a time, and only when the
  throughput covers the next level with margin.
- Between the watermarks, keep the current level (no flapping).
"""

from __future__ import annotations

from dataclasses import dataclass

from connect_protocol.media import BITRATES_BPS, Quality

__all__ = ["BITRATES_BPS", "AbrInput", "AbrPolicy", "Quality", "carried", "choose"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AbrPolicy:
    low_watermark_s: float = 5.0
    high_watermark_s: float = 30.0
    start: Quality = Quality.NORMAL
    #: Throughput must exceed a level's bitrate by this factor to rise to it.
    rise_margin: float = 1.5
    #: ... and by this one to be chosen after a stall or on a low buffer.
    drop_margin: float = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AbrInput:
    current: Quality | None  # None before the first segment
    buffer_s: float  # audio decoded or fetched ahead of the play position
    throughput_bps: float | None  # recent measured throughput; None if unknown
    stalled: bool = False  # the buffer ran dry since the last choice
    cap: Quality = Quality.VERY_HIGH
    pinned: bool = False  # --quality LEVEL: always the cap


def carried(throughput_bps: float, margin: float, cap: Quality) -> Quality:
    """The best level whose bitrate x ``margin`` the throughput covers (LOW at worst)."""
    best = Quality.LOW
    for level in Quality:
        if level <= cap and BITRATES_BPS[level] * margin <= throughput_bps:
            best = level
    return best


def choose(inp: AbrInput, policy: AbrPolicy = AbrPolicy()) -> Quality:
    cap = inp.cap
    if inp.pinned:
        return cap
    if inp.current is None:
        first = min(policy.start, cap)
        if inp.throughput_bps is None:
            return first
        return min(first, carried(inp.throughput_bps, policy.rise_margin, cap))
    current = min(inp.current, cap)
    if inp.stalled or inp.buffer_s < policy.low_watermark_s:
        if inp.throughput_bps is None:
            return Quality(max(Quality.LOW, current - 1))
        return min(current, carried(inp.throughput_bps, policy.drop_margin, cap))
    if inp.buffer_s > policy.high_watermark_s and current < cap and inp.throughput_bps:
        step_up = Quality(current + 1)
        if BITRATES_BPS[step_up] * policy.rise_margin <= inp.throughput_bps:
            return step_up
    return current
