"""A spin: 20 detents a second for 10 s, every detent counted and none reversed.

The spin goes up and down in legs of 40 detents (10 -> 90 -> 10 ... %: 5 legs in 10 s,
so it ends 40 detents up), so the volume never reaches its ends (where a lost detent
would hide) and every leg's turning point is known: a detent lost shows as a turning
point off by a step, a detent reversed as a turning point that should not be there.
Through the panel, the frames go to the speaker process and what counts is its
``GET /info`` (``controls.detents`` and ``controls.events``) and the volumes seen by the
hub's Connect WebSocket and told back to the panel (``VOL``).  Through GPIO, see
``gpio_spin``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from .common import STEP_PERCENT, Options, Progress
from .speaker import Bench

LEG_DETENTS = 40  # x 2 % = 80 %: from 10 % to 90 % and back
START_PERCENT = 10
SETTLE_S = 10.0  # after the spin, the last state must be shown within this


def legs_of(total: int) -> list[int]:
    """Signed detents per leg: +40, -40, ... (the last one shorter if need be)."""
    leg = LEG_DETENTS
    out = []
    sign = 1
    left = total
    while left > 0:
        n = min(leg, left)
        out.append(sign * n)
        left -= n
        sign = -sign
    return out


def turning_points(volumes: Sequence[int]) -> list[int]:
    """Where a sequence of volumes changes direction, and where it ends (pure)."""
    moves = [v for k, v in enumerate(volumes) if k == 0 or v != volumes[k - 1]]
    out = []
    for k in range(1, len(moves) - 1):
        if (moves[k] - moves[k - 1]) * (moves[k + 1] - moves[k]) < 0:
            out.append(moves[k])
    if moves:
        out.append(moves[-1])
    return out


def expected_turns(start: int, legs: Sequence[int], step: int) -> list[int]:
    out = []
    volume = start
    for n in legs:
        volume += n * step
        out.append(volume)
    return out


def judge(volumes: Sequence[int], start: int, legs: Sequence[int], step: int) -> dict[str, Any]:
    """What one observer saw of a spin: its turning points against those expected."""
    seen = turning_points([start, *volumes])
    want = expected_turns(start, legs, step)
    return {
        "states": len(volumes),
        "turning_points": seen,
        "expected": want,
        "ok": seen == want,
    }


async def spin_panel(bench: Bench, opts: Options, progress: Progress) -> dict[str, Any]:
    total = round(opts.spin_rate * opts.spin_seconds)
    legs = legs_of(total)
    await bench.set_volume(START_PERCENT)
    await asyncio.sleep(0.5)
    before = await bench.controls()
    hub_from, panel_from = len(bench.hub.log), len(bench.panel.volumes())
    interval_s = 1 / opts.spin_rate
    t0 = time.monotonic()
    late_s = 0.0
    k = 0
    for n in legs:
        payload = "ENC,+1" if n > 0 else "ENC,-1"
        for _ in range(abs(n)):
            due = t0 + k * interval_s
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            late_s = max(late_s, -wait)
            bench.panel.send(payload)
            k += 1
        progress.show(f"spin (panel): {k}/{total} detents")
    wall_s = time.monotonic() - t0
    final = expected_turns(START_PERCENT, legs, STEP_PERCENT)[-1]
    with contextlib.suppress(TimeoutError):  # judged below: the turning points say what
        await bench.hub.wait_volume(final, len(bench.hub.log) - 1, SETTLE_S)
    await asyncio.sleep(0.5)
    after = await bench.controls()
    bench.check()
    out = {
        "detents_sent": total,
        "signed_sum_sent": sum(legs),
        "legs": legs,
        "spin_s": round(wall_s, 2),
        "rate_per_s": round(total / wall_s, 2) if wall_s else None,
        "max_late_ms": round(late_s * 1000, 1),
        "events_counted": after["events"] - before["events"],
        "detents_counted": after["detents"] - before["detents"],
        "panel_device": after.get("devices", {}),
        "hub": judge(
            [s.volume_percent for s in bench.hub.log[hub_from:]],
            START_PERCENT,
            legs,
            STEP_PERCENT,
        ),
        "panel_vol": judge(bench.panel.volumes()[panel_from:], START_PERCENT, legs, STEP_PERCENT),
    }
    counted_all = out["events_counted"] == total and out["detents_counted"] == sum(legs)
    out["every_detent_counted"] = counted_all
    out["none_reversed"] = out["hub"]["ok"] and out["panel_vol"]["ok"]
    out["ok"] = out["every_detent_counted"] and out["none_reversed"]
    progress.finish(
        f"spin (panel): {total} detents in {wall_s:.1f} s; counted {out['events_counted']} "
        f"events, {out['detents_counted']} detents net; "
        f"{'OK' if out['ok'] else 'FAILED'}"
    )
    return out


async def spin_gpio(opts: Options, progress: Progress) -> dict[str, Any]:
    """Through GPIO: gpiozero's MockFactory driving quadrature edges, in this process."""
    from .gpio_spin import spin

    return await spin(opts, progress)
