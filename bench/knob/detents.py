"""Knob detent -> first frame at the sink with the new gain, and -> the new state at the hub.

Each measurement moves the volume one step between 50 and 52 %, alone: the bench waits
until the hub shows the new volume, then a random 150-300 ms, before the next.  Two
ways in take turns in a shuffled order, so that load from elsewhere weighs on both
alike:

- ``panel``: an ``ENC,+1`` / ``ENC,-1`` frame written to the panel's pseudo-terminal
  (what is measured against the targets);
- ``local``: the same volume sent as a command on the speaker's local control WebSocket
  (the baseline: the speaker's command path without the panel's link and reader).

Both are timed from just before the write to (a) the first window of the tone at the
sink whose level has left the old one for the new (``levels.find_change``), read by the
FIFO's own process, and (b) the hub's Connect WebSocket pushing a state with the new
volume.  The raw pseudo-terminal latency (``panel.raw_latency``) is the floor.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

from .common import (
    HUB_TARGET_P99_MS,
    MIDDLE_PERCENT,
    SINK_TARGET_P99_MS,
    STEP_PERCENT,
    BenchError,
    Options,
    Progress,
    stats_ms,
)
from .levels import find_change
from .panel import raw_latency
from .speaker import Bench

WAYS = ("panel", "local")
HUB_TIMEOUT_S = 5.0
WARMUP = 4  # per way, not counted: first uses warm caches and connections


@dataclass(frozen=True, slots=True)
class Sent:
    way: str
    old_percent: int
    new_percent: int
    sent_ns: int
    hub_ns: int


async def _one(bench: Bench, way: str, old: int, new: int) -> Sent:
    after = len(bench.hub.log)
    if way == "panel":
        sent_ns = bench.panel.send("ENC,+1" if new > old else "ENC,-1")
    else:
        sent_ns = await bench.local.volume(new)
    try:
        seen = await bench.hub.wait_volume(new, after, HUB_TIMEOUT_S)
    except TimeoutError:
        raise BenchError(
            f"{way}: the hub never showed volume {new} within {HUB_TIMEOUT_S:g} s "
            f"(speaker log: {bench.speaker.log})"
        ) from None
    return Sent(way, old, new, sent_ns, seen.at_ns)


async def measure(bench: Bench, opts: Options, progress: Progress) -> dict[str, Any]:
    rng = random.Random(opts.seed)
    order = [w for w in WAYS for _ in range(opts.detents + WARMUP)]
    rng.shuffle(order)
    sent: list[Sent] = []
    volume = MIDDLE_PERCENT
    for k, way in enumerate(order):
        bench.check()
        await asyncio.sleep(rng.uniform(*opts.gap_ms) / 1000)
        new = volume + STEP_PERCENT if volume == MIDDLE_PERCENT else MIDDLE_PERCENT
        sent.append(await _one(bench, way, volume, new))
        volume = new
        progress.show(f"detents: {k + 1}/{len(order)}")
    await asyncio.sleep(0.5)  # the last change's windows, read
    bench.sink.poll()
    return _figures(bench, sent, opts) | {"raw_pty": await _raw(opts)}


def _figures(bench: Bench, sent: list[Sent], opts: Options) -> dict[str, Any]:
    at, levels = bench.sink.at_ns, bench.sink.level_db
    sink: dict[str, list[int]] = {w: [] for w in WAYS}
    hub: dict[str, list[int]] = {w: [] for w in WAYS}
    missed: dict[str, int] = dict.fromkeys(WAYS, 0)
    steps_db: list[tuple[float, float]] = []  # (measured, expected) step
    warm: dict[str, int] = dict.fromkeys(WAYS, 0)
    for k, s in enumerate(sent):
        warm[s.way] += 1
        until = sent[k + 1].sent_ns if k + 1 < len(sent) else at[-1] + 1
        found = find_change(at, levels, s.sent_ns, until, s.old_percent, s.new_percent)
        if warm[s.way] <= WARMUP:
            continue
        hub[s.way].append(s.hub_ns - s.sent_ns)
        if found is None:
            missed[s.way] += 1
            continue
        sink[s.way].append(found.at_ns - s.sent_ns)
        steps_db.append((found.new_db - found.old_db, found.expected_db - found.old_db))
    out: dict[str, Any] = {"detents": opts.detents, "gap_ms": list(opts.gap_ms)}
    for way in WAYS:
        out[way] = {
            "sink_ms": stats_ms(sink[way]),
            "hub_ms": stats_ms(hub[way]),
            "sink_not_found": missed[way],
        }
    if steps_db:
        errors = [abs(m - e) for m, e in steps_db]
        out["level_step_error_db"] = {"max": round(max(errors), 3), "n": len(errors)}
    p_sink, p_hub = out["panel"]["sink_ms"]["p99"], out["panel"]["hub_ms"]["p99"]
    out["targets"] = {
        "sink_p99_ms": {"target": SINK_TARGET_P99_MS, "got": p_sink},
        "hub_p99_ms": {"target": HUB_TARGET_P99_MS, "got": p_hub},
    }
    if any(missed.values()):
        raise BenchError(f"volume changes never found at the sink: {missed}; figures: {out}")
    return out


async def _raw(opts: Options) -> dict[str, Any]:
    samples = await asyncio.to_thread(raw_latency, opts.detents, 0.02)
    return {"write_to_read_ms": stats_ms(samples)}
