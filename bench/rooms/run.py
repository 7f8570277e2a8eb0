"""A whole run, in order: the material, the system, the phases, then the judging."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from .common import Options, say
from .judge import judge_baseline, judge_group, judge_join, locate_all
from .material import prepare, reference
from .phases import baseline, group, join
from .rig import start_bench


def max_run_s(opts: Options) -> float:
    return 180 + opts.baseline_s + opts.minutes * 60 + opts.join_s


async def run(opts: Options, root: Path) -> dict[str, Any]:
    library = await asyncio.to_thread(prepare, opts.track_seconds, say)
    ref = await asyncio.to_thread(reference, library)
    say(f"material: {len(library.tracks)} noise tracks, {len(ref) / 44100:.0f} s")
    events: dict[str, Any] = {}
    res: dict[str, Any] = {}
    async with start_bench(opts, root, library, max_run_s(opts)) as bench:
        res["sync_config"] = bench.sync_config
        say(f"up: hub and {len(bench.members)} speakers online")
        if "baseline" in opts.only:
            events["baseline"] = await baseline(bench, opts)
        if "group" in opts.only or "join" in opts.only:
            events["group"] = await group(bench, opts)
            if "join" in opts.only:
                events["join"] = await join(bench, opts, events["group"])
        busy = bench.busy
    res["busy"] = busy.figures()  # its share of a core, known once it stopped
    res["root"] = str(root)
    return res | await judge_all(root, events, ref)


async def judge_all(root: Path, events: dict[str, Any], ref: Any) -> dict[str, Any]:
    """Every phase judged from the recordings in ``root/dac`` (also a kept run's, again)."""
    say("judging: finding every window in the album")
    res: dict[str, Any] = {}
    names = {n for ev in events.values() for n in ev["members"]}
    if "join" in events:
        names.add(events["join"]["joiner"])
    found = await asyncio.to_thread(locate_all, root / "dac", sorted(names), ref)
    if "baseline" in events:
        res["baseline"] = judge_baseline(found, events["baseline"])
    if "group" in events:
        t_to = events["join"]["t_cmd"] if "join" in events else events["group"]["t_end"]
        res["group"] = judge_group(found, events["group"], t_to)
    if "join" in events:
        res["join"] = judge_join(found, events["join"])
    stats = root / "dac" / "dac-stats.json"
    res["dac_timing"] = json.loads(stats.read_text()) if stats.exists() else {}
    res["events"] = events
    return res


async def rejudge(opts: Options, root: Path, previous: dict[str, Any]) -> dict[str, Any]:
    """A kept run (``--keep``, its ``--json``) judged again, e.g. after a change to the judge."""
    library = await asyncio.to_thread(prepare, opts.track_seconds, say)
    ref = await asyncio.to_thread(reference, library)
    keep = ("busy", "sync_config", "root")
    return {k: previous[k] for k in keep if k in previous} | await judge_all(
        root, previous["events"], ref
    )
