"""Physical controls benchmarks (issue 17, "Measured"): the knob, through the front panel
and through GPIO.

Why this exists: the issue sets targets for the speaker's own controls, each shown
against a baseline measured in the same run (the benchmark policy):

1. a knob detent (an ``ENC`` frame written to the panel's pseudo-terminal) -> the first
   frame at the sink with the new gain: p99 <= 15 ms, with one core kept busy by
   another process; baseline: the same change sent on the speaker's local control
   WebSocket, and the raw pseudo-terminal latency;
2. the same detent -> the new state at a Connect WebSocket client of the hub: p99 <= 50 ms
   (same baseline);
3. a spin of 20 detents a second for 10 s: every detent counted, none reversed, (a)
   through GPIO (gpiozero's MockFactory driving quadrature edges with contact bounce
   into the real ``GpioControls``, ``LocalControls`` and ``Controller``, in this
   process) and (b) through the panel into the speaker process.

The speaker is a real process (native engine, paired with a real hub on loopback)
playing a constant tone into a FIFO read by a process of the bench's own.  The parts
live in the ``knob`` package beside this file; see ``bench/README.md``.

Run: ``make bench`` (full size, about 4 minutes), or e.g.
``.venv/bin/python bench/controls.py --detents 40 --only latency``.  It exits non-zero
only when something fails (a part does not start, a change never reaches the sink or
the hub, a spin loses or reverses a detent); a missed target is reported, not fatal.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from knob.common import PHASES, Options
from knob.report import machine, report
from knob.run import run
from latency.driver import drive


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        description="Knob and front-panel benchmarks against baselines measured in the same run."
    )
    p.add_argument("--detents", type=int, default=300, help="detents timed, per way (300)")
    p.add_argument(
        "--gap-ms", type=int, nargs=2, default=(150, 300), help="random pause between detents"
    )
    p.add_argument("--spin-rate", type=float, default=20.0, help="spin: detents per second (20)")
    p.add_argument("--spin-seconds", type=float, default=10.0, help="spin: seconds (10)")
    p.add_argument(
        "--track-seconds", type=float, default=60.0, help="the tone's length, on repeat (60)"
    )
    p.add_argument("--no-busy", action="store_true", help="do not keep a core busy")
    p.add_argument("--seed", type=int, default=17)
    p.add_argument(
        "--only",
        default=",".join(PHASES),
        help=f"comma-separated phases to run, of {','.join(PHASES)} (default: all)",
    )
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    a = p.parse_args(argv)
    only = [s.strip() for s in a.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(PHASES))
    if unknown or not only:
        p.error(f"--only takes some of {','.join(PHASES)}; got {a.only!r}")
    if a.detents < 1 or not 50 <= a.gap_ms[0] <= a.gap_ms[1] <= 5000:
        p.error("--detents must be at least 1, --gap-ms LOW HIGH within 50..5000")
    if not 1 <= a.spin_rate <= 200 or not 0.5 <= a.spin_seconds <= 120:
        p.error("--spin-rate must be 1..200 and --spin-seconds 0.5..120")
    if not 5 <= a.track_seconds <= 600:
        p.error("--track-seconds must be 5..600")
    return Options(
        detents=a.detents,
        gap_ms=(a.gap_ms[0], a.gap_ms[1]),
        spin_rate=a.spin_rate,
        spin_seconds=a.spin_seconds,
        track_seconds=a.track_seconds,
        busy=not a.no_busy,
        seed=a.seed,
        only=tuple(x for x in PHASES if x in only),
        json_path=a.json,
        keep=a.keep,
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    info = machine()
    root = Path(tempfile.mkdtemp(prefix="legato-controls-bench-"))

    def finish(res: dict[str, Any]) -> int:
        figures, ok = report(opts, res, info)
        if opts.json_path is not None:
            opts.json_path.parent.mkdir(parents=True, exist_ok=True)
            opts.json_path.write_text(json.dumps(figures, indent=2) + "\n")
            print(f"\nwrote {opts.json_path}")
        return 0 if ok else 1

    return drive("controls", root, lambda: run(opts, root), finish, keep=opts.keep)


if __name__ == "__main__":
    raise SystemExit(main())
