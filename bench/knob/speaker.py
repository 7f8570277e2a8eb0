"""The system under test: the hub, a real speaker process with its panel on a
pseudo-terminal and its sink a FIFO, and the clients that watch it.

The hub is the audio bench's (``audio.rig``: a process with its embedded broker, the
test tone in its library).  The speaker is ``python -m device`` as the test harness
starts it, paired (MQTT over TLS, HTTPS, the hub's CA pinned), with the native engine,
``--panel`` the pseudo-terminal, ``--sink file:FIFO`` and no loudness normalisation,
so the level at the sink is the tone's times the volume's gain.  It plays the tone on
repeat at ``high`` quality (44.1 kHz stereo, like the sink).

Watching it: a Connect WebSocket at the hub (the control bench's ``Listener``, which
also logs every state here), the speaker's local control WebSocket (the baseline's way
in: a phone on the same network), and ``GET /info`` for the controls' counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from audio.material import Library
from audio.rig import Rig, start_rig
from latency.listener import Listener

from connect_protocol.codec import encode
from connect_protocol.messages import SetVolume
from tests.brokers import free_port
from tests.system import Process

from .common import MIDDLE_PERCENT, BenchError, now_ns
from .panel import PanelPty
from .sink import SinkReader

DEVICE_ID = "bench-knob"
START_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Seen:
    at_ns: int
    revision: int
    volume_percent: int


class HubWatch(Listener):
    """The Connect WebSocket at the hub, keeping every state of one speaker with its time."""

    def __init__(self, url: str, device_id: str) -> None:
        super().__init__(url, compression=True)
        self.device_id = device_id
        self.log: list[Seen] = []
        self.changed = asyncio.Event()

    def _dispatch(self, msg: dict[str, Any], now_ns_: int) -> None:
        super()._dispatch(msg, now_ns_)
        if msg.get("type") == "state" and msg.get("device_id") == self.device_id:
            state = msg["state"]
            # perf_counter and monotonic are one clock here (checked in ``run``)
            self.log.append(Seen(now_ns_, int(state["revision"]), int(state["volume_percent"])))
            self.changed.set()

    async def wait_volume(self, volume: int, after: int, timeout_s: float) -> Seen:
        """The first state after log entry ``after`` with this volume."""
        async with asyncio.timeout(timeout_s):
            while True:
                for seen in self.log[after:]:
                    if seen.volume_percent == volume:
                        return seen
                self.changed.clear()
                if self.failure:
                    raise BenchError(self.failure)
                await self.changed.wait()


class LocalControl:
    """The speaker's local control WebSocket, as a phone on the same network uses it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._ws: Any = None
        self._seq = 0
        self._task: asyncio.Task[None] | None = None
        self.failure: str | None = None

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        self._ws = await connect(self.url, proxy=None, open_timeout=15, ping_interval=None)
        self._task = asyncio.create_task(self._drain(), name="local-control")

    async def _drain(self) -> None:
        try:
            async for raw in self._ws:
                msg = json.loads(raw)
                if msg.get("type") == "ack" and not msg.get("ok", True):
                    self.failure = f"the speaker refused a local command: {msg}"
        except Exception as exc:
            self.failure = f"the local control WebSocket failed: {exc}"

    async def volume(self, percent: int) -> int:
        """Send a volume command; the time just before it was sent (ns)."""
        if self.failure:
            raise BenchError(self.failure)
        self._seq += 1
        text = encode(SetVolume(id=f"bench-{self._seq}", volume_percent=percent)).decode()
        at_ns = now_ns()
        await self._ws.send(text)
        return at_ns

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), 5)


