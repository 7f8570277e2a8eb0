"""The measured phases of a run, in order; each returns its figures for the report."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import BenchError, Options, Progress, device_order, poll_until
from .listener import DevicePoller, Listener
from .probe import RawProbe
from .speakers import WorkerHandle, check_workers
from .stats import CpuMeter, LatencyStats, proc_rss_mib
from .system import PROBE_USERNAME, Broker, Hub, log_tail, start_hub, stop_process

SETTLE_S = 15.0  # after the last CONNACK, how long the hub gets to show every speaker
RESTART_WAIT_S = 30.0


@dataclass(slots=True)
class Rig:
    """Everything a phase works on: the system under test, the speakers, the run's state."""

    opts: Options
    broker: Broker
    hub: Hub
    workers: list[WorkerHandle]
    stack: contextlib.AsyncExitStack  # what to stop at the end, whatever happens
    progress: Progress
    failures: list[str]

    def cpu_meter(self) -> CpuMeter:
        return CpuMeter(
            {
                "hub": [self.hub.pid],
                "mosquitto": [self.broker.pid],
                "speakers": [w.pid for w in self.workers],
            }
        )

    def connected(self) -> int:
        return sum(w.connected for w in self.workers)

    def broker_done_at(self) -> float | None:
        """When the last worker had all its speakers connected (perf_counter), if all have."""
        if all(w.connected_at for w in self.workers):
            return max(w.connected_at or 0 for w in self.workers)
        return None


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
            f"connecting speakers: {rig.connected()}/{opts.speakers} "
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
        f"connecting speakers: {rig.connected()}/{opts.speakers} "
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
        rig.failures.append(
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


async def baseline(rig: Rig, ids: list[str]) -> dict[str, Any]:
    """The raw MQTT round trip, no hub in the path (the benchmark policy's baseline)."""
    opts = rig.opts
    probe = RawProbe(rig.broker.port, PROBE_USERNAME, rig.broker.probe_secret)
    rig.stack.push_async_callback(probe.stop)
    await probe.start(opts.speakers)
    raw_ns: list[int] = []
    cpu = rig.cpu_meter()
    for k, device_id in enumerate(device_order(ids, opts.baseline_commands, opts.order, opts.seed)):
        raw_ns.append(await probe.command(device_id, opts.timeout_s))
        if probe.errors:
            raise BenchError(f"raw probe: {probe.errors[0]}")
        rig.progress.show(f"baseline (raw MQTT): {k + 1}/{opts.baseline_commands}")
    rig.progress.finish(f"baseline (raw MQTT): {len(raw_ns)} commands")
    figures = {"raw_cpu_s": cpu.stop()}
    await probe.stop()
    return {**figures, "raw": LatencyStats.of(raw_ns)}


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


async def one_at_a_time(rig: Rig, session: Listener, ids: list[str]) -> dict[str, Any]:
    """Commands through the hub, one at a time: the issue's target is about this."""
    opts = rig.opts
    state_ns: list[int] = []
    result_ns: list[int] = []
    cpu = rig.cpu_meter()
    for k, device_id in enumerate(device_order(ids, opts.commands, opts.order, opts.seed)):
        s, r = await session.command(device_id, opts.timeout_s)
        state_ns.append(s)
        result_ns.append(r)
        rig.progress.show(f"through the hub: {k + 1}/{opts.commands}")
    rig.progress.finish(f"through the hub: {len(state_ns)} commands")
    return {
        "hub_cpu_s": cpu.stop(),
        "hub": LatencyStats.of(state_ns),
        "hub_result": LatencyStats.of(result_ns),
    }


async def in_flight(rig: Rig, session: Listener, ids: list[str]) -> dict[str, Any]:
    """K clients' worth of commands in flight at once, each on a speaker no one else is using.

    Exactly ``opts.commands`` commands; a pick that is busy is skipped, at most K - 1 times
    in a row, since fewer than K speakers are ever busy.
    """
    opts = rig.opts
    candidates = device_order(ids, sys.maxsize, opts.order, opts.seed + 1)
    streams = min(opts.concurrency, len(ids))
    busy: set[str] = set()
    issued = 0
    state_ns: list[int] = []
    result_ns: list[int] = []
    progress = Progress()
    label = f"through the hub, {opts.concurrency} in flight"

    def next_free() -> str | None:
        nonlocal issued
        if issued >= opts.commands:
            return None
        for _ in range(streams + 1):
            device_id = next(candidates)
            if device_id not in busy:
                issued += 1
                return device_id
        raise AssertionError("every candidate busy")  # cannot happen: streams <= len(ids)

    async def one_stream() -> None:
        while (device_id := next_free()) is not None:
            busy.add(device_id)
            try:
                s, r = await session.command(device_id, opts.timeout_s)
            finally:
                busy.discard(device_id)
            state_ns.append(s)
            result_ns.append(r)
            progress.show(f"{label}: {len(state_ns)}")

    cpu = rig.cpu_meter()
    t0 = time.perf_counter()
    await asyncio.gather(*(one_stream() for _ in range(streams)))
    wall = time.perf_counter() - t0
    figures = {"hub_concurrent_cpu_s": cpu.stop()}
    progress.finish(f"{label}: {len(state_ns)}")
    return {
        **figures,
        "hub_concurrent": LatencyStats.of(state_ns),
        "hub_concurrent_result": LatencyStats.of(result_ns),
        "hub_concurrent_throughput_per_s": round(len(state_ns) / wall, 1),
    }


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


def hub_log_warnings(hub: Hub) -> dict[str, Any]:
    warnings = [
        line
        for line in log_tail(hub.log, 200_000).splitlines()
        if " WARNING " in line or " ERROR " in line
    ]
    return {"hub_log_warnings": len(warnings), "hub_log_sample": warnings[:5]}


async def restart_hub(rig: Rig, session: Listener, data: Path, log: Path) -> dict[str, Any]:
    """Restart the hub with every speaker connected: it must show them all online again,
    each with its current state (from their retained status and state)."""
    opts = rig.opts
    known = dict(session.states.revisions)  # every state the hub pushed before
    await session.close()
    stop_process(rig.hub.proc)
    t0 = time.perf_counter()
    hub = rig.hub = await start_hub(rig.stack, data, rig.broker.port, log)
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
        rig.failures.append(
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
