"""One whole run: the material, the hub, then each phase asked for, in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from . import cpu, material, rss, trace, ttfa
from .common import Options, Progress
from .rig import Rig, start_rig

Phase = Callable[[Rig, Options, Progress], Awaitable[dict[str, Any]]]
PHASES: dict[str, Phase] = {
    "ttfa": ttfa.measure,
    "cpu": cpu.measure,
    "rss": rss.measure,
    "trace": trace.measure,
}


async def run(opts: Options, root: Path) -> dict[str, Any]:
    """Measure and return the figures; everything started is stopped on the way out."""
    t0 = time.perf_counter()
    library = await asyncio.to_thread(material.prepare_announced, opts.track_seconds, opts.jobs)
    result: dict[str, Any] = {
        "material": {
            "tracks": len(library.tracks),
            "seconds": round(library.seconds, 1),
            "cached": library.cached,
            "prepare_s": round(library.prepare_s, 1),
            "cache_dir": str(library.dir),
        }
    }
    async with start_rig(root, library) as rig:
        print(f"hub pid {rig.hub_pid} on {rig.system.url} (embedded broker)", flush=True)
        for name in opts.only:
            started = time.perf_counter()
            result[name] = await PHASES[name](rig, opts, Progress())
            result[name]["wall_s"] = round(time.perf_counter() - started, 1)
            rig.check_hub()
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    return result
