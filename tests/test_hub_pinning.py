"""A speaker hands its secret only to the hub whose CA it pins.

Impostors on loopback (mDNS confined to 127.0.0.1): TLS servers holding a
certificate from another CA, recording every byte that reaches them decrypted, and
a plain socket recording every byte at all.  Real speaker processes start against
them; their broker password must never show up.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from connect_protocol import mdns
from device.config import ConfigError
from device.hub_link import UNPINNED, plan_from_record
from hub.fleet import pki, provisioning
from hub.server import open_database
from tests.brokers import free_port
from tests.system import Api, System, spawn, wait_for

pytestmark = [pytest.mark.integration]


@dataclass
class Trap:
    """A listener recording what clients send it: decrypted (``tls``) or raw."""

    tls: ssl.SSLContext | None
    port: int = field(default_factory=free_port)
    received: bytearray = field(default_factory=bytearray)
    connections: int = 0

    def __post_init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", self.port))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"trap-{self.port}")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.settimeout(2)
            try:
                if self.tls is not None:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                while chunk := conn.recv(65536):
                    self.received += chunk
            except (OSError, ssl.SSLError):
                pass  # a client that refused our certificate: nothing decrypted
            finally:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


def impostor_tls(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a certificate from another hub's CA (a rogue hub)."""
    rogue = pki.ensure_server_cert(tmp_path / "rogue-hub", ["127.0.0.1"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(rogue.cert, rogue.key)
    return context


@pytest.fixture
def paired(tmp_path: Path) -> tuple[Path, str, Path]:
    """A speaker paired with a (stopped) hub: (its config, its secret, the hub's data)."""
    data = tmp_path / "hub-data"
    db = open_database(data)
    secret = provisioning.add_broker_user(db, "porch", "speaker")
    config = tmp_path / "porch.toml"
    provisioning.write_speaker_config(
        config,
        device_id="porch",
        name="Porch",
        secret=secret,
        http_host="127.0.0.1",
        hub_ca=pki.ca_pem(data),
        engine="clock",
    )
    return config, secret, data


@contextmanager
def advertised_hub(https: int, mqtts: int, mqtt: int) -> Iterator[None]:
    """An impostor's hub record on loopback mDNS, from an event loop of its own."""
    record = mdns.ServiceRecord(
        kind="hub",
        id="hub-impostor",
        name="Legato hub on impostor",
        model="legato-hub",
        proto="1",
        fw="0.1.0",
        host="127.0.0.1",
        port=https,
        extra={"api": str(https), "https": str(https), "mqtts": str(mqtts), "mqtt": str(mqtt)},
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="impostor-mdns")
    thread.start()
    advertiser = mdns.Advertiser(record)
    try:
        asyncio.run_coroutine_threadsafe(advertiser.start(), loop).result(15)
        yield
    finally:
        asyncio.run_coroutine_threadsafe(advertiser.close(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_a_fake_hub_on_mdns_receives_no_secret_from_a_starting_speaker(
    tmp_path: Path, paired: tuple[Path, str, Path]
) -> None:
    config, secret, _data = paired
    https, mqtts = Trap(impostor_tls(tmp_path)), Trap(impostor_tls(tmp_path))
    plain = Trap(None)
    try:
        with advertised_hub(https.port, mqtts.port, plain.port):
            speaker = spawn(
                "porch",
                [sys.executable, "-m", "device", "--config", str(config)],
                tmp_path / "porch.log",
            )
            try:
                # it finds the impostor and asks its HTTPS port to prove it is the pinned
                # hub: the handshake fails, the impostor is skipped, and with no other
                # hub the speaker gives up (systemd starts it again)
                wait_for(lambda: https.connections >= 1, 30, "the speaker to try the impostor")
                wait_for(lambda: speaker.proc.poll() is not None, 30, "the speaker to give up")
            finally:
                speaker.stop()
            assert "none of them the one this speaker is paired with" in (
                (tmp_path / "porch.log").read_text()
            )
    finally:
        for trap in (https, mqtts, plain):
            trap.close()
    for trap in (https, mqtts, plain):
        assert secret.encode() not in bytes(trap.received)
        assert b"Authorization" not in bytes(trap.received)
    assert mqtts.connections == 0  # an unproven hub's broker is not even dialled
    assert plain.connections == 0  # a plain port taken from the network: never


def test_a_speaker_pinning_no_ca_pairs_with_no_hub_it_finds(
    tmp_path: Path, paired: tuple[Path, str, Path]
) -> None:
    config, secret, _data = paired
    unpinned = tmp_path / "unpinned.toml"
    unpinned.write_text(
        "\n".join(line for line in config.read_text().splitlines() if "ca_file" not in line)
    )
    plain = Trap(None)
    try:
        with advertised_hub(plain.port, plain.port, plain.port):
            speaker = spawn(
                "porch",
                [sys.executable, "-m", "device", "--config", str(unpinned)],
                tmp_path / "porch.log",
            )
            try:
                wait_for(lambda: speaker.proc.poll() is not None, 20, "the speaker to refuse")
            finally:
                speaker.stop()
    finally:
        plain.close()
    assert plain.connections == 0
    assert secret.encode() not in bytes(plain.received)
    assert "pins no hub certificate authority" in (tmp_path / "porch.log").read_text()


def test_a_speaker_with_a_pinned_hub_refuses_a_hub_with_another_certificate(
    tmp_path: Path, paired: tuple[Path, str, Path]
) -> None:
    config, secret, _data = paired
    rogue = Trap(impostor_tls(tmp_path))
    named = tmp_path / "named.toml"
    named.write_text(
        config.read_text().replace('url = ""', f'url = "https://127.0.0.1:{rogue.port}"')
    )
    speaker = spawn(
        "porch", [sys.executable, "-m", "device", "--config", str(named)], tmp_path / "porch.log"
    )
    try:
        wait_for(lambda: speaker.proc.poll() is not None, 20, "the speaker to refuse the hub")
    finally:
        speaker.stop()
        rogue.close()
    assert rogue.connections >= 1
    assert secret.encode() not in bytes(rogue.received)
    assert rogue.received == bytearray()  # no request got past the handshake
    assert "certificate verify failed" in (tmp_path / "porch.log").read_text()


def test_what_a_hub_record_may_and_may_not_make_a_speaker_do() -> None:
    with pytest.raises(ConfigError, match="pins no hub certificate"):
        plan_from_record("10.0.0.5", {"https": "8443"}, pinned=False)
    with pytest.raises(ConfigError, match="no HTTPS port"):
        plan_from_record("10.0.0.5", {"mqtt": "1883", "api": "8000"}, pinned=True)
    plan = plan_from_record("10.0.0.5", {"https": "8443", "mqtts": "8883"}, pinned=True)
    assert (plan.hub_url, plan.broker_url) == ("https://10.0.0.5:8443", "mqtts://10.0.0.5:8883")
    only_https = plan_from_record("10.0.0.5", {"https": "8443", "mqtt": "1883"}, pinned=True)
    assert only_https.broker_url is None  # asked over HTTPS, never a plain port from mDNS
    assert "pins no hub" in UNPINNED


def test_beside_an_impostor_the_speaker_finds_its_own_hub(tmp_path: Path) -> None:
    """Two hubs on the network (here an impostor that answers at once): the speaker
    skips the one that cannot prove itself and pairs with its own."""
    system = System(tmp_path / "real", embedded=True, mdns=True)
    secret = provisioning.add_broker_user(system.db, "porch", "speaker")
    config = tmp_path / "porch.toml"
    provisioning.write_speaker_config(
        config,
        device_id="porch",
        name="Porch",
        secret=secret,
        http_host="127.0.0.1",
        hub_ca=system.tls.ca_pem,
        engine="clock",
    )
    https, mqtts = Trap(impostor_tls(tmp_path)), Trap(impostor_tls(tmp_path))
    try:
        with advertised_hub(https.port, mqtts.port, mqtts.port):
            system.start_hub()
            system.configs["porch"] = config
            system.start_speaker("porch")
            api = Api(system)
            try:
                api.wait_online("porch")
            finally:
                api.close()
    finally:
        system.stop()
        for trap in (https, mqtts):
            trap.close()
    assert secret.encode() not in bytes(https.received) + bytes(mqtts.received)
    assert mqtts.connections == 0
