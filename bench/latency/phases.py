"""The phases of a run on one transport's system: onboarding, idle, the checks, a restart.

The phases that time commands, with the transports taking turns, are in ``commands``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from .common import BenchError, poll_until
from .listener import DevicePoller, Listener
from .rig import Rig
from .speakers import check_workers
from .stats import proc_rss_mib
from .system import Hub, log_tail, start_hub, stop_process

SETTLE_S = 15.0  # after the last CONNACK, how long the hub gets to show every speaker
RESTART_WAIT_S = 30.0


async def onboard(rig: Rig, ids: list[str]) -> tuple[dict[str, Any], list[str], float]:
    """Connect every speaker, watched by a listener connected from the start (an open app).

    Returns the figures, the ids the hub showed online (the later phases use only those; a
    missing one is a failure), and the hub's RSS with all of them online.
    """
    opts, hub = rig.opts, rig.hub
    watch: Listener | DevicePoller
    if opts.watch == "ws":
        watch = Listener(hub.ws_url, compression=opts.compression)
    else:
        watch = DevicePoller(hub.base, hub.token)
    await watch.open()
    rig.stack.push_async_callback(watch.close)
    watch.expect_online = opts.speakers
    cpu = rig.cpu_meter()
    t0 = time.perf_counter()
    for w in rig.workers:
        w.send("connect")
    deadline = time.monotonic() + opts.online_timeout_s
    broker_done: float | None = None
    while not watch.all_online.is_set():
        check_workers(rig.workers)
        hub.check_alive()
        if watch.failure:
            raise BenchError(watch.failure)
        if broker_done is None and (broker_done := rig.broker_done_at()) is not None:
            deadline = min(deadline, time.monotonic() + SETTLE_S)
        if time.monotonic() > deadline:
            break  # measured below over the speakers the hub does show, then failed
        rig.progress.show(
            f"{rig.label}: connecting speakers: {rig.connected()}/{opts.speakers} "
            f"connected to the broker, {watch.online} online at the hub "
            f"({time.perf_counter() - t0:.1f} s)"
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watch.all_online.wait(), 0.05)

    def all_connected() -> bool:  # a worker reports just after its last CONNACK
        check_workers(rig.workers)
        return rig.broker_done_at() is not None

    if not await poll_until(all_connected, deadline + 5 - time.monotonic(), interval_s=0.01):
        raise BenchError(f"only {rig.connected()}/{opts.speakers} speakers connected to the broker")
    broker_done = rig.broker_done_at() or 0.0
    rig.progress.finish(
        f"{rig.label}: connecting speakers: {rig.connected()}/{opts.speakers} "
        f"connected to the broker, {watch.online} online at the hub"
    )
    online_ids = watch.online_ids()
    missing = sorted(set(ids) - set(online_ids))
    figures = {
        "all_connected_to_broker_s": round(broker_done - t0, 3),
        "all_online_at_hub_s": round(watch.all_online_at - t0, 3) if watch.all_online_at else None,
        "online_at_hub": len(online_ids),
        "missing_sample": missing[:5],
        "watched_by": opts.watch,
        "devices_messages_pushed": watch.devices_messages,
        "cpu_s": cpu.stop(),
    }
    if missing:
        rig.fail(
            f"only {len(online_ids)}/{opts.speakers} speakers ever showed online at the hub "
            f"({SETTLE_S:g} s after all were connected to the broker), e.g. {missing[0]}; "
            f"latency was measured over those {len(online_ids)}"
        )
        online = set(online_ids)
        ids = [i for i in ids if i in online]
        if not ids:
            raise BenchError("no speaker showed online at the hub")
    rss_mib = proc_rss_mib(hub.pid)
    await watch.close()
    return figures, ids, rss_mib


async def idle(rig: Rig) -> dict[str, Any]:
    """What everything costs at rest with every speaker connected, over 2 s."""
    cpu = rig.cpu_meter()
    await asyncio.sleep(2.0)
    return {"idle_cpu_s_over_2s": cpu.stop()}


async def open_session(rig: Rig, ids: list[str]) -> Listener:
    """A new Connect session, once the hub has sent it every speaker's state."""
    session = Listener(rig.hub.ws_url, compression=rig.opts.compression)
    await session.open()
    rig.stack.push_async_callback(session.close)
    revisions = session.states.revisions

    def has_all() -> bool:
        return all(i in revisions for i in ids)

    await poll_until(lambda: bool(session.failure) or has_all(), 60)
    if session.failure or not has_all():
        raise BenchError(session.failure or f"the hub sent {len(revisions)}/{len(ids)} states")
    return session


