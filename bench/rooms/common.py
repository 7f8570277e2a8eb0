"""What every part of the multiroom bench shares: options, targets, the clock."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from latency.common import BenchError

from . import REPO

__all__ = ["REPO", "BenchError", "Options", "now_ns", "say"]

RATE = 44100  # the sink's rate and the album's
QUALITY = "normal"  # the members are pinned to it; the reference is decoded at it
PHASES = ("baseline", "group", "join")
HEARD_TARGET_PCT = 99.0  # of the time any member plays, all do (none left silent)
SKEW_TARGET_P99_MS = 1.0
SKEW_AIM_P99_MS = 0.1
TREND_TARGET_MS = 0.1  # "no drift trend": less than this over the whole run
JOIN_TARGET_S = 2.0
JOIN_TOLERANCE_MS = 1.0
MAX_RATE_ADJUST = 0.005
SETTLE_S = 5.0  # after a play command: the start, not steady state


@dataclass(frozen=True, slots=True)
class Options:
    members: int  # grouped from the start (the late joiner is one more)
    minutes: float  # the grouped phase's length
    baseline_s: float  # the baseline phase's length
    join_s: float  # how long the late joiner is watched
    ppm: tuple[float, ...]  # each DAC's crystal, members then the joiner
    jitter_ms: float  # mean one-way delay of the relay (jitter +- half of it)
    busy: bool
    track_seconds: float
    only: tuple[str, ...]
    seed: int
    json_path: Path | None
    keep: bool
    rejudge: Path | None = None  # a kept run's --json: judge it again, run nothing

    @property
    def speakers(self) -> int:
        return self.members + (1 if "join" in self.only else 0)


def default_ppm(n: int) -> tuple[float, ...]:
    """Crystals spread over -200..+200 ppm, alternating fast and slow."""
    if n == 1:
        return (0.0,)
    spread = [-200 + 400 * i / (n - 1) for i in range(n)]
    order = sorted(spread, key=lambda p: (abs(p) < 1e-9, -abs(p), p))
    return tuple(round(p, 1) for p in order[:n])


def now_ns() -> int:
    """The bench's one clock: CLOCK_MONOTONIC, the DACs' and every process's here."""
    return time.monotonic_ns()


def say(text: str) -> None:
    print(text, flush=True)
