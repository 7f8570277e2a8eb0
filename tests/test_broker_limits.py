"""What hostile clients cannot do to the brokers (and through the embedded one, to the hub).

A real hub process with its embedded broker over TLS for the flood of idle sockets;
the embedded broker on its own for packet sizes and publish budgets; Mosquitto's
written config for its bounds.
"""

from __future__ import annotations

import resource
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connect_protocol.topics import HUB_USERNAME, Channel, device_topic
from hub.fleet.broker.embedded import CONNECT_DEADLINE_S, PUBLISH_BURST, PUBLISH_PER_S
from hub.fleet.broker.mosquitto import MAX_PACKET_BYTES, write_mosquitto_config
from tests.brokers import client_for, make_user, start_broker
from tests.system import Api, System, wait_for

pytestmark = [pytest.mark.integration]

IDLE = 2000


@pytest.fixture
def many_files() -> Iterator[None]:
    """This test process holds the idle sockets, so it needs the files too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, IDLE * 2 + 1024), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_two_thousand_idle_connections_do_not_stop_the_hub_and_are_dropped(
    tmp_path: Path, many_files: None
) -> None:
    system = System(tmp_path, embedded=True)
    with system.running("kitchen"):
        idle: list[socket.socket] = []
        try:
            for _ in range(IDLE):
                idle.append(socket.create_connection(("127.0.0.1", system.mqtt_port), timeout=5))
            opened = time.monotonic()
            # the Web API answers all along
            for _ in range(3):
                r = httpx.get(f"{system.url}/healthz", timeout=2)
                assert r.status_code == 200, r.text
                time.sleep(0.5)
            closed: set[int] = set()

            def all_dropped() -> bool:
                for n, sock in enumerate(idle):
                    if n in closed:
                        continue
                    try:
                        if sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                            closed.add(n)
                    except BlockingIOError:
                        continue
                    except ConnectionResetError:
                        closed.add(n)
                return len(closed) == len(idle)

            wait_for(all_dropped, CONNECT_DEADLINE_S + 30, "the idle sockets to be dropped")
            assert time.monotonic() - opened >= CONNECT_DEADLINE_S - 1  # not before the deadline
            assert httpx.get(f"{system.url}/healthz", timeout=2).status_code == 200
            # and the speaker, connected before the flood, is still online
            api = Api(system)
            assert api.devices()["kitchen"]["is_online"] is True
            api.close()
        finally:
            for sock in idle:
                sock.close()


def _connect_packet(client_id: str, user: str, password: str) -> bytes:
    def string(text: str) -> bytes:
        data = text.encode()
        return struct.pack("!H", len(data)) + data

    variable = string("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 30)
    payload = string(client_id) + string(user) + string(password)
    body = variable + payload
    return bytes([0x10, len(body)]) + body


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_a_packet_over_the_cap_closes_its_connection_before_it_is_read(tmp_path: Path) -> None:
    broker = start_broker("embedded", tmp_path, [(HUB_USERNAME, "hub"), ("porch", "speaker")])
    try:
        sock = socket.create_connection((broker.host, broker.port), timeout=5)
        sock.sendall(_connect_packet("porch", "porch", broker.secrets["porch"]))
        assert sock.recv(4)[:1] == b"\x20"  # CONNACK
        # a PUBLISH announcing 200 MB: the broker must not wait to buffer it
        sock.sendall(b"\x30" + _remaining_length(200 * 1024 * 1024) + b"\x00\x05topic")
        sock.settimeout(5)
        assert sock.recv(1) == b""
        sock.close()
        # everyone else is still served
        other = client_for(broker, HUB_USERNAME)
        other.connect()
        other.close()
    finally:
        broker.stop()


def test_a_client_cannot_flood_the_hub_with_publishes(tmp_path: Path) -> None:
    broker = start_broker("embedded", tmp_path, [(HUB_USERNAME, "hub"), ("porch", "speaker")])
    hub, porch = client_for(broker, HUB_USERNAME), client_for(broker, "porch")
    try:
        hub.connect()
        topic = device_topic("porch", Channel.EVENTS)
        hub.subscribe(topic)
        porch.connect()
        started = time.monotonic()
        sent = 3 * PUBLISH_BURST
        for n in range(sent):
            porch.publish(topic, f'{{"n": {n}}}'.encode(), qos=0)
        porch.publish(topic, b'{"n": "last"}', qos=1)  # waits for the broker: all sent
        elapsed = time.monotonic() - started
        time.sleep(0.5)
        allowed = PUBLISH_BURST + PUBLISH_PER_S * (elapsed + 0.5) + 1
        got = len(hub.payloads(topic))
        assert got <= allowed, (got, allowed)
        assert got >= PUBLISH_BURST  # the burst itself goes through
    finally:
        porch.close()
        hub.close()
        broker.stop()


def test_mosquittos_config_bounds_packets_and_connections(tmp_path: Path) -> None:
    user, _secret = make_user("porch", "speaker")
    conf = write_mosquitto_config(tmp_path, port=18830, users=[user]).read_text()
    assert f"max_packet_size {MAX_PACKET_BYTES}" in conf
    assert "max_connections 2000" in conf
