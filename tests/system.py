"""Start real hubs, brokers and speakers as processes on loopback, for tests.

Everything runs as the user would run it (``python -m hub``, ``python -m
device``) with its output in a log file under the test's ``tmp_path``, which is
printed when a wait fails.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from hub.accounts import users
from hub.fleet import local_control, pki, provisioning
from hub.fleet.broker import MosquittoProcess, write_mosquitto_config
from hub.fleet.broker.mosquitto import TlsFiles
from hub.server import open_database
from tests.brokers import free_port

T = TypeVar("T")
PASSWORD = "listener-password"


def wait_for(
    predicate: Callable[[], T | None], timeout_s: float, what: str, logs: Sequence[Path] = ()
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail with the logs' tails."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in logs if p.exists())
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n{tails}")
        time.sleep(0.05)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["LEGATO_MDNS_INTERFACES"] = "127.0.0.1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Process:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def spawn(name: str, args: list[str], log: Path) -> Process:
    fh = log.open("wb")
    proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, env=child_env())
    fh.close()
    return Process(name, proc, log)


@dataclass
class System:
    """A hub on Mosquitto (or its embedded broker) with speakers, all on loopback."""

    root: Path
    data: Path = field(init=False)
    hub_port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)  # the speakers' HTTPS
    mqtt_port: int = field(default_factory=free_port)  # MQTT over TLS
    embedded: bool = False
    command_timeout_s: float = 3.0
    #: the harness polls the Web API every 50 ms while it waits, which no listener does;
    #: the limits themselves are tested in test_ratelimit.py and test_auth_api.py
    rate_limits: str = "off"
    broker: MosquittoProcess | None = None
    hub: Process | None = None
    speakers: dict[str, Process] = field(default_factory=dict)
    configs: dict[str, Path] = field(default_factory=dict)
    observer_secret: str = ""
    #: the CA of the operator's certificate when the Web API runs over HTTPS (--tls-cert)
    web_ca: Path | None = None
    #: advertise the hub over mDNS (on loopback: LEGATO_MDNS_INTERFACES), for speakers
    #: whose config names no hub URL
    mdns: bool = False

    def __post_init__(self) -> None:
        self.data = self.root / "hub-data"
        self.db = open_database(self.data)
        users.add_user(self.db, "listener", PASSWORD)
        provisioning.hub_secret(self.db, self.data)
        self.observer_secret = provisioning.add_broker_user(self.db, "observer", "observer")
        # the hub's CA and certificate, made as the hub makes them at its first start
        self.tls = pki.ensure_server_cert(self.data, ["127.0.0.1"])

    @property
    def url(self) -> str:
        return f"{'https' if self.web_ca else 'http'}://127.0.0.1:{self.hub_port}"

    def local_token(self, device_id: str) -> str:
        """What a phone needs to steer ``device_id`` through its own port."""
        return local_control.local_token(self.data, device_id)

    @property
    def speaker_url(self) -> str:
        """Where speakers reach the hub: HTTPS with its own certificate."""
        return f"https://127.0.0.1:{self.tls_port}"

    @property
    def broker_url(self) -> str:
        return f"mqtts://127.0.0.1:{self.mqtt_port}"

    @property
    def logs(self) -> list[Path]:
        return sorted(self.root.glob("*.log"))

    def provision(self, device_id: str, name: str | None = None, engine: str = "clock") -> Path:
        secret = provisioning.add_broker_user(self.db, device_id, "speaker")
        path = self.root / f"{device_id}.toml"
        provisioning.write_speaker_config(
            path,
            device_id=device_id,
            name=name or device_id.title(),
            secret=secret,
            hub_url=self.speaker_url,
            broker_url=self.broker_url,
            hub_ca=self.tls.ca_pem,
            local_token=self.local_token(device_id),
            http_host="127.0.0.1",
            engine=engine,
        )
        self.configs[device_id] = path
        return path

    def start_broker(self) -> None:
        if self.embedded:
            return
        conf = write_mosquitto_config(
            self.root / "mosquitto",
            port=self.mqtt_port,
            users=provisioning.all_broker_users(self.db),
            tls=TlsFiles(self.tls.ca_cert, self.tls.cert, self.tls.key),
        )
        self.broker = MosquittoProcess(conf, port=self.mqtt_port)
        self.broker.start()

    def start_hub(self, *extra: str, wrapper: Sequence[str] = ()) -> None:
        """``wrapper`` goes before the command (e.g. ``faketime -f +31d``)."""
        args = [
            *wrapper,
            sys.executable,
            "-m",
            "hub",
            "serve",
            "--data",
            str(self.data),
            "--port",
            str(self.hub_port),
            "--tls-port",
            str(self.tls_port),
            *([] if self.mdns else ["--no-mdns"]),
            "--command-timeout",
            str(self.command_timeout_s),
            "--rate-limits",
            self.rate_limits,
            *extra,
        ]
        if self.embedded:
            args += ["--mqtt-port", str(self.mqtt_port)]
        else:
            args += ["--broker-url", self.broker_url]
        self.hub = spawn("hub", args, self.root / "hub.log")
        wait_for(self._healthy, 30, "the hub's /healthz", self.logs)

    def _healthy(self) -> bool:
        try:
            verify: ssl.SSLContext | bool = (
                ssl.create_default_context(cafile=self.web_ca) if self.web_ca else True
            )
            return httpx.get(f"{self.url}/healthz", timeout=1, verify=verify).status_code == 200
        except httpx.HTTPError:
            return False

    def start_speaker(self, device_id: str, *extra: str, wrapper: Sequence[str] = ()) -> Process:
        config = self.configs.get(device_id) or self.provision(device_id)
        proc = spawn(
            device_id,
            [
                *wrapper,
                sys.executable,
                *("-m", "device", "--config", str(config), "--log-level", "INFO"),
                *extra,
            ],
            self.root / f"{device_id}.log",
        )
        self.speakers[device_id] = proc
        return proc

    def token(self, user: str = "listener", password: str = PASSWORD) -> str:
        r = httpx.post(
            f"{self.url}/api/token",
            data={"grant_type": "password", "username": user, "password": password},
        )
        r.raise_for_status()
        return str(r.json()["access_token"])

    @contextmanager
    def running(self, *speakers: str) -> Iterator[System]:
        """Broker, hub and these speakers (provisioned here), stopped on the way out;
        started inside the ``try``, so a start that fails still stops what did start."""
        for device_id in speakers:
            self.provision(device_id)
        try:
            self.start_broker()
            self.start_hub()
            for device_id in speakers:
                self.start_speaker(device_id)
            yield self
        finally:
            self.stop()

    def stop(self) -> None:
        for proc in self.speakers.values():
            proc.stop()
        if self.hub is not None:
            self.hub.stop()
        if self.broker is not None:
            self.broker.stop()


class Api:
    """The Web API as a client sees it."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.client = httpx.Client(
            base_url=system.url, headers={"Authorization": f"Bearer {system.token()}"}, timeout=15
        )

    def devices(self) -> dict[str, dict[str, Any]]:
        r = self.client.get("/v1/me/player/devices")
        r.raise_for_status()
        return {d["id"]: d for d in r.json()["devices"]}

    def wait_online(self, *ids: str) -> None:
        def ready() -> bool:
            devices = self.devices()
            return all(devices.get(i, {}).get("is_online") for i in ids)

        wait_for(ready, 30, f"speakers {ids} online", self.system.logs)

    def player(self) -> dict[str, Any] | None:
        r = self.client.get("/v1/me/player")
        if r.status_code == 204:
            return None
        r.raise_for_status()
        return dict(r.json())

    def close(self) -> None:
        self.client.close()


def retained_state(system: System, device_id: str) -> dict[str, Any]:
    """The retained state as an independent subscriber (mosquitto_sub) sees it."""
    out = subprocess.run(
        [
            "mosquitto_sub",
            "-h",
            "127.0.0.1",
            "-p",
            str(system.mqtt_port),
            "--cafile",
            str(system.tls.ca_cert),
            "-u",
            "observer",
            "-P",
            system.observer_secret,
            "-i",
            f"obs-{time.monotonic_ns()}",
            "-t",
            f"legato/v1/device/{device_id}/state",
            "-C",
            "1",
            "-W",
            "5",
        ],
        capture_output=True,
        timeout=10,
        check=False,
    )
    assert out.returncode == 0, f"mosquitto_sub failed: {out.stderr.decode()}"
    return dict(json.loads(out.stdout))
