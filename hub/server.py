"""Running a hub: broker, relay, web app and mDNS in one process.

``serve`` runs what a hub always runs; ``up`` adds a demo account, the demo
catalog and one local speaker process, for a whole system in one command.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from connect_protocol import mdns
from connect_protocol.messages import MAX_MESSAGE_BYTES
from connect_protocol.mqtt import BrokerAddress
from connect_protocol.topics import HUB_USERNAME
from hub.context import HubContext, hub_database
from hub.db import Database
from hub.fleet import provisioning
from hub.fleet.broker import BrokerError, EmbeddedBroker
from hub.fleet.relay import Relay
from hub.http.app import create_app
from hub.http.ratelimit import parse_limits
from hub.http.routes.audio import AudioAccess
from hub.media.signing import URL_TTL_S, KeyRing

logger = logging.getLogger(__name__)
FIRMWARE = "0.1.0"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeOptions:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    mqtt_port: int = 1883
    broker_url: str | None = None  # external broker; None = embedded
    ack_timeout_s: float = 5.0
    advertise: bool = True
    audio_url_ttl_s: int = URL_TTL_S  # how long signed segment URLs work
    rate_limits: str = "default"  # ratelimit.parse_limits: default, off, or overrides


def open_database(data_dir: Path) -> Database:
    """The hub's database, in a data directory only its owner can read."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)  # it holds password hashes, secrets and keys
    db = hub_database(data_dir / "hub.db")
    db.migrate()
    return db


def check_port_free(host: str, port: int, what: str, flag: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise BrokerError(
                f"cannot use {host}:{port} for the {what}: {exc.strerror}; "
                f"choose another with {flag}"
            ) from exc


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the hub stops its parts in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Hub:
    """Owns the hub's long-lived parts; ``async with`` starts and stops them in order."""

    def __init__(self, opts: ServeOptions) -> None:
        self.opts = opts
        self.db = open_database(opts.data_dir)
        self.broker: EmbeddedBroker | None = None
        self.advertiser: mdns.Advertiser | None = None
        self.server: uvicorn.Server | None = None
        secret = provisioning.hub_secret(self.db, opts.data_dir)
        if opts.broker_url:
            self.address = BrokerAddress.parse(
                opts.broker_url, username=HUB_USERNAME, password=secret
            )
        else:
            self.address = BrokerAddress(
                host=opts.host if opts.host not in ("0.0.0.0", "::") else "127.0.0.1",
                port=opts.mqtt_port,
                username=HUB_USERNAME,
                password=secret,
            )
        self.public_host = mdns.reachable_address(opts.host)
        self.broker_users = provisioning.BrokerUserCache(self.db)
        self.audio_keys = KeyRing.open(opts.data_dir, url_ttl_s=opts.audio_url_ttl_s)
        self.relay = Relay(self.db, self.address, ack_timeout_s=opts.ack_timeout_s)
        self.ctx = HubContext(
            data_dir=opts.data_dir,
            db=self.db,
            relay=self.relay,
            public_mqtt_host=self.public_host if not opts.broker_url else self.address.host,
            public_mqtt_port=self.address.port,
            broker_healthy=self._broker_healthy,
        )

    def _broker_healthy(self) -> bool:
        return self.broker is None or self.broker.running

    @property
    def url(self) -> str:
        return f"http://{self.public_host}:{self.opts.port}"

    async def start(self) -> None:
        check_port_free(self.opts.host, self.opts.port, "web API", "--port")
        if not self.opts.broker_url:
            check_port_free(self.opts.host, self.opts.mqtt_port, "MQTT broker", "--mqtt-port")
            self.broker = EmbeddedBroker(self.opts.host, self.opts.mqtt_port, self.broker_users)
            await asyncio.to_thread(self.broker.start)
            logger.info("embedded MQTT broker on %s:%d", self.opts.host, self.broker.port)
        await self.ctx.start(wait_s=15)
        audio = AudioAccess(keys=self.audio_keys, speakers=self.broker_users)
        app = create_app(
            self.ctx,
            manage_relay=False,
            audio_access=audio,
            rate_limits=parse_limits(self.opts.rate_limits),
        )
        config = uvicorn.Config(
            app,
            host=self.opts.host,
            port=self.opts.port,
            log_level="warning",
            lifespan="on",
            # Frames past this close the socket; below it, oversized messages get a 413.
            ws_max_size=2 * MAX_MESSAGE_BYTES,
        )
        self.server = _QuietServer(config)
        self._serve_task = asyncio.create_task(self.server.serve(), name="uvicorn")
        while not self.server.started:
            if self._serve_task.done():
                self._serve_task.result()
                raise BrokerError("the web server stopped during start-up")
            await asyncio.sleep(0.02)
        if self.opts.advertise:
            await self._advertise()

    async def _advertise(self) -> None:
        record = mdns.ServiceRecord(
            kind="hub",
            id="hub-" + socket.gethostname().split(".")[0][:40].replace(".", "-"),
            name=f"Legato hub on {socket.gethostname()}"[:60],
            model="legato-hub",
            proto="1",
            fw=FIRMWARE,
            host=self.public_host,
            port=self.opts.port,
            extra={"mqtt": str(self.address.port), "api": str(self.opts.port)},
        )
        self.advertiser = mdns.Advertiser(record)
        try:
            await self.advertiser.start()
        except Exception:
            logger.exception("mDNS advertisement failed; speakers need --hub URL")
            self.advertiser = None

    async def stop(self) -> None:
        if self.advertiser is not None:
            with contextlib.suppress(Exception):
                await self.advertiser.close()
        if self.server is not None:
            self.server.should_exit = True
            with contextlib.suppress(Exception):
                await self._serve_task
        await self.ctx.stop()
        if self.broker is not None:
            await asyncio.to_thread(self.broker.stop)


async def run_until_signalled(
    hub: Hub, children: list[subprocess.Popen[bytes]] | None = None
) -> None:
    """Wait for Ctrl-C or SIGTERM, then stop the children and the hub, in that order."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for proc in children or []:
            stop_process(proc)
        await hub.stop()


def spawn_speaker(config: Path, sink: str, log_level: str = "WARNING") -> subprocess.Popen[bytes]:
    """Start the local speaker as its own process (the hub never imports ``device``)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "device",
            "--config",
            str(config),
            "--sink",
            sink,
            "--log-level",
            log_level,
        ],
        start_new_session=True,  # Ctrl-C reaches us; we stop it in order
    )


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
