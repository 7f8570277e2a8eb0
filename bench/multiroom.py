"""Multiroom sync benchmark (issue 19, "Sync"): members of a group against ground truth.

Why this exists: every multiroom system claims sync; few measure it against what was
heard.  Here each member speaker plays into a virtual DAC (``tests/virtual_dac.py``: a
named pipe read at the member's own crystal rate, -200..+200 ppm) that records what it
played and when; every recorded window is found in the music (``sync_analysis``) and the
members are compared at the same instants.  Around them: a hub on loopback, the members'
sync datagrams through a relay adding delay and jitter, one core kept busy.

Phases (each printed beside the others):

(a) baseline: two speakers, not grouped, told to play at once (two requests) -- skew and
    drift with no sync;
(b) group: the members grouped via ``POST /v1/groups`` and played via the group's id --
    skew p50/p99/max, drift trend over the run, corrections seen in the audio, underruns;
(c) late joiner: one more speaker added to the playing group -- time until within 1 ms.

Targets: skew p99 <= 1 ms (aim 0.1), no drift trend, a joiner within 1 ms in <= 2 s, no
audible correction (no jump of more than one frame at once, rate adjustment <= 0.5 %).

Run: ``make bench`` (10 minutes grouped), or e.g.
``.venv/bin/python bench/multiroom.py --members 2 --minutes 1``.  It exits non-zero only
when something fails (a part does not start, the hub refuses a request); a missed target
is reported, not fatal.  See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

from latency.driver import drive
from rooms.common import PHASES, Options, default_ppm
from rooms.report import machine, report
from rooms.run import rejudge, run


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(description="Multiroom sync against ground truth, with a baseline.")
    p.add_argument("--members", type=int, default=3, help="members grouped from the start, 2-4 (3)")
    p.add_argument("--minutes", type=float, default=10.0, help="the grouped phase (10)")
    p.add_argument("--baseline-s", type=float, default=60.0, help="the baseline phase (60)")
    p.add_argument("--join-s", type=float, default=15.0, help="the late joiner watched (15)")
    p.add_argument(
        "--ppm",
        type=float,
        nargs="+",
        help="each DAC's crystal, members then the joiner (default: spread over -200..+200)",
    )
    p.add_argument(
        "--jitter-ms",
        type=float,
        default=2.0,
        help="mean one-way delay of sync datagrams, jitter +- half (2)",
    )
    p.add_argument("--no-busy", action="store_true", help="do not keep a core busy")
    p.add_argument(
        "--track-seconds", type=float, default=60.0, help="each of the 3 noise tracks (60)"
    )
    p.add_argument("--only", default=",".join(PHASES), help=f"phases, of {','.join(PHASES)}")
    p.add_argument("--seed", type=int, default=19)
    p.add_argument(
        "--rejudge",
        type=Path,
        metavar="JSON",
        help="judge a kept run again (its --json; the run's directory is in it), run nothing",
    )
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (logs, recordings)"
    )
    a = p.parse_args(argv)
    only = tuple(x for x in PHASES if x in {s.strip() for s in a.only.split(",")})
    if not only or set(a.only.split(",")) - set(PHASES):
        p.error(f"--only takes some of {','.join(PHASES)}")
    if not 2 <= a.members <= 4:
        p.error("--members must be 2..4")
    if not 0.1 <= a.minutes <= 120 or not 10 <= a.baseline_s <= 3600 or not 3 <= a.join_s <= 600:
        p.error("--minutes 0.1..120, --baseline-s 10..3600, --join-s 3..600")
    if not 0 <= a.jitter_ms <= 100 or not 20 <= a.track_seconds <= 600:
        p.error("--jitter-ms 0..100, --track-seconds 20..600")
    speakers = a.members + (1 if "join" in only else 0)
    ppm = tuple(a.ppm) if a.ppm else default_ppm(speakers)
    if len(ppm) < speakers or any(abs(x) > 2000 for x in ppm):
        p.error(f"--ppm needs {speakers} values within +-2000")
    return Options(
        members=a.members,
        minutes=a.minutes,
        baseline_s=a.baseline_s,
        join_s=a.join_s,
        ppm=ppm,
        jitter_ms=a.jitter_ms,
        busy=not a.no_busy,
        track_seconds=a.track_seconds,
        only=only,
        seed=a.seed,
        json_path=a.json,
        keep=a.keep,
        rejudge=a.rejudge,
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    info = machine()

    def finish(res: dict[str, Any]) -> int:
        figures, ok = report(opts, res, info)
        if opts.json_path is not None:
            opts.json_path.parent.mkdir(parents=True, exist_ok=True)
            opts.json_path.write_text(json.dumps(figures, indent=2, default=str) + "\n")
            print(f"\nwrote {opts.json_path}")
        return 0 if ok else 1

    if opts.rejudge is not None:
        previous = json.loads(opts.rejudge.read_text())
        root = Path(previous["root"])
        prior = previous.get("options", {})
        opts = dataclasses.replace(
            opts,
            members=prior.get("members", opts.members),
            ppm=tuple(prior.get("ppm", opts.ppm)),
            track_seconds=prior.get("track_seconds", opts.track_seconds),
            only=tuple(prior.get("only", opts.only)),
            jitter_ms=prior.get("jitter_ms", opts.jitter_ms),
            keep=True,
        )
        return drive("multiroom", root, lambda: rejudge(opts, root, previous), finish, keep=True)
    root = Path(tempfile.mkdtemp(prefix="legato-multiroom-bench-"))

    return drive("multiroom", root, lambda: run(opts, root), finish, keep=opts.keep)


if __name__ == "__main__":
    raise SystemExit(main())
