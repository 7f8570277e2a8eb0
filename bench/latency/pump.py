"""paho clients driven from an asyncio loop through paho's external-loop API.

No network thread per client: the loop watches each socket and calls ``loop_read``,
``loop_write`` and ``loop_misc``.  Every client sets TCP_NODELAY on its socket as the
product's ``connect_protocol/mqtt.py`` does (``on_socket_open``), so the bench's speakers
and probe send small packets at once, like the real ones.  Over TLS a client is given a
context as the product's ``MqttTransport`` gives it one (``tls_set_context``, the hub's CA
pinned); paho then does the handshake in ``connect``, blocking (a loopback round trip).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from connect_protocol.mqtt import no_delay

KEEPALIVE_S = 30


def new_client(username: str, secret: str, tls: ssl.SSLContext | None = None) -> paho.Client:
    """An MQTT 3.1.1 client logged in as ``username`` (the broker requires id == user name),
    over TLS with ``tls`` (one context can serve every client of a process)."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=username,
        protocol=paho.MQTTv311,
        clean_session=True,
    )
    client.username_pw_set(username, secret)
    if tls is not None:
        client.tls_set_context(tls)
    client.on_socket_open = no_delay
    return client


class LoopPump:
    """Runs one paho client on the running asyncio loop, with no network thread.

    Reads when the socket is readable; writes at once after every read (publishes made in
    paho callbacks are only queued), and watches for writability only while the kernel
    buffer is full.  That keeps it to the syscalls paho itself needs.  Over TLS a read may
    leave decrypted bytes in the SSL object, which no readiness event announces: it reads
    on until none are pending, as paho's own loop does.
    """

    __slots__ = ("_sock", "_writing", "after_read", "client", "errors", "loop")

    def __init__(
        self, client: paho.Client, loop: asyncio.AbstractEventLoop, errors: list[str]
    ) -> None:
        self.client = client
        self.after_read: Callable[[], None] | None = None
        self.loop = loop
        self.errors = errors
        self._sock: Any = None
        self._writing = False
        client.on_socket_close = self._on_socket_close

    @property
    def attached(self) -> bool:
        return self._sock is not None

    def connect(self, host: str, port: int) -> None:
        """TCP connect and send CONNECT (blocking only for a loopback connect())."""
        self.client.connect(host, port, KEEPALIVE_S)
        self._sock = self.client.socket()
        self.loop.add_reader(self._sock, self._readable)
        self.flush()

    def disconnect(self) -> None:
        if self.attached:
            self.client.disconnect()
            self.flush()

    def _readable(self) -> None:
        try:
            self.client.loop_read()
            while isinstance(self._sock, ssl.SSLSocket) and self._sock.pending():
                self.client.loop_read()
            self.flush()
            if self.after_read is not None:
                self.after_read()
                self.flush()
        except Exception as exc:  # a bug in a callback: report it, keep the worker up
            self.errors.append(f"{type(exc).__name__}: {exc}")

    def _writable(self) -> None:
        self.client.loop_write()
        self.flush()

    def flush(self) -> None:
        client = self.client
        if client.want_write():
            client.loop_write()
        want = self._sock is not None and client.want_write()
        if want != self._writing:
            if want:
                self.loop.add_writer(self._sock, self._writable)
            else:
                self.loop.remove_writer(self._sock)
            self._writing = want

    def misc(self) -> None:
        """Keepalive pings; paho wants this about once a second."""
        if self._sock is not None:
            self.client.loop_misc()
            self.flush()

    def _on_socket_close(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        self.loop.remove_reader(sock)
        if self._writing:
            self.loop.remove_writer(sock)
            self._writing = False
        self._sock = None


async def keep_alive(pumps: Sequence[LoopPump]) -> None:
    """Call every pump's ``misc`` once a second, until cancelled."""
    while True:
        await asyncio.sleep(1.0)
        for pump in pumps:
            pump.misc()
