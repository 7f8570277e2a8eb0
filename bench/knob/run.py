"""One whole run: the tone, the system, then each phase asked for, with one core kept busy."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from . import detents, spin, tone
from .busy import busy_core
from .common import BenchError, Options, Progress
from .speaker import start_bench


def max_run_s(opts: Options) -> float:
    """A bound on the whole run: the reader and the busy loop end by then whatever happens."""
    per_detent_s = opts.gap_ms[1] / 1000 + 0.5
    return 600 + 2 * opts.detents * per_detent_s + 4 * opts.spin_seconds


async def run(opts: Options, root: Path) -> dict[str, Any]:
    """Measure and return the figures; everything started is stopped on the way out."""
    if time.get_clock_info("perf_counter").implementation != (
        time.get_clock_info("monotonic").implementation
    ):
        raise BenchError("perf_counter and monotonic are different clocks here")
    t0 = time.perf_counter()
    library = await asyncio.to_thread(
        tone.prepare, opts.track_seconds, lambda s: print(s, flush=True)
    )
    result: dict[str, Any] = {
        "material": {
            "tone_hz": tone.TONE_HZ,
            "seconds": round(library.seconds, 1),
            "cached": library.cached,
            "prepare_s": round(library.prepare_s, 1),
        }
    }
    limit_s = max_run_s(opts)
    if "spin_gpio" in opts.only:  # in this process, before the speaker: alone on the loop
        with busy_core(opts.busy, limit_s) as busy:
            result["spin_gpio"] = await spin.spin_gpio(opts, Progress())
        result["spin_gpio"]["busy"] = busy.figures()
    speaker_phases = [p for p in opts.only if p != "spin_gpio"]
    if speaker_phases:
        async with start_bench(root, library, limit_s) as bench:
            result["speaker"] = dict(bench.extra)
            print(
                f"hub on {bench.rig.system.url}; speaker pid {bench.speaker.proc.pid}, panel "
                f"{bench.panel.port}, sink {bench.sink.fifo}",
                flush=True,
            )
            with busy_core(opts.busy, limit_s) as busy:
                for name in speaker_phases:
                    started = time.perf_counter()
                    if name == "latency":
                        result[name] = await detents.measure(bench, opts, Progress())
                    else:
                        result[name] = await spin.spin_panel(bench, opts, Progress())
                    result[name]["wall_s"] = round(time.perf_counter() - started, 1)
                    bench.check()
            result["busy"] = busy.figures()
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    return result
