"""Test helpers: start either broker on a free loopback port, and talk to it with paho.

Plain functions and classes, no pytest, so any test module or fixture can use
them: ``from tests.brokers import ...``.

* :func:`start_mosquitto` / :func:`start_embedded` start one broker;
  :func:`start_broker` starts either behind one :class:`RunningBroker` handle,
  which also knows every user's secret and can add users at run time.
* :class:`MqttClient` is a paho 2.x client (MQTT 3.1.1) with bounded, blocking
  connect/subscribe/publish and a thread-safe record of what it received.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import threading
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from hub.fleet.broker import (
    BrokerError,
    BrokerUser,
    EmbeddedBroker,
    MosquittoProcess,
    Role,
    hash_secret,
    new_secret,
    write_mosquitto_config,
)

LOOPBACK = "127.0.0.1"
BrokerKind = Literal["mosquitto", "embedded"]
BROKER_KINDS: tuple[BrokerKind, ...] = ("mosquitto", "embedded")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_EPHEMERAL_LOW = _ephemeral_low()
_handed_out: set[int] = set()
_ports_lock = threading.Lock()


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago, for a server started later.

    Taken below the kernel's ephemeral range (``bind(0)`` would give one inside it), so
    the outgoing connections of the test's other processes cannot take it in the
    meantime; never the same port twice in one test run.
    """
    with _ports_lock:
        for _ in range(1000):
            port = random.randrange(10000, max(10001, _EPHEMERAL_LOW))
            if port in _handed_out:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((LOOPBACK, port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port
    raise RuntimeError("no free loopback port below the ephemeral range")


def have_mosquitto() -> bool:
    return shutil.which("mosquitto") is not None


def make_user(username: str, role: Role) -> tuple[BrokerUser, str]:
    """A new user with a fresh secret: (user, secret)."""
    secret = new_secret()
    return BrokerUser(username=username, role=role, secret_hash=hash_secret(secret)), secret


def start_mosquitto(
    tmp_path: Path, users: Iterable[BrokerUser], *, host: str = LOOPBACK
) -> MosquittoProcess:
    """Write a config into ``tmp_path`` and start Mosquitto on a free port.

    Retries on a new port if another process grabbed the chosen one meanwhile.
    """
    user_list = list(users)
    for attempt in range(3):
        port = free_port()
        conf = write_mosquitto_config(tmp_path, port=port, host=host, users=user_list)
        proc = MosquittoProcess(conf, port=port, host=host)
        try:
            proc.start()
        except BrokerError:
            if attempt == 2:
                raise
            continue
        return proc
    raise AssertionError("unreachable")


def start_embedded(
    users: MutableMapping[str, BrokerUser], *, host: str = LOOPBACK, port: int = 0
) -> EmbeddedBroker:
    """Start the amqtt broker; it looks users up in ``users`` live, so adding to it works."""
    broker = EmbeddedBroker(host, port, users.get)
    broker.start()
    return broker


@dataclass
class RunningBroker:
    """Either broker, started, with every user's secret at hand."""

    kind: BrokerKind
    host: str
    port: int
    users: dict[str, BrokerUser]
    secrets: dict[str, str]
    directory: Path
    mosquitto: MosquittoProcess | None = None
    embedded: EmbeddedBroker | None = None

    def add_user(self, username: str, role: Role) -> str:
        """Add a user while the broker runs; returns its secret.

        For Mosquitto this rewrites ``passwd``/``acl`` and sends SIGHUP, which
        takes effect a few milliseconds later (poll with :meth:`MqttClient.connect`).
        """
        user, secret = make_user(username, role)
        self.users[username] = user
        self.secrets[username] = secret
        if self.mosquitto is not None:
            write_mosquitto_config(
                self.directory, port=self.port, host=self.host, users=self.users.values()
            )
            self.mosquitto.reload()
        return secret

    def stop(self) -> None:
        if self.mosquitto is not None:
            self.mosquitto.stop()
        if self.embedded is not None:
            self.embedded.stop()


def start_broker(
    kind: BrokerKind, tmp_path: Path, users: Iterable[tuple[str, Role]]
) -> RunningBroker:
    """Start a ``kind`` broker with fresh secrets for ``users`` (name, role)."""
    made = {name: make_user(name, role) for name, role in users}
    user_map = {name: user for name, (user, _) in made.items()}
    secrets = {name: secret for name, (_, secret) in made.items()}
    if kind == "mosquitto":
        proc = start_mosquitto(tmp_path, user_map.values())
        return RunningBroker(
            kind, proc.host, proc.port, user_map, secrets, tmp_path, mosquitto=proc
        )
    broker = start_embedded(user_map)
    return RunningBroker(
        kind, broker.host, broker.port, user_map, secrets, tmp_path, embedded=broker
    )


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


@dataclass
class MqttClient:
    """A paho client whose every step is a bounded blocking call."""

    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    will: tuple[str, bytes] | None = None
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self._connack: ReasonCode | None = None
        self._subacks: dict[int, list[ReasonCode]] = {}
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv311,
            reconnect_on_failure=False,
        )
        if self.username is not None:
            self._client.username_pw_set(self.username, self.password)
        if self.will is not None:
            self._client.will_set(self.will[0], self.will[1], qos=1)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._loop_started = False

    # paho callbacks (paho's network thread)
    def _on_connect(
        self, _c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object
    ) -> None:
        with self._cond:
            self._connack = rc
            self._cond.notify_all()

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, mid: int, rcs: list[ReasonCode], _p: object
    ) -> None:
        with self._cond:
            self._subacks[mid] = list(rcs)
            self._cond.notify_all()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.received.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._cond.notify_all()

    def _wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def connect(self, timeout: float = 5.0) -> ReasonCode:
        """Connect and return the CONNACK reason code (refusals included)."""
        self._client.connect(self.host, self.port, keepalive=30)
        self._client.loop_start()
        self._loop_started = True
        if not self._wait(lambda: self._connack is not None, timeout):
            raise TimeoutError(f"no CONNACK for {self.client_id} within {timeout}s")
        assert self._connack is not None
        return self._connack

    def subscribe(self, *filters: str, qos: int = 1, timeout: float = 5.0) -> list[ReasonCode]:
        """Subscribe and return one SUBACK code per filter (``is_failure`` for 0x80)."""
        result, mid = self._client.subscribe([(f, qos) for f in filters])
        if result != mqtt.MQTT_ERR_SUCCESS or mid is None:
            raise RuntimeError(f"subscribe failed: {result}")
        if not self._wait(lambda: mid in self._subacks, timeout):
            raise TimeoutError(f"no SUBACK within {timeout}s")
        return self._subacks[mid]

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        timeout: float = 5.0,
    ) -> None:
        """Publish and wait for the broker's acknowledgement (QoS 1: PUBACK)."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout)

    def wait_for(self, topic: str, payload: bytes | None = None, timeout: float = 5.0) -> bool:
        """Block until a message on ``topic`` (with ``payload``, if given) has arrived."""
        return self._wait(lambda: self.has(topic, payload), timeout)

    def has(self, topic: str, payload: bytes | None = None) -> bool:
        with self._cond:
            return any(
                m.topic == topic and (payload is None or m.payload == payload)
                for m in self.received
            )

    def payloads(self, topic: str) -> list[bytes]:
        with self._cond:
            return [m.payload for m in self.received if m.topic == topic]

    def drop_connection(self) -> None:
        """Close the socket without DISCONNECT, as a crashed device would (fires the will)."""
        sock = self._client.socket()
        if isinstance(sock, socket.socket):
            # shutdown() rather than close(): paho's thread sees the loss and ends at once
            # (no reconnects configured), so loop_stop() need not wait out its select.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._loop_started:
            self._client.loop_stop()
            self._loop_started = False

    def close(self) -> None:
        """Disconnect cleanly and stop paho's thread; idempotent."""
        if self._loop_started:
            self._client.disconnect()
            self._client.loop_stop()
            self._loop_started = False
        # After a refused CONNACK paho's thread ends by itself and nothing closes the
        # connection or the wake-up socket pair loop_start() made; paho's __del__
        # would, but garbage collection may finalise the sockets first.
        self._client._reset_sockets()


def client_for(
    broker: RunningBroker,
    username: str,
    *,
    client_id: str | None = None,
    password: str | None = None,
    will: tuple[str, bytes] | None = None,
) -> MqttClient:
    """A (not yet connected) client for ``username``, with its real secret by default."""
    return MqttClient(
        broker.host,
        broker.port,
        client_id or username,  # both brokers tie a client id to its user name
        username=username,
        password=broker.secrets[username] if password is None else password,
        will=will,
    )
