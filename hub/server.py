"""Running a hub: broker, relay, web app and mDNS in one process.

``serve`` runs what a hub always runs; ``up`` adds a demo account, the demo
catalog and one local speaker process, for a whole system in one command.

Speaker ↔ hub traffic is TLS under the hub's own CA (:mod:`hub.fleet.pki`): the
embedded broker's MQTT port and a second HTTPS port for speakers (``tls_port``)
present its certificate.  Browsers keep the plain HTTP port (or HTTPS with the
operator's own certificate).  Plain MQTT only when asked for, with a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from connect_protocol import mdns
from connect_protocol.messages import MAX_MESSAGE_BYTES
from connect_protocol.mqtt import BrokerAddress
from connect_protocol.topics import HUB_USERNAME
from hub.clock import now_ms
from hub.context import HubContext, hub_database
from hub.db import Database
from hub.fleet import pki, provisioning
from hub.fleet.broker import BrokerError, EmbeddedBroker
from hub.fleet.relay import Relay
from hub.http.app import create_app
from hub.http.ratelimit import parse_limits
from hub.http.routes.audio import AudioAccess
from hub.listening import retention
from hub.listening.retention import DEFAULT_HISTORY_DAYS
from hub.media.signing import URL_TTL_S, KeyRing
from hub.recommend.jobs import Schedule

logger = logging.getLogger(__name__)
FIRMWARE = "0.1.0"
PRUNE_EVERY_S = 86_400.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeOptions:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    mqtt_port: int = 8883  # the embedded broker's MQTT over TLS
    mqtt_plain_port: int | None = None  # plain MQTT too: only when asked for
    tls_port: int = 8443  # the speakers' HTTPS port (the hub's own certificate)
    tls_cert: Path | None = None  # the operator's certificate for the Web API port
    tls_key: Path | None = None
    broker_url: str | None = None  # external broker; None = embedded
    ack_timeout_s: float = 5.0
    advertise: bool = True
    audio_url_ttl_s: int = URL_TTL_S  # how long signed segment URLs work
    rate_limits: str = "default"  # ratelimit.parse_limits: default, off, or overrides
    history_days: int = DEFAULT_HISTORY_DAYS  # plays older than this are deleted
    retrain_hours: float = 0.0  # the recommender's schedule (0: off; the CLI says 24)


def open_database(data_dir: Path) -> Database:
    """The hub's database, in a data directory only its owner can read."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)  # it holds password hashes, secrets and keys
    db = hub_database(data_dir / "hub.db")
    db.migrate()
    return db


#: Open files the hub asks for: sockets of speakers, browsers and the embedded broker's
#: clients (capped at its own 2,000), with room to spare.
OPEN_FILES = 65536


