"""Latency percentiles, and the CPU time and memory of processes (from /proc)."""

from __future__ import annotations

import math
import os
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Percentiles in milliseconds (nearest-rank), over ``n`` samples."""

    n: int
    p50: float
    p90: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, samples_ns: Sequence[int]) -> LatencyStats:
        if not samples_ns:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan)
        ms = sorted(s / 1e6 for s in samples_ns)

        def pct(p: float) -> float:
            return ms[max(0, math.ceil(p / 100 * len(ms)) - 1)]

        return cls(len(ms), pct(50), pct(90), pct(99), ms[-1], sum(ms) / len(ms))


def proc_rss_mib(pid: int) -> float:
    """Resident set size from /proc (what the issue asks for: VmRSS)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return math.nan  # the process is gone
    return math.nan


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return math.nan
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * _TICK_S


class CpuMeter:
    """CPU seconds used by each process between two readings."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self._start = self._read()
        self._t0 = time.perf_counter()

    def _read(self) -> dict[str, float]:
        out = {name: sum(proc_cpu_s(p) for p in pids) for name, pids in self.pids.items()}
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out["client (this process)"] = usage.ru_utime + usage.ru_stime
        return out

    def stop(self) -> dict[str, float]:
        end = self._read()
        out = {name: round(end[name] - self._start[name], 3) for name in end}
        out["wall"] = round(time.perf_counter() - self._t0, 3)
        return out
