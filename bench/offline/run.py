"""One whole run: the material, the offline store, then each phase asked for, in order."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from audio import material

from . import cache, throughput, ttfa
from .common import Options, Progress


async def run(opts: Options, root: Path) -> dict[str, Any]:
    """Measure and return the figures; everything started is stopped on the way out."""
    t0 = time.perf_counter()
    library = await asyncio.to_thread(material.prepare_announced, opts.track_seconds, opts.jobs)
    offline = await asyncio.to_thread(cache.build, root / "speaker", library, Progress())
    result: dict[str, Any] = {
        "material": {
            "tracks": len(library.tracks),
            "seconds": round(library.seconds, 1),
            "cached": library.cached,
            "cache_dir": str(library.dir),
        },
        "store": {
            "tracks": len(offline.tracks),
            "segments": len(offline.segments),
            "quality": "very_high",
            "plain_bytes": offline.plain_bytes,
            "blob_bytes": offline.blob_bytes,
            "build_s": round(offline.build_s, 2),
            "same_filesystem_as_plain_files": offline.same_filesystem,
            "dir": str(offline.root),
        },
    }
    try:
        if "throughput" in opts.only:
            started = time.perf_counter()
            result["throughput"] = await asyncio.to_thread(
                throughput.measure, offline, opts, Progress()
            )
            result["throughput"]["wall_s"] = round(time.perf_counter() - started, 1)
        if "ttfa" in opts.only:
            started = time.perf_counter()
            result["ttfa"] = await ttfa.measure(offline, library, opts, root, Progress())
            result["ttfa"]["wall_s"] = round(time.perf_counter() - started, 1)
    finally:
        offline.close()
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    return result
