"""One whole run: set everything up, measure each phase in turn, stop everything."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from . import phases
from .common import Options, Progress
from .phases import Rig
from .speakers import WorkerConfig, start_workers
from .stats import proc_rss_mib
from .system import provision, start_broker, start_hub


async def run(opts: Options, root: Path) -> dict[str, Any]:
    """Measure and return the figures; everything started is stopped on the way out."""
    failures: list[str] = []
    result: dict[str, Any] = {"failures": failures}
    async with contextlib.AsyncExitStack() as stack:
        # 1. accounts and one broker login per speaker, before the broker config is written
        t = time.perf_counter()
        accounts = provision(root, opts.speakers)
        print(f"provisioned {opts.speakers} speaker logins in {time.perf_counter() - t:.1f} s")

        # 2. broker and hub, each on a free port
        broker = start_broker(stack, root, accounts.users)
        hub = await start_hub(stack, accounts.data, broker.port, root / "hub.log")
        print(f"hub pid {hub.pid} on :{hub.port}, mosquitto pid {broker.pid} on :{broker.port}")
        rss = {"hub_before_speakers_mib": proc_rss_mib(hub.pid)}

        # 3. the speaker workers, started but not yet connected
        cfg = WorkerConfig(broker.port, opts.connect_batch)
        workers = await start_workers(stack, accounts.specs, opts.workers, cfg)
        rig = Rig(opts, broker, hub, workers, stack, Progress(), failures)

        # 4. onboarding, then 5. the idle cost with every speaker connected
        result["onboarding"], ids, rss["hub_after_onboarding_mib"] = await phases.onboard(
            rig, accounts.ids
        )
        result |= await phases.idle(rig)

        # 6. the baseline, then 7. through the hub one at a time, and 8. K in flight
        result |= await phases.baseline(rig, ids)
        session = await phases.open_session(rig, ids)
        result |= await phases.one_at_a_time(rig, session, ids)
        if opts.concurrency > 1:
            result |= await phases.in_flight(rig, session, ids)

        # 9. every command reached a speaker once; the processes' memory; the hub's log
        result |= await phases.speakers_count(rig)
        hub.check_alive()
        rss["hub_end_mib"] = proc_rss_mib(hub.pid)
        rss["mosquitto_end_mib"] = proc_rss_mib(broker.pid)
        rss["speaker_workers_end_mib"] = sum(proc_rss_mib(w.pid) for w in workers)
        result["rss"] = {k: round(v, 1) for k, v in rss.items()}
        result |= phases.hub_log_warnings(hub)

        # 10. optional: restart the hub with every speaker connected
        if opts.restart_hub:
            result["restart"] = await phases.restart_hub(
                rig, session, accounts.data, root / "hub-restarted.log"
            )
        drops_to = broker.dropped_messages_to()
        result["broker_dropped_messages_warnings"] = len(drops_to)
        result["broker_dropped_messages_to"] = sorted(set(drops_to))
    return result
