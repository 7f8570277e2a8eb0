"""Memory: the peak RSS of a real speaker process while it plays, against the clock engine.

Two speakers run as the product runs them (``python -m device`` through the test
harness's ``System.start_speaker``, paired: MQTT over TLS and HTTPS, the hub's CA
pinned), both with ``--sink null`` (real time): one with ``--engine native``, the
baseline with ``--engine clock`` (the same process with no audio engine: MQTT,
controller, local API, mDNS).  A third, for reference, is the native one told to reach
the hub in clear (``--hub`` the Web API port, ``--broker`` the embedded broker's plain
listener), to show what TLS costs in memory.  All are told to play the library
from 10 s (at most half the window) before the end of a track, so the window covers a
gapless join and the next track's fetch and decode (the 48 kHz demo track, resampled).
``VmRSS`` is sampled every 0.25 s for ``--rss-seconds``; the figure is ``VmHWM`` (the
kernel's high-water mark of the resident set) at the end.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from .common import BenchError, Options, Progress, proc_status_mib
from .rig import Rig

LEAD_S = 10.0  # start this long before a track's end (at most half the window): a join
SAMPLE_S = 0.25


def _start_at(rig: Rig, lead_s: float) -> tuple[int, int]:
    """(track index, position ms) to start from: before the 48 kHz track if there is one."""
    tracks = rig.library.tracks
    k = next((i for i in range(len(tracks) - 1) if tracks[i + 1].manifest.sample_rate != 44100), 0)
    return k, max(0, tracks[k].duration_ms - int(lead_s * 1000))


async def measure(rig: Rig, opts: Options, progress: Progress) -> dict[str, Any]:
    ids = {
        "native": "bench-rss-native",
        "clock": "bench-rss-clock",
        "native_plain": "bench-rss-native-plain",
    }
    in_clear = ["--hub", rig.system.url, "--broker", f"mqtt://127.0.0.1:{rig.mqtt_plain_port}"]
    procs = {}
    for kind, device_id in ids.items():
        engine = kind.removesuffix("_plain")
        rig.login(device_id, engine=engine)
        procs[kind] = rig.system.start_speaker(
            device_id,
            *("--engine", engine, "--sink", "null", "--log-level", "WARNING"),
            *(in_clear if kind.endswith("_plain") else []),
        )
    await rig.wait_online(*ids.values())
    await asyncio.sleep(1.0)  # settled: what a speaker holds before it plays anything
    idle = {kind: proc_status_mib(proc.proc.pid, "VmRSS") for kind, proc in procs.items()}
    start, position = _start_at(rig, min(LEAD_S, opts.rss_seconds / 2))
    uris = [t.uri for t in rig.library.tracks]
    for device_id in ids.values():
        body = {"uris": uris, "offset": {"position": start}, "position_ms": position}
        await rig.command("PUT", "play", device_id, body)
    samples: dict[str, list[float]] = {k: [] for k in ids}
    t0 = time.monotonic()
    while (elapsed := time.monotonic() - t0) < opts.rss_seconds:
        for kind, proc in procs.items():
            if proc.proc.poll() is not None:
                raise BenchError(f"speaker {ids[kind]} exited; see {proc.log}")
            samples[kind].append(proc_status_mib(proc.proc.pid, "VmRSS"))
        progress.show(f"memory: {elapsed:.0f}/{opts.rss_seconds:g} s playing")
        await asyncio.sleep(SAMPLE_S)
    out: dict[str, Any] = {"seconds": opts.rss_seconds, "start_track": start}
    for kind, proc in procs.items():
        pid = proc.proc.pid
        out[kind] = {
            "vm_hwm_mib": round(proc_status_mib(pid, "VmHWM"), 1),
            "vm_rss_idle_mib": round(idle[kind], 1),
            "vm_rss_end_mib": round(proc_status_mib(pid, "VmRSS"), 1),
            "rss_anon_mib": round(proc_status_mib(pid, "RssAnon"), 1),
            "rss_file_mib": round(proc_status_mib(pid, "RssFile"), 1),
            "rss_samples_mib": {
                "min": round(min(samples[kind]), 1),
                "max": round(max(samples[kind]), 1),
                "last": round(samples[kind][-1], 1),
            },
            "samples": len(samples[kind]),
        }
    # Each must really have played through the join: each is now on the next track.
    states = await rig.states(*ids.values())
    for kind, device_id in ids.items():
        state = states[device_id]
        current = (state.get("current") or {}).get("uri")
        out[kind]["playing"] = bool(state.get("is_playing"))
        out[kind]["joined_next_track"] = current == uris[min(start + 1, len(uris) - 1)]
        if not state.get("is_playing") or state.get("buffering"):
            raise BenchError(f"speaker {device_id} is not playing: {state}")
    for proc in procs.values():
        await asyncio.to_thread(proc.stop)
    progress.finish(
        f"memory: native VmHWM {out['native']['vm_hwm_mib']} MiB, "
        f"clock {out['clock']['vm_hwm_mib']} MiB, native in clear "
        f"{out['native_plain']['vm_hwm_mib']} MiB"
    )
    if math.isnan(out["native"]["vm_hwm_mib"]):
        raise BenchError("could not read the native speaker's VmHWM")
    return out
