"""What every part of the controls bench shares: its options, its clock, its targets.

The error, the progress line and the percentiles are the control bench's own
(``latency``), so every bench says such things the same way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from latency.common import BenchError, Progress

from . import REPO

__all__ = [
    "REPO",
    "SINK_TARGET_P99_MS",
    "STEP_PERCENT",
    "BenchError",
    "Options",
    "Progress",
    "now_ns",
    "stats_ms",
]

SINK_TARGET_P99_MS = 15.0  # knob detent -> first frame at the sink with the new gain
HUB_TARGET_P99_MS = 50.0  # knob detent -> the new state at a Connect WebSocket client
STEP_PERCENT = 2  # the speaker's default volume step per detent ([controls] volume_step)
MIDDLE_PERCENT = 50  # detents alternate around here: 50 -> 52 -> 50 ...
RATE = 44100  # the sink's rate (the speaker's default) and the tone's


def now_ns() -> int:
    """The bench's one clock: CLOCK_MONOTONIC, the same in every thread and process here."""
    return time.monotonic_ns()


def stats_ms(samples_ns: Sequence[int]) -> dict[str, float]:
    """Count and percentiles (nearest rank) in milliseconds, as the report prints them."""
    ms = sorted(s / 1e6 for s in samples_ns)
    if not ms:
        return {"n": 0} | dict.fromkeys(("p50", "p90", "p95", "p99", "max", "mean"), math.nan)

    def pct(p: float) -> float:
        return round(ms[max(0, math.ceil(p / 100 * len(ms)) - 1)], 3)

    out: dict[str, float] = {"n": len(ms)}
    out |= {f"p{p}": pct(p) for p in (50, 90, 95, 99)}
    return out | {"max": round(ms[-1], 3), "mean": round(sum(ms) / len(ms), 3)}


@dataclass(slots=True)
class Options:
    detents: int  # knob detents measured one at a time (and as many local commands)
    gap_ms: tuple[int, int]  # random pause between two of them (each measured alone)
    spin_rate: float  # detents per second in the spin
    spin_seconds: float
    track_seconds: float  # the tone's length (it plays on repeat)
    busy: bool  # keep one core busy with another process while measuring
    seed: int
    only: tuple[str, ...]  # phases, in PHASES order
    json_path: Path | None
    keep: bool


PHASES = ("latency", "spin_panel", "spin_gpio")
