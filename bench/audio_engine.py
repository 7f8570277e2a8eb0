"""Audio benchmarks (issue 3): time to first audio, CPU, memory and a bandwidth trace.

Why this exists: the issue sets targets for the native audio engine, each to be shown
against a baseline measured in the same run (the benchmark policy):

1. time to first audio, from a play command sent to the hub to the first frame written
   to the sink, cold, on loopback, the speaker over TLS as paired: p99 <= 150 ms and
   <= 0.5 x mpv's p99 (mpv playing the same track's first segment from the hub); the
   same speaker in clear, in the same run, shows what TLS costs;
2. CPU to play 10 minutes of ``very_high`` as fast as it goes: <= 1.5 x ``oggdec``
   decoding the same segments (over HTTPS from the hub, and from the store's files);
3. the speaker process's peak RSS while playing: <= 60 MB (baseline: the same speaker
   with the clock engine);
4. a bandwidth trace, 2 Mbit/s -> 48 kbit/s for 60 s -> 2 Mbit/s, through a throttling
   proxy with quality ``auto``: 0 underruns (baseline: quality pinned to ``normal``).

The hub is a real process with its embedded broker (the test suite's ``System``
harness) on a temporary copy of the demo library, ingested once by the hub's own
pipeline and cached under ``bench/out/cache/audio``.  The parts live in the ``audio``
package beside this file; see ``bench/README.md``.

Run: ``make bench`` (everything, full size: about 5 minutes), or e.g.
``.venv/bin/python bench/audio_engine.py --only ttfa,cpu --plays 100``.  It exits
non-zero only when something fails (a part does not start, a play never sounds, audio
goes missing); a missed target is reported, not fatal.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from audio.common import PHASES, Options
from audio.report import machine, report
from audio.run import run
from latency.driver import drive


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        description="Audio engine benchmarks against baselines measured in the same run."
    )
    p.add_argument("--plays", type=int, default=50, help="time to first audio: plays (50)")
    p.add_argument(
        "--minutes", type=float, default=10.0, help="CPU: minutes of very_high audio (10)"
    )
    p.add_argument(
        "--trace-scale",
        type=float,
        default=1.0,
        help="bandwidth trace: scale of its phases (1.0 = 30 s + 60 s + 60 s)",
    )
    p.add_argument(
        "--rss-seconds", type=float, default=30.0, help="memory: seconds of playback (30)"
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
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    a = p.parse_args(argv)
    only = [s.strip() for s in a.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(PHASES))
    if unknown or not only:
        p.error(f"--only takes some of {','.join(PHASES)}; got {a.only!r}")
    if a.plays < 1:
        p.error("--plays must be at least 1")
    if a.minutes <= 0 or a.rss_seconds <= 0 or not 0.05 <= a.trace_scale <= 10:
        p.error("--minutes and --rss-seconds must be positive, --trace-scale in 0.05..10")
    if a.track_seconds is not None and a.track_seconds < 10:
        p.error("--track-seconds must be at least 10")
    return Options(
        plays=a.plays,
        minutes=a.minutes,
        trace_scale=a.trace_scale,
        rss_seconds=a.rss_seconds,
        track_seconds=a.track_seconds,
        only=tuple(x for x in PHASES if x in only),
        jobs=a.jobs,
        json_path=a.json,
        keep=a.keep,
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    info = machine()
    root = Path(tempfile.mkdtemp(prefix="legato-audio-bench-"))

    def finish(res: dict[str, Any]) -> int:
        figures = report(opts, res, info)
        if opts.json_path is not None:
            opts.json_path.write_text(json.dumps(figures, indent=2) + "\n")
            print(f"\nwrote {opts.json_path}")
        return 0

    return drive("audio_engine", root, lambda: run(opts, root), finish, keep=opts.keep)


if __name__ == "__main__":
    raise SystemExit(main())
