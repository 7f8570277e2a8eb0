"""The system under test: the virtual DACs, the hub, the member speakers and their relays.

The hub is the audio bench's (``audio.rig``: its own process with its embedded broker,
the noise album in its library).  Each member is ``python -m device`` as the test harness
starts it, paired (MQTT over TLS, HTTPS, the hub's CA pinned), with the native engine,
``--sink fifo:`` its DAC's pipe, ``--quality normal`` and no loudness normalisation.  Each
member's sync socket is on a fixed port behind its own relay, which is what it
advertises, so whichever member leads, the others reach it through the relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import httpx
from audio.material import Library
from audio.rig import Rig, start_rig
from knob.busy import Busy, busy_core

from device.config import SpeakerConfig
from tests.brokers import free_port
from tests.system import Process
from tests.virtual_dac import VirtualDac

from .common import QUALITY, BenchError, Options
from .relay import start_relay

START_TIMEOUT_S = 30.0


def supports_sync_config() -> bool:
    """Whether this checkout's speaker takes a ``[sync]`` section (port, advertise)."""
    return "sync_advertise" in getattr(SpeakerConfig, "__dataclass_fields__", {})


@dataclass(slots=True)
class Member:
    id: str
    ppm: float
    sync_port: int
    relay_port: int
    local_port: int
    speaker: Process | None = None
    relay: BaseProcess | None = None


@dataclass(slots=True)
class Bench:
    rig: Rig
    dac: VirtualDac
    members: list[Member]
    busy: Busy
    sync_config: bool
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        self.rig.check_hub()
        if not self.dac.alive():
            raise BenchError(f"the virtual DAC process ended; see {self.dac.directory}/dac.log")
        for m in self.members:
            if m.speaker is not None and m.speaker.proc.poll() is not None:
                raise BenchError(f"speaker {m.id} exited; see {m.speaker.log}")
            if m.relay is not None and not m.relay.is_alive():
                raise BenchError(f"the relay of {m.id} ended")

    def member(self, device_id: str) -> Member:
        return next(m for m in self.members if m.id == device_id)

    async def command(self, method: str, path: str, device_id: str, body: Any = None) -> None:
        await self.rig.command(method, path, device_id, body)

    async def sync_diagnostics(self) -> dict[str, Any]:
        """Each member's own account of its sync (``GET /info``: group, peer, engine)."""
        out: dict[str, Any] = {}
        async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
            for m in self.members:
                token = self.rig.system.local_token(m.id)
                try:
                    r = await http.get(
                        f"http://127.0.0.1:{m.local_port}/info", params={"token": token}
                    )
                    out[m.id] = r.json().get("diagnostics", {}).get("sync")
                except (httpx.HTTPError, ValueError) as exc:
                    out[m.id] = {"error": str(exc)}
        return out


def _sync_section(member: Member) -> str:
    return f'\n[sync]\nport = {member.sync_port}\nadvertise = "127.0.0.1:{member.relay_port}"\n'


def _speaker_args(bench: Bench, m: Member) -> list[str]:
    return [
        *("--engine", "native", "--sink", bench.dac.sink(m.id), "--quality", QUALITY),
        *("--normalisation", "off", "--port", str(m.local_port)),
        *("--log-level", "INFO", "--no-mdns"),
    ]


async def start_member(bench: Bench, m: Member) -> None:
    m.speaker = bench.rig.system.start_speaker(m.id, *_speaker_args(bench, m))
    await bench.rig.wait_online(m.id, timeout_s=START_TIMEOUT_S)


@contextlib.asynccontextmanager
async def start_bench(
    opts: Options, root: Path, library: Library, max_s: float
) -> AsyncIterator[Bench]:
    """The DACs, then the hub, then each member (its relay first): all online, idle."""
    names = ["room" + str(i + 1) for i in range(opts.members)]
    if "join" in opts.only:
        names.append("joiner")
    members = [
        Member(n, opts.ppm[i], free_port(), free_port(), free_port()) for i, n in enumerate(names)
    ]
    # each run's speakers keep their state (their group membership too) in the run's own
    # directory, never in the home directory where another run would find it
    os.environ["LEGATO_SPEAKER_STATE"] = str(root / "speaker-state")
    dac = VirtualDac(root / "dac", {m.id: m.ppm for m in members}, max_s=max_s)
    await asyncio.to_thread(dac.start)
    try:
        with busy_core(opts.busy, max_s) as busy:
            async with start_rig(root, library) as rig:
                sync_config = supports_sync_config()
                bench = Bench(rig, dac, members, busy, sync_config)
                bench.extra["dac"] = dac.ready
                for i, m in enumerate(members):
                    rig.login(m.id, engine="native")
                    if sync_config:
                        m.relay = start_relay(
                            m.relay_port, m.sync_port, opts.jitter_ms, opts.seed + i
                        )
                        with rig.system.configs[m.id].open("a") as fh:
                            fh.write(_sync_section(m))
                try:
                    await asyncio.gather(*(start_member(bench, m) for m in members))
                    yield bench
                finally:
                    for m in members:
                        if m.speaker is not None:
                            await asyncio.to_thread(m.speaker.stop)
                        if m.relay is not None:
                            m.relay.kill()
                            m.relay.join(5)
    finally:
        bench_stats = await asyncio.to_thread(dac.stop)
        if bench_stats:
            (root / "dac-timing.txt").write_text(repr(bench_stats) + "\n")
