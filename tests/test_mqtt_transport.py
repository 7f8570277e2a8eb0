"""The MQTT transport's reconnect policy against a broker that keeps failing."""

from __future__ import annotations

import itertools
import socket
import threading
import time

import pytest

from connect_protocol.backoff import Backoff
from connect_protocol.mqtt import BrokerAddress, MqttTransport

pytestmark = pytest.mark.integration


class SlammingBroker:
    """Accepts TCP connections and closes them at once, noting when each came."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slamming-broker")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.times.append(time.monotonic())
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def test_reconnects_back_off_with_jitter() -> None:
    brokers = [SlammingBroker(), SlammingBroker()]
    policy = Backoff(initial_s=0.1, maximum_s=0.8, factor=2.0)
    clients = [
        MqttTransport(
            BrokerAddress(host="127.0.0.1", port=b.port, username="u", password="p"),
            client_id=f"c{i}",
            backoff=policy,
        )
        for i, b in enumerate(brokers)
    ]
    try:
        for c in clients:
            c.start()
        time.sleep(4.0)
    finally:
        for c in clients:
            c.stop(graceful=False)
        for b in brokers:
            b.close()
    gaps = [[b - a for a, b in itertools.pairwise(broker.times)] for broker in brokers]
    for client, g in zip(clients, gaps, strict=True):
        # A fixed 0.1 s retry would make ~40 attempts in 4 s; backing off to 0.4-0.8 s, ~8.
        assert 4 <= len(g) <= 14, g
        assert client.attempts >= 4
        assert min(g[-3:]) >= 0.35, g  # grown to the cap (0.8 s x jitter in [0.5, 1))
        assert max(g) <= 0.8 + 0.3, g
    # Jitter: two speakers that lost the broker together do not retry in step.
    assert [round(x, 2) for x in gaps[0][:4]] != [round(x, 2) for x in gaps[1][:4]]
