"""A bandwidth trace: 2 Mbit/s, then 48 kbit/s for 60 s, then 2 Mbit/s again.

Two engines play the library from its start in real time (``NullSink``), each behind
its own ``ThrottleProxy`` (a token bucket on the download direction) to the hub
process's HTTPS port for speakers (the proxy is a byte pipe: TLS passes through it, and
each engine's ``HubMedia`` pins the hub's CA as a paired speaker's does; the link's byte
count includes TLS's overhead), and both links follow the same trace at the same
moments: ``auto`` (the ABR
chooses each segment's quality) and the baseline pinned to ``normal`` (what playing
without adaptation would do on the same link).  ``--trace-scale`` scales every phase's
length (1.0: 30 s + 60 s + 60 s).

Counted: underruns (the engine's ``underrun`` events; the output stopped, waiting for
audio) and seconds stalled; and the seconds of audio *played* at each quality: every
segment's quality is logged as it is fetched (``sources.Recorder``), and since the engine
plays segments in the order it fetches them, the first ``frames written / rate``
seconds of that log are what was heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from connect_protocol.media import Quality
from device.audio.native import EngineOptions
from device.audio.sinks import NullSink
from device.audio.source import HubMedia
from tests.throttle_proxy import ThrottleProxy

from .common import BenchError, Options, Progress
from .player import Sequencer
from .rig import Rig
from .sources import Fetch, Recorder

RATE = 44100
#: (link rate in bit/s, seconds at scale 1.0)
TRACE: tuple[tuple[int, float], ...] = ((2_000_000, 30.0), (48_000, 60.0), (2_000_000, 60.0))
SAMPLE_S = 0.25
LETTER = {Quality.LOW: "L", Quality.NORMAL: "N", Quality.HIGH: "H", Quality.VERY_HIGH: "V"}


@dataclass(slots=True)
class Lane:
    """One engine on its own shaped link."""

    label: str
    proxy: ThrottleProxy
    recorder: Recorder
    sink: NullSink
    seq: Sequencer
    #: (t, seconds played, seconds fetched, the source's throughput estimate in bit/s)
    samples: list[tuple[float, float, float, float]] = field(default_factory=list)

    def played_s(self) -> float:
        return self.sink.frames_written / RATE

    def fetched_s(self) -> float:
        return sum(f.audio_s for f in self.recorder.segments())

    def sample(self, t: float) -> None:
        estimate = self.recorder.throughput_bps() or 0.0
        self.samples.append((t, self.played_s(), self.fetched_s(), estimate))


def played_by_quality(fetches: list[Fetch], played_s: float) -> dict[str, float]:
    """Seconds heard at each quality: the first ``played_s`` seconds of the fetch log."""
    out = {q.label: 0.0 for q in Quality}
    left = played_s
    for f in fetches:
        if left <= 0 or f.quality is None:
            break
        take = min(f.audio_s, left)
        out[f.quality.label] += take
        left -= take
    return {k: round(v, 1) for k, v in out.items()}


def schedule(scale: float) -> list[tuple[float, float, int]]:
    """(start s, end s, rate) of each phase."""
    out, at = [], 0.0
    for rate, seconds in TRACE:
        out.append((at, at + seconds * scale, rate))
        at += seconds * scale
    return out


def rate_at(phases: list[tuple[float, float, int]], t: float) -> int:
    return next((rate for a, b, rate in phases if a <= t < b), phases[-1][2])


async def _lane(rig: Rig, label: str, quality: str, stack: contextlib.ExitStack) -> Lane:
    cfg = rig.login(f"bench-trace-{label.replace('_', '-')}")
    proxy = ThrottleProxy("127.0.0.1", rig.system.tls_port).start()
    stack.callback(proxy.stop)
    proxy.throttle(TRACE[0][0])
    media = HubMedia(f"https://127.0.0.1:{proxy.port}", cfg.id, cfg.password, ca_pem=cfg.hub_ca)
    recorder = Recorder(media)
    sink = NullSink(RATE)
    seq = Sequencer(
        [t.ref() for t in rig.library.tracks],
        source=recorder,
        sink=sink,
        options=EngineOptions(quality=quality),
    )
    stack.callback(seq.close)
    stack.callback(proxy.throttle, None)  # first (last registered): let fetches finish
    return Lane(label, proxy, recorder, sink, seq)


def _timeline(
    lanes: list[Lane], phases: list[tuple[float, float, int]], t0: float, step: float, end: float
) -> list[dict[str, Any]]:
    rows = []
    edges = [i * step for i in range(int(end / step + 0.5) + 1)]
    for a, b in itertools.pairwise(edges):
        row: dict[str, Any] = {"from_s": round(a, 1), "to_s": round(b, 1)}
        row["link_kbps"] = rate_at(phases, a) // 1000
        for lane in lanes:
            got = [
                LETTER[f.quality]
                for f in lane.recorder.segments()
                if f.quality is not None and a <= (f.ended_ns / 1e9 - t0) < b
            ]
            at_b = [s for s in lane.samples if s[0] <= b]
            buffered = at_b[-1][2] - at_b[-1][1] if at_b else 0.0
            under = sum(
                1 for at, kind, _ in lane.seq.log.events if kind.value == "underrun" and at - t0 < b
            )
            row[lane.label] = {
                "fetched": "".join(got),
                "buffer_s": round(buffered, 1),
                "estimate_kbps": round(at_b[-1][3] / 1000) if at_b else 0,
            }
            row[lane.label]["underruns_so_far"] = under
        rows.append(row)
    return rows


async def measure(rig: Rig, opts: Options, progress: Progress) -> dict[str, Any]:
    phases = schedule(opts.trace_scale)
    end = phases[-1][1]
    if rig.library.seconds < end + 40:
        raise BenchError(f"the library ({rig.library.seconds:.0f} s) is too short for the trace")
    with contextlib.ExitStack() as stack:
        lanes = [
            await _lane(rig, "auto", "auto", stack),
            await _lane(rig, "normal", "normal", stack),
        ]
        t0 = time.monotonic()
        for lane in lanes:
            lane.seq.start()
        phase = 0
        while (t := time.monotonic() - t0) < end:
            now_phase = next(i for i, (a, b, _) in enumerate(phases) if t < b)
            if now_phase != phase:
                phase = now_phase
                for lane in lanes:
                    lane.proxy.throttle(phases[phase][2])
            for lane in lanes:
                lane.sample(t)
            progress.show(
                f"bandwidth trace: {t:.0f}/{end:.0f} s, link {phases[phase][2] // 1000} kbit/s, "
                + ", ".join(f"{lane.label}: {lane.seq.log.underruns()} underruns" for lane in lanes)
            )
            await asyncio.sleep(SAMPLE_S)
        stop = time.monotonic()
        for lane in lanes:
            lane.sample(stop - t0)
        out: dict[str, Any] = {
            "scale": opts.trace_scale,
            "phases": [
                {"from_s": round(a, 1), "to_s": round(b, 1), "kbps": r // 1000}
                for a, b, r in phases
            ],
        }
        for lane in lanes:
            played = lane.played_s()
            out[lane.label] = {
                "underruns": lane.seq.log.underruns(),
                "stalled_s": round(lane.seq.log.stalled_s(stop), 1),
                "played_s": round(played, 1),
                "played_by_quality_s": played_by_quality(lane.recorder.segments(), played),
                "quality_changes": [
                    msg for _, kind, msg in lane.seq.log.events if kind.value == "quality_change"
                ],
                "errors": lane.seq.log.errors()[:5],
                "bytes_down": lane.proxy.link.bytes_down,
            }
        out["timeline"] = _timeline(lanes, phases, t0, max(end / 15, 1.0), end)
    progress.finish(
        "bandwidth trace: "
        + ", ".join(f"{lane.label}: {out[lane.label]['underruns']} underruns" for lane in lanes)
    )
    return out
