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
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext
from amqtt.errors import AMQTTError
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session
from amqtt.utils import gen_client_id

from hub.errors import BrokerError
from hub.fleet.broker.credentials import BrokerUser, may_publish, may_subscribe, verify_secret

logger = logging.getLogger(__name__)

UserLookup = Callable[[str], BrokerUser | None]


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
    """amqtt's ``Broker``, authenticating a CONNECT before it touches any session."""

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
            handler, session = await BrokerProtocolHandler.init_from_connect(
                reader, writer, self.plugins_manager
            )
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

    def __init__(self, host: str, port: int, users: UserLookup) -> None:
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

    def config(self) -> dict[str, Any]:
        """The amqtt broker config: one TCP listener on host:port, only our plugin."""
        return {
            "listeners": {
                "default": {"type": "tcp", "bind": f"{self.host}:{self._requested_port}"},
            },
            "plugins": {f"{__name__}.LegatoAclPlugin": {"users": self._users}},
        }

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
        broker = _LegatoBroker(self.config())
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