def raise_open_file_limit(wanted: int = OPEN_FILES) -> int:
    """Raise the soft limit on open files towards ``wanted`` (never past the hard
    limit); a default of 1,024 would let a few hundred idle sockets stop the Web API."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


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
        raise_open_file_limit()
        self.db = open_database(opts.data_dir)
        self.broker: EmbeddedBroker | None = None
        self.advertiser: mdns.Advertiser | None = None
        self.server: uvicorn.Server | None = None
        self.speaker_server: uvicorn.Server | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._speaker_task: asyncio.Task[None] | None = None
        self._handoffs: list[asyncio.Task[None]] = []
        self._retention_task: asyncio.Task[None] | None = None
        secret = provisioning.hub_secret(self.db, opts.data_dir)
        self.public_host = mdns.reachable_address(opts.host)
        self.tls = pki.ensure_server_cert(opts.data_dir, [self.public_host, opts.host])
        ca_pem = self.tls.ca_pem
        if opts.broker_url:
            self.address = BrokerAddress.parse(
                opts.broker_url, username=HUB_USERNAME, password=secret, ca_pem=ca_pem
            )
        else:
            self.address = BrokerAddress(
                host=opts.host if opts.host not in ("0.0.0.0", "::") else "127.0.0.1",
                port=opts.mqtt_port,
                username=HUB_USERNAME,
                password=secret,
                tls=True,
                ca_pem=ca_pem,
            )
        self.retraining: Schedule | None = None
        self.insecure = insecure_links(opts, self.address)
        for warning in self.insecure:
            logger.warning("not encrypted: %s", warning)
        self.broker_users = provisioning.BrokerUserCache(self.db)
        self.audio_keys = KeyRing.open(opts.data_dir, url_ttl_s=opts.audio_url_ttl_s)
        self.relay = Relay(self.db, self.address, ack_timeout_s=opts.ack_timeout_s)
        self.ctx = HubContext(
            data_dir=opts.data_dir,
            db=self.db,
            relay=self.relay,
            public_mqtt_host=self.public_host if not opts.broker_url else self.address.host,
            public_mqtt_port=self.address.port,
            public_mqtt_tls=self.address.tls,
            public_https_port=self.opts.tls_port,
            broker_healthy=self._broker_healthy,
            insecure=self.insecure,
        )

    def _broker_healthy(self) -> bool:
        return self.broker is None or self.broker.running

    @property
    def url(self) -> str:
        scheme = "https" if self.opts.tls_cert else "http"
        return f"{scheme}://{self.public_host}:{self.opts.port}"

    @property
    def speaker_url(self) -> str:
        """The HTTPS address speakers use (the hub's own certificate, pinned by them)."""
        return f"https://{self.public_host}:{self.opts.tls_port}"

    def check_ports(self) -> None:
        """A clear error now, naming the flag, for a port another program holds
        (``up`` asks before it spends a while on the demo catalog)."""
        check_port_free(self.opts.host, self.opts.port, "web API", "--port")
        check_port_free(self.opts.host, self.opts.tls_port, "speakers' HTTPS", "--tls-port")
        if not self.opts.broker_url:
            check_port_free(self.opts.host, self.opts.mqtt_port, "MQTT broker", "--mqtt-port")
            if self.opts.mqtt_plain_port is not None:
                check_port_free(
                    self.opts.host, self.opts.mqtt_plain_port, "plain MQTT", "--mqtt-plain-port"
                )

    async def start(self) -> None:
        self.check_ports()
        if not self.opts.broker_url:
            self.broker = EmbeddedBroker(
                self.opts.host,
                self.opts.mqtt_port,
                self.broker_users,
                tls=(self.tls.cert, self.tls.key),
                plain_port=self.opts.mqtt_plain_port,
            )
            await asyncio.to_thread(self.broker.start)
            logger.info("embedded MQTT broker on %s:%d", self.opts.host, self.broker.port)
        await self.ctx.start(wait_s=15)
        self._retention_task = asyncio.create_task(
            keep_history(self.db, self.opts.history_days), name="history-retention"
        )
        audio = AudioAccess(keys=self.audio_keys, speakers=self.broker_users)
        app = create_app(
            self.ctx,
            manage_relay=False,
            audio_access=audio,
            rate_limits=parse_limits(self.opts.rate_limits),
        )
        opts = self.opts
        operator_tls = (opts.tls_cert, opts.tls_key) if opts.tls_cert and opts.tls_key else None
        self.server, self._serve_task = await _serve(app, opts.host, opts.port, operator_tls)
        hub_tls = (self.tls.cert, self.tls.key)
        self.speaker_server, self._speaker_task = await _serve(
            app, opts.host, opts.tls_port, hub_tls
        )
        self.retraining = Schedule(self.ctx.recommender, self.opts.retrain_hours)
        self.retraining.start()
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
            extra=self._record_extra(),
        )
        self.advertiser = mdns.Advertiser(record)
        try:
            await self.advertiser.start()
        except Exception:
            logger.exception("mDNS advertisement failed; speakers need --hub URL")
            self.advertiser = None

    def _record_extra(self) -> dict[str, str]:
        """What the mDNS record tells speakers: the HTTPS port, the TLS broker (and a
        plain one only if the operator opened one)."""
        extra = {"api": str(self.opts.port), "https": str(self.opts.tls_port)}
        if self.address.tls:
            extra["mqtts"] = str(self.address.port)
        if self.opts.mqtt_plain_port is not None:
            extra["mqtt"] = str(self.opts.mqtt_plain_port)
        elif not self.address.tls:
            extra["mqtt"] = str(self.address.port)
        return extra

    def advertise_for(self, handoff: Path, alive: Callable[[], bool]) -> None:
        """Advertise the record another process on this host hands over in ``handoff``
        (the local speaker of ``up``) while ``alive()``, so the host has one mDNS
        responder.  Only with an advertiser (``self.advertiser``, after ``start``)."""
        if self.advertiser is None:
            raise RuntimeError("the hub advertises nothing over mDNS")
        follow = mdns.follow_handoff(handoff, self.advertiser, alive=alive)
        self._handoffs.append(asyncio.create_task(follow, name=f"mdns-handoff-{handoff}"))

    async def stop(self) -> None:
        if self.retraining is not None:
            await self.retraining.stop()
        background = list(self._handoffs)
        if self._retention_task is not None:
            background.append(self._retention_task)
        for job in background:
            job.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if self.advertiser is not None:
            with contextlib.suppress(Exception):
                await self.advertiser.close()
        for server, task in (
            (self.server, self._serve_task),
            (self.speaker_server, self._speaker_task),
        ):
            if server is not None and task is not None:
                server.should_exit = True
                with contextlib.suppress(Exception):
                    await task
        await self.ctx.stop()
        if self.broker is not None:
            await asyncio.to_thread(self.broker.stop)


