"""The system under test: provisioning, Mosquitto and the hub, each on a free loopback port.

Two transports, as the product can run: ``tls`` (what it ships: Mosquitto's TLS listener
with the hub's own CA and certificate, ``hub.fleet.pki``, and the hub on ``--broker-url
mqtts://``, verifying it against that CA) and ``plain`` (MQTT in clear, ``mqtt://``, which
the hub allows with a warning).

Hub code is imported inside the functions that need it: spawned speaker workers import
this package's modules, and should not load the hub (FastAPI, the database...) for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from connect_protocol.topics import ROOT

from .common import HOST, BenchError

if TYPE_CHECKING:
    from hub.fleet.broker import BrokerUser, MosquittoProcess

REPO = Path(__file__).resolve().parents[2]
LISTENER = "listener"
PASSWORD = "bench-listener-password"
PROBE_USERNAME = "legato-bench-probe"
PORT_ATTEMPTS = 3  # other programs pick free ports too: retry on a new one


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def raise_fd_limit(needed: int) -> None:
    """Mosquitto (a child: it inherits this) holds a socket per speaker."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def log_tail(path: Path, limit: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "(no log)"


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 10) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# --- provisioning -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Provisioned:
    data: Path  # the hub's data directory
    ids: list[str]
    specs: list[tuple[str, str]]  # (speaker id, its broker secret)
    users: list[BrokerUser]


def provision(root: Path, speakers: int) -> Provisioned:
    """The listener's account and one broker login per speaker, as ``legato-hub device add``."""
    from hub.accounts import users as accounts
    from hub.fleet import provisioning
    from hub.server import open_database

    data = root / "hub-data"
    db = open_database(data)
    accounts.add_user(db, LISTENER, PASSWORD)
    provisioning.hub_secret(db, data)  # the hub's own login goes into passwd too
    ids = [f"bench-{i:04d}" for i in range(speakers)]
    specs = [(i, provisioning.add_broker_user(db, i, "speaker")) for i in ids]
    return Provisioned(data, ids, specs, provisioning.all_broker_users(db))


def add_probe_login(conf: Path) -> str:
    """A broker login for the raw-MQTT probe: the hub's rights under its own name.

    Only ``legato-hub`` may publish commands, and the broker makes each login's user name
    its client id (``use_username_as_clientid``), so a probe logged in as the hub would
    take over the hub's session.  This appends a bench-only user to this run's temporary
    ``passwd`` and ACL instead; the product's role model has no such user, on purpose.
    """
    from hub.fleet.broker import hash_secret, new_secret
    from hub.fleet.broker.mosquitto import ACL_NAME, PASSWD_NAME

    secret = new_secret()
    with (conf.parent / PASSWD_NAME).open("a") as fh:
        fh.write(f"{PROBE_USERNAME}:{hash_secret(secret)}\n")
    with (conf.parent / ACL_NAME).open("a") as fh:
        fh.write(f"\nuser {PROBE_USERNAME}\ntopic readwrite {ROOT}/#\n")
    return secret


# --- Mosquitto --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Broker:
    process: MosquittoProcess
    port: int
    probe_secret: str
    ca_pem: str  # the hub's CA: its listener is MQTT over TLS; empty: plain MQTT

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    @property
    def url(self) -> str:
        """What the hub is given as ``--broker-url``."""
        return f"{'mqtts' if self.ca_pem else 'mqtt'}://{HOST}:{self.port}"

    def dropped_messages_to(self) -> list[str]:
        """The client of every "Outgoing messages are being dropped" line in its log."""
        return [
            line.rsplit(" ", 1)[-1].rstrip(".")
            for line in log_tail(self.process.log_path, 10_000_000).splitlines()
            if "Outgoing messages are being dropped" in line
        ]


def start_broker(
    stack: contextlib.AsyncExitStack, root: Path, accounts: Provisioned, *, tls: bool
) -> Broker:
    """Mosquitto configured by the product's ``write_mosquitto_config``, plus the probe's login.

    With ``tls`` its listener is MQTT over TLS with the hub's CA and certificate, made in
    the hub's data directory as the hub makes them at its first start.
    """
    from hub.fleet import pki
    from hub.fleet.broker import BrokerError, MosquittoProcess, write_mosquitto_config
    from hub.fleet.broker.mosquitto import TlsFiles

    files, ca_pem = None, ""
    if tls:
        hub_tls = pki.ensure_server_cert(accounts.data, [HOST])
        files, ca_pem = TlsFiles(hub_tls.ca_cert, hub_tls.cert, hub_tls.key), hub_tls.ca_pem
    for attempt in range(PORT_ATTEMPTS):
        port = free_port()
        conf = write_mosquitto_config(
            root / "mosquitto", port=port, users=accounts.users, tls=files
        )
        probe_secret = add_probe_login(conf)
        process = MosquittoProcess(conf, port=port)
        stack.callback(process.stop)
        try:
            process.start()
            return Broker(process, port, probe_secret, ca_pem)
        except BrokerError:
            if attempt == PORT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


# --- the hub ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hub:
    """A running ``python -m hub serve`` and a listener's token for it."""

    proc: subprocess.Popen[bytes]
    port: int
    token: str
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/v1/connect/ws?access_token={self.token}"

    def check_alive(self) -> None:
        _check_alive(self.proc, self.log)


def _check_alive(proc: subprocess.Popen[bytes], log: Path) -> None:
    if proc.poll() is not None:
        raise BenchError(f"the hub exited with status {proc.returncode}:\n{log_tail(log)}")


def _spawn_hub(data: Path, port: int, broker_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["LEGATO_MDNS_INTERFACES"] = HOST
    env["PYTHONUNBUFFERED"] = "1"
    # the bench drives hundreds of commands a second for one user: no per-user limits
    args = ["serve", "--data", str(data), "--port", str(port), "--rate-limits", "off"]
    args += ["--tls-port", str(free_port())]  # the speakers' HTTPS port: unused here
    args += ["--broker-url", broker_url, "--no-mdns", "--log-level", "WARNING"]
    with log.open("wb") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "hub", *args],
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
            start_new_session=True,  # Ctrl-C reaches us only; we stop the hub in order
        )


async def start_hub(
    stack: contextlib.AsyncExitStack, data: Path, broker_url: str, log: Path
) -> Hub:
    """Start the hub, wait until it is healthy, get a token; new ports if one was taken."""
    for attempt in range(PORT_ATTEMPTS):
        port = free_port()
        proc = _spawn_hub(data, port, broker_url, log)
        stack.callback(stop_process, proc)
        try:
            return Hub(proc, port, await _hub_token(f"http://{HOST}:{port}", proc, log), log)
        except BenchError:
            if attempt == PORT_ATTEMPTS - 1 or "Address already in use" not in log_tail(log):
                raise
    raise AssertionError("unreachable")


async def _hub_token(base: str, proc: subprocess.Popen[bytes], log: Path) -> str:
    """Wait for /healthz, then get a listener token with the password grant."""
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=10, trust_env=False) as http:
        deadline = time.monotonic() + 30
        while True:
            _check_alive(proc, log)
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/healthz")).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise BenchError(f"the hub was not healthy within 30 s:\n{log_tail(log)}")
            await asyncio.sleep(0.1)
        r = await http.post(
            "/api/token",
            data={"grant_type": "password", "username": LISTENER, "password": PASSWORD},
        )
        if r.status_code != 200:
            raise BenchError(f"POST /api/token: {r.status_code} {r.text}")
        return str(r.json()["access_token"])
