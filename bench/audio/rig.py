"""The system under test: the hub as its own process, with its embedded broker.

Started with the test suite's harness (``tests.system.System``) on a temporary data
directory that holds the bench's library, so the hub, its broker, speaker logins and
configs are made exactly as the end-to-end tests make them.

Speakers reach the hub as paired ones do: MQTT over TLS (the config's ``mqtts://``
broker) and HTTPS on the hub's speaker port, both verified against the hub's CA that the
config pins.  For reference figures the hub also opens a plain MQTT listener
(``--mqtt-plain-port``), and a speaker can fetch over plain HTTP on the Web API port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from connect_protocol.mqtt import BrokerAddress
from device import config as speaker_config
from device.audio.source import HubMedia
from device.config import SpeakerConfig
from tests.brokers import free_port
from tests.system import System

from .common import BenchError
from .material import Library, install


@dataclass(slots=True)
class Rig:
    root: Path
    system: System
    library: Library
    http: httpx.AsyncClient  # a listener's client: bearer token, kept-alive connection
    token: str
    mqtt_plain_port: int  # the embedded broker's plain listener (reference figures only)

    @property
    def hub_pid(self) -> int:
        assert self.system.hub is not None
        return self.system.hub.proc.pid

    @property
    def data(self) -> Path:
        return self.system.data

    def check_hub(self) -> None:
        hub = self.system.hub
        if hub is None or hub.proc.poll() is not None:
            raise BenchError(f"the hub is not running; see {self.root / 'hub.log'}")

    def login(self, device_id: str, engine: str = "native") -> SpeakerConfig:
        """Provision a speaker (its broker login and a config file) and read its config:
        a paired speaker's, with the hub's CA pinned."""
        cfg = speaker_config.load(self.system.provision(device_id, engine=engine))
        if not (cfg.hub_ca and cfg.hub_url.startswith("https:")):
            raise BenchError(f"{device_id}'s config pins no CA or its hub URL is not HTTPS")
        return cfg

    def broker(self, cfg: SpeakerConfig, *, tls: bool = True) -> BrokerAddress:
        """Where the speaker logs in: its config's broker (MQTT over TLS, the CA pinned);
        with ``tls=False``, the broker's plain listener (a reference, in clear)."""
        if tls:
            return BrokerAddress.parse(
                cfg.broker_url, username=cfg.username, password=cfg.password, ca_pem=cfg.hub_ca
            )
        return BrokerAddress.parse(
            f"mqtt://127.0.0.1:{self.mqtt_plain_port}",
            username=cfg.username,
            password=cfg.password,
        )

    def media(self, cfg: SpeakerConfig, *, tls: bool = True) -> HubMedia:
        """The hub's media as the speaker fetches it: its config's HTTPS URL, the CA
        pinned; with ``tls=False``, plain HTTP on the Web API port (a reference)."""
        if tls:
            return HubMedia(cfg.hub_url, cfg.id, cfg.password, ca_pem=cfg.hub_ca)
        return HubMedia(self.system.url, cfg.id, cfg.password)

    async def wait_online(self, *device_ids: str, timeout_s: float = 30) -> None:
        online: set[str] = set()

        async def poll() -> None:
            r = await self.http.get("/v1/me/player/devices")
            r.raise_for_status()
            online.clear()
            online.update(d["id"] for d in r.json()["devices"] if d["is_online"])

        async with asyncio.timeout(timeout_s):
            while not online.issuperset(device_ids):
                self.check_hub()
                await poll()
                await asyncio.sleep(0.05)

    async def states(self, *device_ids: str, timeout_s: float = 10) -> dict[str, dict[str, Any]]:
        """Each speaker's state as the hub has it, from a Connect WebSocket's first pushes."""
        from websockets.asyncio.client import connect

        url = f"ws://127.0.0.1:{self.system.hub_port}/v1/connect/ws?access_token={self.token}"
        found: dict[str, dict[str, Any]] = {}
        async with asyncio.timeout(timeout_s), connect(url, proxy=None) as ws:
            async for raw in ws:
                msg = json.loads(raw)
                if msg.get("type") == "state" and msg.get("device_id") in device_ids:
                    found[msg["device_id"]] = msg["state"]
                    if len(found) == len(device_ids):
                        break
        return found

    async def command(
        self, method: str, path: str, device_id: str, body: dict[str, Any] | None = None
    ) -> None:
        """A player request for one speaker; anything but 204 fails the run."""
        r = await self.http.request(
            method, f"/v1/me/player/{path}", params={"device_id": device_id}, json=body
        )
        if r.status_code != 204:
            raise BenchError(f"{method} /v1/me/player/{path}: {r.status_code} {r.text[:200]}")


@contextlib.asynccontextmanager
async def start_rig(root: Path, library: Library) -> AsyncIterator[Rig]:
    """The hub on a copy of the library; stopped (with any speaker started) on the way out."""
    install(library, root / "hub-data")
    system = System(root, embedded=True)
    plain_port = free_port()
    try:
        await asyncio.to_thread(
            system.start_hub, "--log-level", "WARNING", "--mqtt-plain-port", str(plain_port)
        )
        token = await asyncio.to_thread(system.token)
        async with httpx.AsyncClient(
            base_url=system.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=15,
            trust_env=False,
        ) as http:
            yield Rig(root, system, library, http, token, plain_port)
    finally:
        await asyncio.to_thread(system.stop)
