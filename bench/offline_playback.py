"""Offline cache benchmarks (issue 5, section 5): decrypt-and-read throughput, and time
to first audio from the cache with the hub stopped.

Why this exists: the issue sets two targets for the encrypted offline cache, each shown
against a baseline measured in the same run (the benchmark policy):

1. reading a cached segment (``OfflineStore.get_segment``: index, licence, AES-256-GCM)
   costs at most 10 % more than reading the same plain ``.ogg``, and runs at >= 500 x
   real time at ``very_high``: measured hot, cold (pages evicted) and as the engine reads
   (bytes + ``check_segment``), the target judged on the last;
2. time to first audio from the cache with the hub stopped, p99 <= 30 ms: a
   ``NativeEngine`` over ``CachedMedia`` whose hub address is a closed port (baselines:
   the hub with no cache, and plain files).

The material is the audio bench's: the hub's demo library ingested by the hub's own
pipeline and cached under ``bench/out/cache/audio``, held offline here in a fresh
``OfflineStore`` under a licence the bench signs with its own Ed25519 key.  The parts
live in the ``offline`` package beside this file; see ``bench/README.md``.

Run: ``make bench`` (after the other benches), or e.g.
``.venv/bin/python bench/offline_playback.py --rounds 31 --plays 100``.  It exits non-zero
only when something fails (a part does not start, a play never sounds, the cache asks
the hub); a missed target is reported, not fatal.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from latency.driver import drive
from offline.common import DEFAULT_JSON, PHASES, REPO, Options
from offline.report import machine, report
from offline.run import run


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        description="Offline cache benchmarks against baselines measured in the same run."
    )
    p.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="throughput: minutes of very_high audio read per pass (default: the whole "
        "library once, 10 min; more repeats the library)",
    )
    p.add_argument(
        "--rounds", type=int, default=21, help="throughput: passes of each kind; median (21)"
    )
    p.add_argument(
        "--plays", type=int, default=50, help="time to first audio: plays per series (50)"
    )
    p.add_argument(
        "--no-hub",
        action="store_true",
        help="time to first audio: skip the baseline through the hub (no hub started)",
    )
    p.add_argument(
        "--track-seconds",
        type=float,
        default=None,
        help="material: render every demo track this long (default: as composed, 10 min "
        "in all); shorter material ingests faster (smoke runs)",
    )
    p.add_argument(
        "--only",
        default=",".join(PHASES),
        help=f"comma-separated phases to run, of {','.join(PHASES)} (default: all)",
    )
    p.add_argument("--jobs", type=int, default=None, help="ingest workers (default: CPUs)")
    p.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        help=f"write the figures to this JSON file ({DEFAULT_JSON.relative_to(REPO)})",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    a = p.parse_args(argv)
    only = [s.strip() for s in a.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(PHASES))
    if unknown or not only:
        p.error(f"--only takes some of {','.join(PHASES)}; got {a.only!r}")
    if a.plays < 1 or a.rounds < 1:
        p.error("--plays and --rounds must be at least 1")
    if a.minutes is not None and a.minutes <= 0:
        p.error("--minutes must be positive")
    if a.track_seconds is not None and a.track_seconds < 10:
        p.error("--track-seconds must be at least 10")
    return Options(
        minutes=a.minutes,
        rounds=a.rounds,
        plays=a.plays,
        track_seconds=a.track_seconds,
        only=tuple(x for x in PHASES if x in only),
        hub_baseline=not a.no_hub,
        jobs=a.jobs,
        json_path=a.json,
        keep=a.keep,
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    info = machine()
    root = Path(tempfile.mkdtemp(prefix="legato-offline-bench-"))

    def finish(res: dict[str, Any]) -> int:
        figures = report(opts, res, info)
        opts.json_path.parent.mkdir(parents=True, exist_ok=True)
        opts.json_path.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"\nwrote {opts.json_path}")
        return 0

    return drive("offline_cache", root, lambda: run(opts, root), finish, keep=opts.keep)


if __name__ == "__main__":
    raise SystemExit(main())
