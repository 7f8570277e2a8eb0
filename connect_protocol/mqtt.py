"""A thin paho-mqtt 2.x adapter with Legato's connection policy.

What it adds to paho: MQTT 3.1.1 only (the embedded broker speaks nothing
newer); reconnect with exponential back-off and jitter from
``connect_protocol.backoff``; a last will; subscriptions and an ``on_connect``
hook replayed after every reconnect, so retained status and state are
published again; and an asyncio face (``AsyncMqtt``) so callers never block
their event loop on the network.  Messages are delivered as raw bytes: parsing
is the sans-I/O codec's job.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from connect_protocol.backoff import Backoff
from connect_protocol.errors import NotConnectedError, PayloadTooLargeError, TransportError
from connect_protocol.messages import MAX_MESSAGE_BYTES
from connect_protocol.tls import pinned_context

logger = logging.getLogger(__name__)

DEFAULT_BACKOFF = Backoff(initial_s=1.0, maximum_s=30.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerAddress:
    """Where a broker is and how to log in: ``tls`` says MQTT over TLS, verified against
    ``ca_pem`` (a pinned CA; the system's CAs when empty)."""

    host: str
    port: int
    username: str
    password: str = field(repr=False)
    tls: bool = False
    ca_pem: str = field(default="", repr=False)

    @classmethod
    def parse(
        cls, url: str, *, username: str = "", password: str = "", ca_pem: str = ""
    ) -> BrokerAddress:
        """``mqtt://`` (plain, port 1883) or ``mqtts://`` (TLS, port 8883)
        ``[user:pass@]host:port``; credentials in the URL win."""
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(url if "://" in url else f"mqtt://{url}")
        if parts.scheme not in SCHEMES:
            raise ValueError(
                f"unsupported broker URL scheme {parts.scheme!r} (use mqtts:// or mqtt://)"
            )
        if not parts.hostname:
            raise ValueError(f"broker URL {url!r} has no host")
        tls = SCHEMES[parts.scheme]
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else username,
            password=unquote(parts.password) if parts.password else password,
            tls=tls,
            ca_pem=ca_pem,
        )

    @property
    def url(self) -> str:
        """The address without credentials, for logs and messages."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        return pinned_context(self.ca_pem) if self.ca_pem else ssl.create_default_context()


#: URL schemes and whether each is TLS.
SCHEMES = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True}


@dataclass(frozen=True, slots=True, kw_only=True)
class Will:
    topic: str
    payload: bytes
    retain: bool = True


@dataclass(frozen=True, slots=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


def no_delay(_client: paho.Client, _userdata: Any, sock: Any) -> None:
    """Send small packets at once.

    MQTT control messages are tiny; with Nagle's algorithm on, each waits for
    the peer's delayed ACK (~40 ms on Linux), which alone made a command's round
    trip ~90 ms instead of ~2 ms (see bench/README.md).
    """
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class MqttTransport:
    """One broker connection, kept alive by a paho network thread.

    ``on_message`` and ``on_connected`` run on paho's thread: keep them short
    (``AsyncMqtt`` hands messages over to an event loop).
    """

    def __init__(
        self,
        address: BrokerAddress,
        *,
        client_id: str,
        subscriptions: Iterable[str] = (),
        will: Will | None = None,
        on_message: Callable[[Received], None] | None = None,
        on_connected: Callable[[], None] | None = None,
        on_disconnected: Callable[[], None] | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        keepalive_s: int = 30,
    ) -> None:
        self._address = address
        self._subscriptions = list(subscriptions)
        self._on_message = on_message
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._backoff = backoff
        self._attempt = 0
        self._keepalive_s = keepalive_s
        self._connected = threading.Event()
        self._stopping = False
        self._refused: str | None = None
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv311,
            clean_session=True,
        )
        if address.username:
            self._client.username_pw_set(address.username, address.password)
        if address.tls:
            self._client.tls_set_context(address.ssl_context())
        if will is not None:
            self._client.will_set(will.topic, will.payload, qos=1, retain=will.retain)
        self._client.on_socket_open = no_delay
        self._client.on_connect = self._handle_connect
        self._client.on_connect_fail = self._handle_connect_fail
        self._client.on_disconnect = self._handle_disconnect
        self._client.on_message = self._handle_message
        self._client.suppress_exceptions = True  # a callback bug must not kill the network thread
        self._arm_next_wait()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def refused_reason(self) -> str | None:
        """Why the broker last refused us (bad credentials, ...), if it did."""
        return self._refused

    def start(self) -> None:
        """Connect in the background; reconnects happen by themselves."""
        self._client.connect_async(self._address.host, self._address.port, self._keepalive_s)
        self._client.loop_start()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def stop(self, *, graceful: bool = True) -> None:
        """Disconnect (the will is not sent on a clean disconnect) and join the thread."""
        self._stopping = True
        if graceful and self._connected.is_set():
            self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        # Release the connection and the wake-up socket pair loop_start() made: paho
        # only does so in __del__, which garbage collection may run after the
        # sockets themselves are finalised (a ResourceWarning, an fd held meanwhile).
        self._client._reset_sockets()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False, qos: int = 1) -> None:
        """Queue a publish; raises ``NotConnectedError`` while the broker is away."""
        if len(payload) > MAX_MESSAGE_BYTES:
            raise PayloadTooLargeError(
                f"payload of {len(payload)} bytes exceeds {MAX_MESSAGE_BYTES}"
            )
        if not self._connected.is_set():
            raise NotConnectedError(f"not connected to {self._address.host}:{self._address.port}")
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise TransportError(f"publish to {topic} failed: {paho.error_string(info.rc)}")

    # --- paho callbacks (network thread) -------------------------------------

    def _arm_next_wait(self) -> None:
        """Arm paho's next reconnect wait with our jittered delay for ``_attempt``.

        Pinning paho's min and max to the same value makes it wait exactly that
        long (paho sleeps in float seconds, whatever its ``int`` hint says).
        """
        delay = self._backoff.delay_s(self._attempt, random.random())
        self._client.reconnect_delay_set(min_delay=delay, max_delay=delay)  # type: ignore[arg-type]

    @property
    def attempts(self) -> int:
        """Failed attempts since the last successful connection."""
        return self._attempt

    def _handle_connect(
        self, client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            logger.warning(
                "broker %s:%s refused connection: %s",
                self._address.host,
                self._address.port,
                reason,
            )
            return
        self._refused = None
        self._attempt = 0
        self._arm_next_wait()
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        self._connected.set()
        logger.info("connected to broker %s:%s", self._address.host, self._address.port)
        if self._on_connected is not None:
            try:
                self._on_connected()
            except Exception:
                logger.exception("on_connected hook failed")

    def _handle_connect_fail(self, _client: paho.Client, _userdata: Any) -> None:
        self._arm_next_wait()
        self._attempt += 1

    def _handle_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        self._arm_next_wait()
        self._attempt += 1
        if was_connected and not self._stopping:
            logger.warning("lost broker connection (%s); reconnecting", reason)
            if self._on_disconnected is not None:
                try:
                    self._on_disconnected()
                except Exception:
                    logger.exception("on_disconnected hook failed")

    def _handle_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        if self._on_message is None:
            return
        try:
            self._on_message(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))
        except Exception:
            logger.exception("message handler failed for %s", msg.topic)


class AsyncMqtt:
    """``MqttTransport`` delivering messages into an asyncio queue.

    Messages arrive in order on ``messages``; connection changes are reported
    through ``on_connected``/``on_disconnected`` called on the event loop.
    """

    def __init__(
        self,
        address: BrokerAddress,
        *,
        client_id: str,
        subscriptions: Iterable[str] = (),
        will: Will | None = None,
        on_connected: Callable[[], None] | None = None,
        on_disconnected: Callable[[], None] | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        max_pending: int = 10_000,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self.messages: asyncio.Queue[Received] = asyncio.Queue(max_pending)
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._dropped = 0
        self.transport = MqttTransport(
            address,
            client_id=client_id,
            subscriptions=subscriptions,
            will=will,
            on_message=self._from_thread,
            on_connected=lambda: self._call_soon(self._on_connected),
            on_disconnected=lambda: self._call_soon(self._on_disconnected),
            backoff=backoff,
        )

    def _call_soon(self, fn: Callable[[], None] | None) -> None:
        if fn is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn)

    def _from_thread(self, msg: Received) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._enqueue, msg)

    def _enqueue(self, msg: Received) -> None:
        try:
            self.messages.put_nowait(msg)
        except asyncio.QueueFull:
            self._dropped += 1
            logger.error("inbound queue full: dropped message on %s", msg.topic)

    @property
    def connected(self) -> bool:
        return self.transport.connected

    async def start(self, *, wait_s: float | None = None) -> None:
        """Start connecting; with ``wait_s``, also wait for the first connection."""
        self.transport.start()
        if wait_s is not None:
            ok = await asyncio.to_thread(self.transport.wait_connected, wait_s)
            if not ok:
                why = self.transport.refused_reason or "no answer"
                raise TransportError(f"could not connect to the broker within {wait_s} s ({why})")

    def publish(self, topic: str, payload: bytes, *, retain: bool = False, qos: int = 1) -> None:
        self.transport.publish(topic, payload, retain=retain, qos=qos)

    async def stop(self) -> None:
        await asyncio.to_thread(self.transport.stop)