@dataclass(slots=True)
class Bench:
    """Everything a phase uses, started and stopped together."""

    rig: Rig
    panel: PanelPty
    sink: SinkReader
    speaker: Process
    hub: HubWatch
    local: LocalControl
    local_port: int
    local_token: str
    device_id: str = DEVICE_ID
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        self.rig.check_hub()
        self.sink.check()
        if self.speaker.proc.poll() is not None:
            raise BenchError(f"the speaker exited; see {self.speaker.log}")

    async def controls(self) -> dict[str, Any]:
        """The controls' counters from the speaker's ``GET /info`` (with its pairing token)."""
        async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
            r = await http.get(
                f"http://127.0.0.1:{self.local_port}/info", params={"token": self.local_token}
            )
            r.raise_for_status()
        controls = r.json().get("diagnostics", {}).get("controls")
        if not isinstance(controls, dict):
            raise BenchError(f"the speaker's /info has no controls' diagnostics: {r.text[:300]}")
        return controls

    async def set_volume(self, percent: int) -> None:
        """Through the hub's Web API, and wait for the hub to show it."""
        after = len(self.hub.log)
        r = await self.rig.http.put(
            "/v1/me/player/volume",
            params={"device_id": self.device_id, "volume_percent": percent},
        )
        if r.status_code != 204:
            raise BenchError(f"PUT /v1/me/player/volume: {r.status_code} {r.text[:200]}")
        await self.hub.wait_volume(percent, after, 10)

    async def steady_level(self, timeout_s: float = 10) -> float:
        """Wait until the sink's level is steady (the tone playing); that level (dB)."""
        async with asyncio.timeout(timeout_s):
            while True:
                self.check()
                recent = self.sink.recent_db(64)
                if len(recent) == 64 and max(recent) - min(recent) < 0.1 and min(recent) > -80:
                    return sum(recent) / len(recent)
                await asyncio.sleep(0.1)


async def _wait_local(port: int, timeout_s: float) -> None:
    async with httpx.AsyncClient(trust_env=False, timeout=1) as http:
        async with asyncio.timeout(timeout_s):
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"http://127.0.0.1:{port}/info")).status_code == 200:
                        return
                await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def start_bench(root: Path, library: Library, max_s: float) -> AsyncIterator[Bench]:
    """The hub, the speaker on the panel and the FIFO, playing the tone at 50 %."""
    panel = PanelPty()
    sink = SinkReader(root, max_s)
    hub: HubWatch | None = None
    local: LocalControl | None = None
    try:
        panel.start()
        sink.start()
        async with start_rig(root, library) as rig:
            rig.login(DEVICE_ID, engine="native")
            port = free_port()
            speaker = rig.system.start_speaker(
                DEVICE_ID,
                *("--engine", "native", "--sink", sink.sink_spec, "--panel", panel.port),
                *("--quality", "high", "--normalisation", "off", "--port", str(port)),
                *("--log-level", "WARNING", "--no-mdns"),
            )
            await rig.wait_online(DEVICE_ID, timeout_s=START_TIMEOUT_S)
            await _wait_local(port, START_TIMEOUT_S)
            hub = HubWatch(
                f"ws://127.0.0.1:{rig.system.hub_port}/v1/connect/ws?access_token={rig.token}",
                DEVICE_ID,
            )
            await hub.open()
            token = rig.system.local_token(DEVICE_ID)
            local = LocalControl(f"ws://127.0.0.1:{port}/control?token={token}")
            await local.open()
            bench = Bench(rig, panel, sink, speaker, hub, local, port, token)
            panel.send("HELLO,1,bench")
            await bench.set_volume(MIDDLE_PERCENT)
            track = library.tracks[0]
            await rig.command("PUT", "play", DEVICE_ID, {"uris": [track.uri]})
            r = await rig.http.put(
                "/v1/me/player/repeat", params={"device_id": DEVICE_ID, "state": "track"}
            )
            if r.status_code != 204:
                raise BenchError(f"PUT /v1/me/player/repeat: {r.status_code} {r.text[:200]}")
            bench.extra["level_db_at_middle"] = round(await bench.steady_level(), 2)
            try:
                yield bench
            finally:
                await asyncio.to_thread(speaker.stop)
    finally:
        if local is not None:
            await local.close()
        if hub is not None:
            await hub.close()
        panel.close()
        sink.stop()
