"""The phases, live: what is asked of the hub and when (host monotonic ns, the DACs' clock).

(a) **baseline**: the first two members, not grouped, each told to play the album by its
own ``PUT /v1/me/player/play``, both requests sent at once (what a listener with two
apps, or a script, does without sync); then paused.
(b) **group**: the members grouped (``POST /v1/groups``) and the album played to the
group's id, on repeat, for ``--minutes``.
(c) **late joiner**: one more speaker, idle until now, added to the playing group
(``PUT /v1/groups/{id}``), watched for ``--join-s``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .common import BenchError, Options, now_ns, say
from .rig import Bench

PROGRESS_S = 30.0
DIAGNOSTICS_S = 5.0
HEARD_AFTER_S = 0.4  # a group's play is heard this long after the command (its lead)


def album_uri(bench: Bench) -> str:
    return f"legato:album:{bench.rig.library.tracks[0].album_id}"


async def _watch(bench: Bench, seconds: float, label: str) -> list[dict[str, Any]]:
    """Let it play, checking every part is alive, with a line now and then; the members'
    own sync diagnostics every few seconds."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    end = start + seconds
    last = 0.0
    snaps: list[dict[str, Any]] = []
    while (left := end - loop.time()) > 0:
        bench.check()
        await asyncio.sleep(min(1.0, left))
        done = loop.time() - start
        if len(snaps) <= done / DIAGNOSTICS_S:
            snaps.append({"t_ns": now_ns(), "sync": await bench.sync_diagnostics()})
        if done - last >= PROGRESS_S:
            say(f"  {label}: {done:.0f} / {seconds:.0f} s")
            last = done
    return snaps


async def baseline(bench: Bench, opts: Options) -> dict[str, Any]:
    a, b = bench.members[0].id, bench.members[1].id
    say(f"baseline: {a} and {b} told to play at once, not grouped, {opts.baseline_s:g} s")
    body = {"context_uri": album_uri(bench)}
    t_cmd = now_ns()
    await asyncio.gather(
        bench.command("PUT", "play", a, body), bench.command("PUT", "play", b, body)
    )
    t_done = now_ns()
    snaps = await _watch(bench, opts.baseline_s, "baseline")
    t_end = now_ns()
    await asyncio.gather(bench.command("PUT", "pause", a), bench.command("PUT", "pause", b))
    await asyncio.sleep(1.0)
    ev = {"members": [a, b], "t_cmd": t_cmd, "t_acked": t_done, "t_end": t_end}
    return ev | {"diagnostics": snaps}


async def group(bench: Bench, opts: Options) -> dict[str, Any]:
    ids = [m.id for m in bench.members[: opts.members]]
    say(f"group: {', '.join(ids)} grouped, the album played to the group, {opts.minutes:g} min")
    r = await bench.rig.http.post("/v1/groups", json={"name": "Bench group", "device_ids": ids})
    if r.status_code != 201:
        raise BenchError(f"POST /v1/groups: {r.status_code} {r.text[:300]}")
    gid = str(r.json()["id"])
    await asyncio.sleep(1.0)  # the members take their JoinGroup (acked at the hub)
    t_cmd = now_ns()
    await bench.command("PUT", "play", gid, {"context_uri": album_uri(bench)})
    await bench.rig.http.put("/v1/me/player/repeat", params={"device_id": gid, "state": "context"})
    snaps = await _watch(bench, opts.minutes * 60, "group")
    ev = {"group_id": gid, "members": ids, "t_cmd": t_cmd, "t_end": now_ns()}
    return ev | {"diagnostics": snaps}


async def join(bench: Bench, opts: Options, grouped: dict[str, Any]) -> dict[str, Any]:
    joiner = bench.members[-1].id
    gid = grouped["group_id"]
    ids = [*grouped["members"], joiner]
    # not at a track's end: a join there is the gapless join's own case, not the joiner's
    into = ((now_ns() - grouped["t_cmd"]) / 1e9 - HEARD_AFTER_S) % opts.track_seconds
    if into > opts.track_seconds - 3 or into < 1:
        await asyncio.sleep((2 - into) % opts.track_seconds)
    say(f"late joiner: {joiner} added to the playing group, watched {opts.join_s:g} s")
    t_cmd = now_ns()
    r = await bench.rig.http.put(f"/v1/groups/{gid}", json={"device_ids": ids})
    if r.status_code not in (200, 204):
        raise BenchError(f"PUT /v1/groups/{gid}: {r.status_code} {r.text[:300]}")
    snaps = await _watch(bench, opts.join_s, "late joiner")
    ev = {"joiner": joiner, "members": grouped["members"], "t_cmd": t_cmd, "t_end": now_ns()}
    return ev | {"diagnostics": snaps}