async def keep_history(db: Database, days: int, every_s: float = PRUNE_EVERY_S) -> None:
    """Delete plays older than ``days`` now and every ``every_s``, in a worker thread."""
    while True:
        try:
            before = retention.cutoff_ms(now_ms(), days)
            deleted = await asyncio.to_thread(retention.prune, db, before)
            if deleted:
                logger.info("deleted %d plays older than %d days", deleted, days)
        except Exception:
            logger.exception("pruning listening history failed; trying again later")
        await asyncio.sleep(every_s)


async def _serve(
    app: FastAPI, host: str, port: int, tls: tuple[Path, Path] | None
) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """One uvicorn server for ``app`` on ``host:port`` (TLS with ``tls``: certificate and
    key files), started."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",  # the Hub starts and stops the app's parts itself
        # Frames past this close the socket; below it, oversized messages get a 413.
        ws_max_size=2 * MAX_MESSAGE_BYTES,
        ssl_certfile=str(tls[0]) if tls else None,
        ssl_keyfile=str(tls[1]) if tls else None,
    )
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve(), name=f"uvicorn-{port}")
    while not server.started:
        if task.done():
            task.result()
            raise BrokerError(f"the web server on port {port} stopped during start-up")
        await asyncio.sleep(0.02)
    return server, task


def insecure_links(opts: ServeOptions, address: BrokerAddress) -> tuple[str, ...]:
    """What of the speakers' links the operator asked to leave in clear."""
    found = []
    if not address.tls:
        found.append(f"the hub talks to its broker {address.url} in clear (--broker-url mqtt://)")
    if opts.mqtt_plain_port is not None:
        found.append(
            f"the embedded broker also listens in clear on port {opts.mqtt_plain_port}"
            " (--mqtt-plain-port): speakers' passwords can be read on the network there"
        )
    return tuple(found)


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


def spawn_speaker(
    config: Path, sink: str, log_level: str = "WARNING", *, mdns_flags: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """Start the local speaker as its own process (the hub never imports ``device``);
    ``mdns_flags`` say how it appears on mDNS (``--mdns-handoff FILE``, ``--no-mdns``)."""
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
            *mdns_flags,
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
