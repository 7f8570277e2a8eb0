"""What every part of the offline cache bench shares: options, targets, percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from audio.common import REPO, BenchError, Progress, wait_until

from connect_protocol.media import Quality

__all__ = [
    "DEFAULT_JSON",
    "OVERHEAD_MAX",
    "PHASES",
    "QUALITY",
    "RATE",
    "REPO",
    "RTF_MIN",
    "TTFA_P99_MS",
    "BenchError",
    "Options",
    "Percentiles",
    "Progress",
    "wait_until",
]

PHASES = ("throughput", "ttfa")
QUALITY = Quality.VERY_HIGH  # what the targets name, and what downloads are held at here
RATE = 44100  # the sink's rate (a speaker's default)
DEFAULT_JSON = REPO / "bench" / "out" / "offline_cache.json"

# The targets (issue 5, section 5).
OVERHEAD_MAX = 0.10  # decrypt-and-read: at most 10 % slower than reading the plain file
RTF_MIN = 500.0  # ... and at least 500 x real time at very_high
TTFA_P99_MS = 30.0  # time to first audio from the cache, hub stopped: p99


@dataclass(slots=True)
class Options:
    minutes: float | None  # throughput: audio read per pass (None: the whole library once)
    rounds: int  # throughput: passes of each kind; the figure is their median
    plays: int  # time to first audio: counted plays of each series
    track_seconds: float | None  # material: each demo track this long (None: as composed)
    only: tuple[str, ...]  # which phases run, in PHASES order
    hub_baseline: bool  # time to first audio: also measure the hub (no cache)
    jobs: int | None  # ingest workers (None: one per CPU)
    json_path: Path
    keep: bool


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Milliseconds, nearest rank, over ``n`` samples."""

    n: int
    p50: float
    p95: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, samples_ns: Sequence[int]) -> Percentiles:
        if not samples_ns:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan)
        ms = sorted(s / 1e6 for s in samples_ns)

        def pct(p: float) -> float:
            return ms[max(0, math.ceil(p / 100 * len(ms)) - 1)]

        return cls(len(ms), pct(50), pct(95), pct(99), ms[-1], sum(ms) / len(ms))

    def rounded(self) -> dict[str, float]:
        return {
            "n": self.n,
            "p50": round(self.p50, 3),
            "p95": round(self.p95, 3),
            "p99": round(self.p99, 3),
            "max": round(self.max, 3),
            "mean": round(self.mean, 3),
        }
