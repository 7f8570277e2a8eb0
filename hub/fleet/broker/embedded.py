"""The embedded broker: amqtt in a background thread, with Legato's users and ACL.

Used where running Mosquitto is not wanted (a quick demo, tests).  amqtt 0.12
speaks MQTT 3.1.1 only: a client asking for MQTT 5 gets CONNACK "unacceptable
protocol version".

How amqtt 0.12.1 treats what the ACL refuses (read from ``amqtt/broker.py`` and
checked by ``tests/test_broker_acl.py``), next to Mosquitto 2.0.11:

* CONNECT with a wrong, missing or unknown user/secret: CONNACK return code 5
  (not authorised), then the connection is closed.  Mosquitto: the same.
* A denied PUBLISH is acknowledged like any other (PUBACK for QoS 1; amqtt acks
  before the ACL runs) and silently dropped, logged at INFO; the connection
  stays up.  Mosquitto: the same.
* A denied SUBSCRIBE gets return code 0x80 for that filter in the SUBACK; the
  other filters of the packet are unaffected.  Mosquitto 2.0.11 differs: for an
  MQTT 3.1.1 client it grants the subscription, then delivers nothing the user
  may not read.  Either way nothing foreign arrives.
* Delivery (amqtt's ``Action.RECEIVE``) is checked too: allowed only where the
  receiver could have subscribed to that exact topic, as Mosquitto checks read
  rights on delivery.
* amqtt sends a client's will without any ACL check, so :class:`LegatoAclPlugin`
  refuses the CONNECT of a client whose will topic it may not publish to.
  Mosquitto accepts such a CONNECT and drops the will when it would be sent.

Bounds (amqtt has none of its own), so that a flood of idle or hostile sockets cannot
starve the hub the broker runs inside:

* at most ``max_connections`` connections at once; one more is closed at accept;
* a connection must finish its TLS handshake and its CONNECT within
  :data:`CONNECT_DEADLINE_S` (amqtt would wait for ever);
* no packet over :data:`MAX_PACKET_BYTES` (the 1 MiB message cap and headers) is
  read: the connection is closed at its length;
* a client other than the hub may publish :data:`PUBLISH_BURST` messages at once and
  :data:`PUBLISH_PER_S` a second after that; the rest are dropped like denied ones.

A TLS listener's handshake is bounded by the same deadline (asyncio's
``ssl_handshake_timeout``): an idle socket that never starts TLS is dropped then.

amqtt 0.12.1 looks up, replaces or deletes the session of a CONNECT's client id
*before* authenticating it: a client with a wrong password but a connected
speaker's client id would silently drop that speaker's subscriptions.
:class:`_LegatoBroker` therefore authenticates the CONNECT first and only then
runs amqtt's own session set-up (copied from ``Broker._initialize_client_session``;
amqtt is pinned to 0.12.1 for this).  A client's id must equal its user name
(Mosquitto's ``use_username_as_clientid``), so no login can take over the
hub's session or another speaker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from amqtt.adapters import ReaderAdapter, StreamReaderAdapter, StreamWriterAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext
from amqtt.errors import AMQTTError
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session
from amqtt.utils import gen_client_id

from connect_protocol.messages import MAX_MESSAGE_BYTES
from connect_protocol.topics import HUB_USERNAME
from hub.errors import BrokerError
from hub.fleet.broker.credentials import BrokerUser, may_publish, may_subscribe, verify_secret

logger = logging.getLogger(__name__)

UserLookup = Callable[[str], BrokerUser | None]

CONNECT_DEADLINE_S = 10.0
MAX_CONNECTIONS = 2000
MAX_PACKET_BYTES = MAX_MESSAGE_BYTES + 64 * 1024
PUBLISH_BURST = 200
PUBLISH_PER_S = 50.0
_MAX_BUCKETS = 10_000


class PublishBudget:
    """Token buckets per client id: ``burst`` at once, ``per_s`` a second after that."""

    def __init__(
        self,
        *,
        burst: int = PUBLISH_BURST,
        per_s: float = PUBLISH_PER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst, self.per_s, self.clock = burst, per_s, clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, client_id: str) -> bool:
        now = self.clock()
        tokens, then = self._buckets.get(client_id, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.per_s)
        allowed = tokens >= 1.0
        if len(self._buckets) >= _MAX_BUCKETS and client_id not in self._buckets:
            self._buckets.clear()  # bounded: a flood of ids starts everyone afresh
        self._buckets[client_id] = (tokens - 1.0 if allowed else tokens, now)
        return allowed


class PacketTooLarge(AMQTTError):  # type: ignore[misc]  # noqa: N818 - amqtt is untyped
    """A packet over the cap: its connection is closed (amqtt's reader loop ends on it)."""


class _CappedReader(StreamReaderAdapter):  # type: ignore[misc]  # amqtt is untyped
    """Refuses to read a packet longer than :data:`MAX_PACKET_BYTES` (before buffering it)."""

    async def read(self, n: int = -1) -> bytes:
        if n < 0 or n > MAX_PACKET_BYTES:
            raise PacketTooLarge(f"a packet of {n} bytes is over the {MAX_PACKET_BYTES} cap")
        data: bytes = await super().read(n)
        return data


class LegatoAclPlugin(BaseAuthPlugin, BaseTopicPlugin):  # type: ignore[misc]  # amqtt is untyped
    """amqtt plugin: authenticate against a user lookup, then apply the Legato ACL.

    The lookup is a callable handed over in the plugin's config
    (``{"plugins": {"hub.fleet.broker.embedded.LegatoAclPlugin": {"users": lookup}}}``):
    amqtt passes config values through untouched, so no module-level registry
    is needed.  It is called on every CONNECT and every ACL decision, from the
    broker's thread, so users added or removed at run time take effect at once
    (a removed user stays connected but may no longer do anything).  It must be
    thread-safe; ``dict.get`` is.
    """

    @dataclass
    class Config:
        # ``Any``: amqtt builds this with dacite, which cannot type-check callables.
        users: Any = None

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        users = self.config.users
        if not callable(users):
            raise TypeError("LegatoAclPlugin needs a callable 'users' in its config")
        self._users: UserLookup = users
        self._budget = PublishBudget()

    def _lookup(self, username: str | None) -> BrokerUser | None:
        if not username:
            return None
        try:
            user = self._users(username)
        except Exception:
            logger.exception("user lookup failed for %r", username)
            return None
        if user is None or user.username != username:
            return None
        return user

    async def authenticate(self, *, session: Session) -> bool:
        """True only for a known user with the right secret and a permitted will."""
        username: str | None = session.username
        password: str | bytes | None = session.password
        user = self._lookup(username)
        if isinstance(password, bytes):
            try:
                password = password.decode("utf-8")
            except UnicodeDecodeError:
                password = None
        ok = user is not None and password is not None and verify_secret(password, user.secret_hash)
        if ok and session.client_id != username:
            logger.warning(
                "refusing %r: client id %r is not its user name", username, session.client_id
            )
            ok = False
        if ok and session.will_flag and not may_publish(user, session.will_topic or ""):
            logger.warning("refusing %r: will topic %r not permitted", username, session.will_topic)
            ok = False
        if not ok:
            logger.info("authentication failed for user %r", username)
            # A stock amqtt Broker (not _LegatoBroker) copies a CONNECT's user name onto
            # the resumed session before authenticating: clear it so the ACL denies that
            # session everything until a good login.
            session.username = None
        return ok

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool:
        """Apply :func:`may_publish` / :func:`may_subscribe` to one action."""
        if session is None or topic is None:
            return False
        user = self._lookup(session.username)
        if action == Action.PUBLISH:
            allowed = may_publish(user, topic)
            if allowed and session.username != HUB_USERNAME:
                allowed = self._budget.take(str(session.client_id))
                if not allowed:
                    logger.info(
                        "over its publish budget: dropped %r from %r", topic, session.username
                    )
                    return False
        elif action in (Action.SUBSCRIBE, Action.RECEIVE):
            allowed = may_subscribe(user, topic)
        else:
            allowed = False
        if not allowed:
            logger.info("denied %s on %r for user %r", action, topic, session.username)
        return allowed


async def _close_quietly(writer: WriterAdapter) -> None:
    """Close a refused connection for sure.

    amqtt's ``StreamWriterAdapter.close`` drains first; when the peer is already
    gone the drain raises and the socket is never closed, so junk connections
    would leak a file descriptor each.
    """
    try:
        await writer.close()
    except Exception:
        raw = getattr(writer, "_writer", None)
        if raw is not None:
            raw.close()


class _LegatoBroker(Broker):  # type: ignore[misc]  # amqtt is untyped
    """amqtt's ``Broker``, authenticating a CONNECT before it touches any session, with
    the bounds the module lists."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        tls_listeners: dict[str, ssl.SSLContext],
        max_connections: int,
    ) -> None:
        super().__init__(config)
        self._tls_listeners = tls_listeners
        self._max_connections = max_connections
        self._open_connections = 0

    async def stream_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> None:
        if self._open_connections >= self._max_connections:
            logger.warning("refusing a connection: %d open", self._open_connections)
            writer.transport.abort()
            return
        self._open_connections += 1
        try:
            adapter = StreamWriterAdapter(writer)
            await self._client_connected(listener_name, _CappedReader(reader), adapter)
        finally:
            self._open_connections -= 1

    async def _create_server_instance(
        self,
        listener_name: str,
        listener_type: Any,
        address: str | None,
        port: int,
        ssl_context: ssl.SSLContext | None,
    ) -> asyncio.Server:
        """amqtt's TCP server, with our TLS context and a deadline on its handshake."""
        context = self._tls_listeners.get(listener_name, ssl_context)
        return await asyncio.start_server(
            partial(self.stream_connected, listener_name=listener_name),
            address,
            port,
            reuse_address=True,
            ssl=context,
            ssl_handshake_timeout=CONNECT_DEADLINE_S if context is not None else None,
        )

    async def _initialize_client_session(
        self,
        reader: ReaderAdapter,
        writer: WriterAdapter,
        remote_address: str,
        remote_port: int,
    ) -> tuple[BrokerProtocolHandler, Session]:
        # Errors raised here are amqtt's own (AMQTTError, MQTTError, NoDataError):
        # Broker._client_connected logs them and releases the connection.
        try:
            handler, session = await asyncio.wait_for(
                BrokerProtocolHandler.init_from_connect(reader, writer, self.plugins_manager),
                CONNECT_DEADLINE_S,
            )
        except TimeoutError:
            await _close_quietly(writer)
            raise AMQTTError(f"{remote_address}:{remote_port} sent no CONNECT in time") from None
        except Exception:
            await _close_quietly(writer)
            raise
        if not await self._authenticate(session, None):
            with contextlib.suppress(Exception):
                await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
            await _close_quietly(writer)
            raise AMQTTError(f"{remote_address}:{remote_port} not authorised")

        # From here on: amqtt 0.12.1's Broker._initialize_client_session, unchanged.
        if session.clean_session:
            if session.client_id:
                await self._delete_session(session.client_id)
            else:
                session.client_id = gen_client_id()
            session.parent = 0
        elif session.client_id in self._sessions:
            existing, _ = self._sessions[session.client_id]
            existing.will_flag = session.will_flag
            existing.will_message = session.will_message
            existing.will_topic = session.will_topic
            existing.will_qos = session.will_qos
            existing.keep_alive = session.keep_alive
            existing.username = session.username
            existing.password = session.password
            session = existing
            session.parent = 1
        else:
            session.parent = 0
        delay = self.config.get("timeout-disconnect-delay", 0)
        if session.keep_alive > 0 and isinstance(delay, int):
            session.keep_alive += delay
        return handler, session


class EmbeddedBroker:
    """amqtt's ``Broker`` on its own event loop in a daemon thread.

    ``users`` maps a user name to its :class:`BrokerUser` (or ``None``); see
    :class:`LegatoAclPlugin` for how it is used.  The listener is always bound
    explicitly to ``host`` (amqtt's default would be 0.0.0.0:1883).  ``port=0``
    picks a free port; read it from :attr:`port` after :meth:`start`.
    """

    def __init__(
        self,
        host: str,
        port: int,
        users: UserLookup,
        *,
        tls: tuple[Path, Path] | None = None,
        plain_port: int | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        if not host:
            raise ValueError("an explicit listener host is required")
        if ":" in host:
            # amqtt 0.12 keeps the brackets of "[::1]:port" in the address it binds.
            raise ValueError("amqtt cannot bind IPv6 literals; use an IPv4 address or a name")
        if not 0 <= port < 65536:
            raise ValueError(f"invalid port {port}")
        self.host = host
        self._requested_port = port
        self._port = port
        self._users = users
        self._tls = tls  # (certificate, key): the main listener is MQTT over TLS
        self._plain_port = plain_port  # an extra plain listener, when asked for
        self._max_connections = max_connections
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        """The port listened on (the real one once started, if 0 was asked)."""
        return self._port

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def tls(self) -> bool:
        return self._tls is not None

    def config(self) -> dict[str, Any]:
        """The amqtt broker config: TCP listeners on host (TLS is begun by
        :class:`_LegatoBroker` itself), only our plugin."""
        listeners: dict[str, Any] = {
            "default": {"type": "tcp", "bind": f"{self.host}:{self._requested_port}"},
        }
        if self._plain_port is not None:
            listeners["plain"] = {"type": "tcp", "bind": f"{self.host}:{self._plain_port}"}
        return {
            "listeners": listeners,
            "plugins": {f"{__name__}.LegatoAclPlugin": {"users": self._users}},
        }

    def _tls_contexts(self) -> dict[str, ssl.SSLContext]:
        if self._tls is None:
            return {}
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(*self._tls)
        return {"default": context}

    def start(self, timeout: float = 10.0) -> None:
        """Start the broker; block until it listens, or raise :class:`BrokerError`."""
        if self._thread is not None:
            raise BrokerError("embedded broker already started")
        self._ready.clear()
        self._error = None
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._stop_event = asyncio.Event()
        self._thread = threading.Thread(
            target=self._run,
            args=(loop,),
            name=f"amqtt-{self.host}:{self._requested_port}",
            daemon=True,
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise BrokerError(f"embedded broker did not start within {timeout}s")
        if self._error is not None:
            error = self._error
            self.stop()
            raise BrokerError(_describe_start_error(error, self.host, self._requested_port)) from (
                error
            )
        logger.info("embedded broker listening on %s:%s", self.host, self._port)

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the broker down cleanly and join its thread; idempotent."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None or loop is None or stop_event is None:
            return
        # RuntimeError: the loop has already finished (e.g. start failed).
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout)
        if thread.is_alive():
            raise BrokerError(f"embedded broker thread did not stop within {timeout}s")
        self._thread = None
        self._loop = None
        self._stop_event = None
        self._port = self._requested_port

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            with asyncio.Runner(loop_factory=lambda: loop) as runner:
                runner.run(self._serve())
        except BaseException as exc:  # report, never let the thread die silently
            if self._error is None:
                self._error = exc
            logger.exception("embedded broker thread failed")
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        assert self._stop_event is not None
        broker = _LegatoBroker(
            self.config(),
            tls_listeners=self._tls_contexts(),
            max_connections=self._max_connections,
        )
        try:
            await broker.start()
        except Exception as exc:
            self._error = exc
            self._ready.set()
            return
        self._port = _bound_port(broker, self._requested_port)
        self._ready.set()
        await self._stop_event.wait()
        logger.info("embedded broker on %s:%s shutting down", self.host, self._port)
        await broker.shutdown()

    def __enter__(self) -> Self:
        if self._thread is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _bound_port(broker: _LegatoBroker, requested: int) -> int:
    """The port actually bound, for ``port=0`` (reads amqtt internals, so guarded)."""
    if requested:
        return requested
    try:
        port: int = broker._servers["default"].instance.sockets[0].getsockname()[1]
    except (AttributeError, IndexError, KeyError) as exc:
        raise BrokerError("cannot tell which port amqtt bound") from exc
    return port


def _describe_start_error(error: BaseException, host: str, port: int) -> str:
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
            return f"port {host}:{port} is already in use"
        cause = cause.__cause__ or cause.__context__
    return f"embedded broker failed to start on {host}:{port}: {error}"


__all__ = ["EmbeddedBroker", "LegatoAclPlugin", "UserLookup"]