async def speakers_count(rig: Rig) -> dict[str, Any]:
    """The speakers' own count: every command reached a speaker once, none dropped."""
    opts = rig.opts
    stats = [await w.stats() for w in rig.workers]
    handled = sum(s["commands"] for s in stats)
    drops = sum(s["unexpected_disconnects"] for s in stats)
    errors = [e for s in stats for e in s["errors"]]
    expected = opts.baseline_commands + opts.commands * (2 if opts.concurrency > 1 else 1)
    if errors or drops or handled != expected:
        raise BenchError(
            f"speakers handled {handled}/{expected} commands, {drops} dropped "
            f"connection(s), errors: {errors}"
        )
    return {"speaker_commands_handled": handled}


#: What the hub warns about because the bench asked for it: a broker in clear (plain).
EXPECTED_WARNINGS = ("not encrypted: the hub talks to its broker",)


def hub_log_warnings(hub: Hub) -> dict[str, Any]:
    lines = [
        line
        for line in log_tail(hub.log, 200_000).splitlines()
        if " WARNING " in line or " ERROR " in line
    ]
    warnings = [x for x in lines if not any(e in x for e in EXPECTED_WARNINGS)]
    return {
        "hub_log_warnings": len(warnings),
        "hub_log_sample": warnings[:5],
        "hub_log_expected_warnings": len(lines) - len(warnings),
    }


async def restart_hub(rig: Rig, session: Listener, data: Path, log: Path) -> dict[str, Any]:
    """Restart the hub with every speaker connected: it must show them all online again,
    each with its current state (from their retained status and state)."""
    opts = rig.opts
    known = dict(session.states.revisions)  # every state the hub pushed before
    await session.close()
    stop_process(rig.hub.proc)
    t0 = time.perf_counter()
    hub = rig.hub = await start_hub(rig.stack, data, rig.broker.url, log)
    healthy_s = time.perf_counter() - t0
    poller = DevicePoller(hub.base, hub.token)
    poller.expect_online = opts.speakers
    await poller.open()
    rig.stack.push_async_callback(poller.close)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(poller.all_online.wait(), RESTART_WAIT_S)
    await poller.close()
    check = Listener(hub.ws_url, compression=opts.compression)
    await check.open()
    rig.stack.push_async_callback(check.close)
    revisions = check.states.revisions
    # The hub shows a speaker online (retained status) a moment before its retained state
    # arrives, and pushes the state then: wait for the states, not just the first snapshot.
    await poll_until(lambda: all(revisions.get(d) == r for d, r in known.items()), 15)
    await check.close()
    stale = sorted(d for d, r in known.items() if revisions.get(d) != r)
    if poller.all_online_at is None or stale:
        rig.fail(
            f"after a restart with every speaker connected, the hub showed "
            f"{poller.online}/{opts.speakers} online and a stale state for {len(stale)}"
        )
    return {
        "stale_states": len(stale),
        "stale_sample": [
            f"{d}: hub has revision {revisions.get(d)}, speaker {known[d]}" for d in stale[:3]
        ],
        "healthy_s": round(healthy_s, 3),
        "online_after_s": round(poller.all_online_at - t0, 3) if poller.all_online_at else None,
        "online": poller.online,
        "waited_s": RESTART_WAIT_S,
    }
