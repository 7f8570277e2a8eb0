"""What every part of the audio bench shares: its options, its error, and small helpers.

The error, the progress line and the /proc readers are the control bench's own
(``latency``), so both benches say such things the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from latency.common import BenchError, Progress
from latency.stats import LatencyStats, proc_cpu_s

from . import REPO

__all__ = [
    "PHASES",
    "REPO",
    "BenchError",
    "LatencyStats",
    "Options",
    "Progress",
    "proc_cpu_s",
    "proc_status_mib",
    "wait_until",
]

PHASES = ("ttfa", "cpu", "rss", "trace")


@dataclass(slots=True)
class Options:
    plays: int  # time to first audio: plays through the hub (and as many by mpv)
    minutes: float  # CPU: minutes of very_high audio decoded
    trace_scale: float  # bandwidth trace: 1.0 = 30 s + 60 s + 60 s
    rss_seconds: float  # memory: how long the speakers play while sampled
    track_seconds: float | None  # material: each demo track this long (None: as composed)
    only: tuple[str, ...]  # which phases run, in PHASES order
    jobs: int | None  # ingest workers (None: one per CPU)
    json_path: Path | None
    keep: bool


async def wait_until(
    predicate: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.02
) -> None:
    """Poll ``predicate`` until it holds; a ``BenchError`` naming ``what`` when time runs out."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(interval_s)


def proc_status_mib(pid: int, key: str) -> float:
    """A memory line of /proc/PID/status (``VmHWM``, ``VmRSS``...) in MiB; NaN if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")
