"""One whole run: a system per transport, each phase on every one, then stop everything."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from . import commands, phases
from .common import Options, Progress
from .rig import Rig, labelled
from .speakers import WorkerConfig, start_workers
from .stats import proc_rss_mib
from .system import Provisioned, provision, start_broker, start_hub


async def run(opts: Options, root: Path) -> dict[str, Any]:
    """Measure and return the figures; everything started is stopped on the way out.

    The result has the run's ``failures`` and, under each transport's name, its figures.
    """
    failures: list[str] = []
    result: dict[str, Any] = {"failures": failures}
    async with contextlib.AsyncExitStack() as stack:
        progress = Progress()
        rigs: list[Rig] = []
        accounts: dict[str, Provisioned] = {}
        for transport in opts.transports:  # 1-3: every system up, no speaker connected yet
            rig, accounts[transport] = await _start(opts, root / transport, transport, stack)
            rig.progress, rig.failures = progress, failures
            rigs.append(rig)
            result[transport] = {"rss": {"hub_before_speakers_mib": proc_rss_mib(rig.hub.pid)}}
        res: dict[str, dict[str, Any]] = {rig.transport: result[rig.transport] for rig in rigs}

        # 4. onboarding, then 5. the idle cost with every speaker connected, each on its own
        ids: dict[str, list[str]] = {}
        for rig in rigs:
            t = rig.transport
            with labelled(rig):
                onboarding, ids[t], after = await phases.onboard(rig, accounts[t].ids)
                res[t]["onboarding"] = onboarding
                res[t]["rss"]["hub_after_onboarding_mib"] = after
                res[t] |= await phases.idle(rig)

        # 6. the baseline, then 7. through the hub one at a time, and 8. K in flight: the
        # transports taking turns
        _merge(res, await commands.baseline(rigs, ids))
        sessions = {}
        for rig in rigs:
            with labelled(rig):
                sessions[rig.transport] = await phases.open_session(rig, ids[rig.transport])
        _merge(res, await commands.one_at_a_time(rigs, sessions, ids))
        if opts.concurrency > 1:
            _merge(res, await commands.in_flight(rigs, sessions, ids))

        # 9. every command reached a speaker once; the processes' memory; the hub's log
        for rig in rigs:
            t = rig.transport
            with labelled(rig):
                res[t] |= await phases.speakers_count(rig)
                rig.hub.check_alive()
            rss = res[t]["rss"]
            rss["hub_end_mib"] = proc_rss_mib(rig.hub.pid)
            rss["mosquitto_end_mib"] = proc_rss_mib(rig.broker.pid)
            rss["speaker_workers_end_mib"] = sum(proc_rss_mib(w.pid) for w in rig.workers)
            res[t]["rss"] = {k: round(v, 1) for k, v in rss.items()}
            res[t] |= phases.hub_log_warnings(rig.hub)

        # 10. optional: restart each hub with every speaker connected
        for rig in rigs:
            t = rig.transport
            if opts.restart_hub:
                with labelled(rig):
                    res[t]["restart"] = await phases.restart_hub(
                        rig, sessions[t], accounts[t].data, root / t / "hub-restarted.log"
                    )
            drops_to = rig.broker.dropped_messages_to()
            res[t]["broker_dropped_messages_warnings"] = len(drops_to)
            res[t]["broker_dropped_messages_to"] = sorted(set(drops_to))
    return result


async def _start(
    opts: Options, root: Path, transport: str, stack: contextlib.AsyncExitStack
) -> tuple[Rig, Provisioned]:
    """Provisioning (it makes ``root``), Mosquitto, the hub and the speaker workers
    (started, not connected)."""
    t = time.perf_counter()
    accounts = provision(root, opts.speakers)
    print(
        f"{transport}: provisioned {opts.speakers} speaker logins "
        f"in {time.perf_counter() - t:.1f} s"
    )
    broker = start_broker(stack, root, accounts, tls=transport == "tls")
    hub = await start_hub(stack, accounts.data, broker.url, root / "hub.log")
    print(
        f"{transport}: hub pid {hub.pid} on :{hub.port} with --broker-url {broker.url}, "
        f"mosquitto pid {broker.pid}"
    )
    cfg = WorkerConfig(broker.port, opts.connect_batch, broker.ca_pem)
    workers = await start_workers(stack, accounts.specs, opts.workers, cfg)
    rig = Rig(opts, transport, broker, hub, workers, stack, Progress(), [])
    return rig, accounts


def _merge(res: dict[str, dict[str, Any]], figures: dict[str, dict[str, Any]]) -> None:
    for transport, more in figures.items():
        res[transport] |= more
