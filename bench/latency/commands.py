"""The phases that time commands, the transports taking turns.

Each transport has its own system (Mosquitto, hub, speakers) with the same speaker ids,
and gets the same commands in the same order.  A phase's commands are cut into
``ROUNDS`` shares; in each round every transport runs its share in turn, the order
reversed every other round (plain, TLS, TLS, plain, ...), so that other work on the
machine, which comes and goes, weighs on both alike.  CPU and wall time are summed over
a transport's own shares.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .common import BenchError, device_order
from .listener import Listener
from .probe import RawProbe
from .rig import Rig, labelled
from .stats import LatencyStats
from .system import PROBE_USERNAME

ROUNDS = 10

#: Runs the next ``n`` commands of a phase on one transport, adding them to its tally.
Batch = Callable[[int], Awaitable[None]]


@dataclass(slots=True)
class Tally:
    """One transport's samples in a phase, and the CPU and wall time of its shares."""

    state_ns: list[int] = field(default_factory=list)
    result_ns: list[int] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)  # by process, and "wall"

    def add_cpu(self, part: dict[str, float]) -> None:
        for name, seconds in part.items():
            self.cpu_s[name] = round(self.cpu_s.get(name, 0.0) + seconds, 3)


def shares(total: int, rounds: int = ROUNDS) -> list[int]:
    """``total`` cut into at most ``rounds`` near-equal shares, none empty."""
    n = max(1, min(rounds, total))
    return [total // n + (1 if k < total % n else 0) for k in range(n)]


async def take_turns(
    rigs: list[Rig], total: int, batches: dict[str, Batch], tallies: dict[str, Tally], what: str
) -> None:
    """``total`` commands on every transport, in rounds (see the module)."""
    progress = rigs[0].progress

    def counts() -> str:
        return ", ".join(f"{r.label} {len(tallies[r.transport].state_ns)}/{total}" for r in rigs)

    for k, share in enumerate(shares(total)):
        for rig in rigs if k % 2 == 0 else rigs[::-1]:
            with labelled(rig):
                cpu = rig.cpu_meter()
                await batches[rig.transport](share)
                tallies[rig.transport].add_cpu(cpu.stop())
            progress.show(f"{what}: {counts()}")
    progress.finish(f"{what}: {counts()}")


async def baseline(rigs: list[Rig], ids: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """The raw MQTT round trip, no hub in the path (the benchmark policy's baseline)."""
    opts = rigs[0].opts
    tallies = {rig.transport: Tally() for rig in rigs}
    batches: dict[str, Batch] = {}
    probes: list[RawProbe] = []
    for rig in rigs:
        broker = rig.broker
        probe = RawProbe(broker.port, PROBE_USERNAME, broker.probe_secret, broker.ca_pem)
        rig.stack.push_async_callback(probe.stop)
        with labelled(rig):
            await probe.start(opts.speakers)
        probes.append(probe)
        order = device_order(ids[rig.transport], opts.baseline_commands, opts.order, opts.seed)
        batches[rig.transport] = _probe_batch(probe, order, tallies[rig.transport], opts.timeout_s)
    await take_turns(rigs, opts.baseline_commands, batches, tallies, "baseline (raw MQTT)")
    for probe in probes:
        await probe.stop()
    return {
        t: {"raw_cpu_s": x.cpu_s, "raw": LatencyStats.of(x.state_ns)} for t, x in tallies.items()
    }


def _probe_batch(probe: RawProbe, order: Iterator[str], tally: Tally, timeout_s: float) -> Batch:
    async def batch(n: int) -> None:
        for _ in range(n):
            tally.state_ns.append(await probe.command(next(order), timeout_s))
            if probe.errors:
                raise BenchError(f"raw probe: {probe.errors[0]}")

    return batch


async def one_at_a_time(
    rigs: list[Rig], sessions: dict[str, Listener], ids: dict[str, list[str]]
) -> dict[str, dict[str, Any]]:
    """Commands through the hub, one at a time: the issue's target is about this."""
    opts = rigs[0].opts
    tallies = {rig.transport: Tally() for rig in rigs}
    batches: dict[str, Batch] = {}
    for rig in rigs:
        order = device_order(ids[rig.transport], opts.commands, opts.order, opts.seed)
        batches[rig.transport] = _session_batch(
            sessions[rig.transport], order, tallies[rig.transport], opts.timeout_s
        )
    await take_turns(rigs, opts.commands, batches, tallies, "through the hub")
    return {
        t: {
            "hub_cpu_s": x.cpu_s,
            "hub": LatencyStats.of(x.state_ns),
            "hub_result": LatencyStats.of(x.result_ns),
        }
        for t, x in tallies.items()
    }


def _session_batch(
    session: Listener, order: Iterator[str], tally: Tally, timeout_s: float
) -> Batch:
    async def batch(n: int) -> None:
        for _ in range(n):
            s, r = await session.command(next(order), timeout_s)
            tally.state_ns.append(s)
            tally.result_ns.append(r)

    return batch


async def in_flight(
    rigs: list[Rig], sessions: dict[str, Listener], ids: dict[str, list[str]]
) -> dict[str, dict[str, Any]]:
    """K clients' worth of commands in flight at once, each on a speaker no one else is using.

    Exactly ``opts.commands`` commands per transport; a pick that is busy is skipped, at
    most K - 1 times in a row, since fewer than K speakers are ever busy.  Each share
    ends with its last command answered, so K are in flight from a share's start to
    near its end.
    """
    opts = rigs[0].opts
    tallies = {rig.transport: Tally() for rig in rigs}
    batches: dict[str, Batch] = {}
    for rig in rigs:
        t = rig.transport
        candidates = device_order(ids[t], sys.maxsize, opts.order, opts.seed + 1)
        streams = min(opts.concurrency, len(ids[t]))
        batches[t] = _streams_batch(sessions[t], candidates, streams, tallies[t], opts.timeout_s)
    label = f"through the hub, {opts.concurrency} in flight"
    await take_turns(rigs, opts.commands, batches, tallies, label)
    return {
        t: {
            "hub_concurrent_cpu_s": x.cpu_s,
            "hub_concurrent": LatencyStats.of(x.state_ns),
            "hub_concurrent_result": LatencyStats.of(x.result_ns),
            "hub_concurrent_throughput_per_s": round(len(x.state_ns) / x.cpu_s["wall"], 1),
        }
        for t, x in tallies.items()
    }


def _streams_batch(
    session: Listener, candidates: Iterator[str], streams: int, tally: Tally, timeout_s: float
) -> Batch:
    busy: set[str] = set()

    async def batch(n: int) -> None:
        issued = 0

        def next_free() -> str | None:
            nonlocal issued
            if issued >= n:
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
                    s, r = await session.command(device_id, timeout_s)
                finally:
                    busy.discard(device_id)
                tally.state_ns.append(s)
                tally.result_ns.append(r)

        await asyncio.gather(*(one_stream() for _ in range(streams)))

    return batch
