"""One D-Bus connection to avahi-daemon that follows the daemon as it comes and goes.

avahi's objects (entry groups, browsers, resolvers) belong to the D-Bus client
that made them and die with the daemon, so whoever holds them must know when
avahi is *running* (its name has an owner whose server state is ``RUNNING``) and
when it stopped.  :class:`AvahiBus` tells its owner through two callbacks,
``on_up()`` and ``on_down(gone)``: ``gone`` is true when the daemon (or the bus)
went away and every object path is dead, false when the daemon is only
re-registering its host name and asks its clients to withdraw until it runs
again.  A lost bus connection is retried with :class:`~connect_protocol.backoff.Backoff`.

avahi sends an object's signals to its client only (unicast), possibly before
the reply that names the object has been read, so signals for paths nobody
watches yet are kept briefly and replayed by :meth:`AvahiBus.watch`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Sequence
from enum import IntEnum
from typing import Any, Final

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus

from connect_protocol.backoff import Backoff
from connect_protocol.errors import MdnsError

logger = logging.getLogger(__name__)

AVAHI: Final = "org.freedesktop.Avahi"
SERVER_PATH: Final = "/"
SERVER: Final = "org.freedesktop.Avahi.Server"
ENTRY_GROUP: Final = "org.freedesktop.Avahi.EntryGroup"
SERVICE_BROWSER: Final = "org.freedesktop.Avahi.ServiceBrowser"
SERVICE_RESOLVER: Final = "org.freedesktop.Avahi.ServiceResolver"
COLLISION_ERROR: Final = "org.freedesktop.Avahi.CollisionError"
IF_UNSPEC: Final = -1
PROTO_UNSPEC: Final = -1
PROTO_INET: Final = 0

_DBUS: Final = "org.freedesktop.DBus"
_DBUS_PATH: Final = "/org/freedesktop/DBus"
_MATCHES: Final = (
    f"type='signal',sender='{_DBUS}',interface='{_DBUS}',member='NameOwnerChanged',arg0='{AVAHI}'",
    f"type='signal',sender='{AVAHI}',path='{SERVER_PATH}',interface='{SERVER}',member='StateChanged'",
)
#: Bounds on every wait: connecting to the bus, and any one call to avahi.
CONNECT_TIMEOUT_S: Final = 3.0
CALL_TIMEOUT_S: Final = 5.0
#: Signals kept for object paths not watched yet (avahi's own, unicast to us).
_ORPHAN_PATHS: Final = 32
_ORPHANS_PER_PATH: Final = 16

SignalHandler = Callable[[str, list[Any]], None]


class ServerState(IntEnum):
    INVALID = 0
    REGISTERING = 1
    RUNNING = 2
    COLLISION = 3
    FAILURE = 4


class GroupState(IntEnum):
    UNCOMMITTED = 0
    REGISTERING = 1
    ESTABLISHED = 2
    COLLISION = 3
    FAILURE = 4


async def _connect_system_bus() -> MessageBus:
    """The system bus (``DBUS_SYSTEM_BUS_ADDRESS``, else its standard socket), bounded."""
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            return await MessageBus(bus_type=BusType.SYSTEM).connect()
    except TimeoutError as exc:
        raise MdnsError(f"no answer from the system bus in {CONNECT_TIMEOUT_S} s") from exc
    except Exception as exc:  # dbus-fast raises OSError, AuthError, InvalidAddressError...
        raise MdnsError(f"cannot connect to the system bus: {exc}") from exc


async def _call(
    bus: MessageBus,
    destination: str,
    path: str,
    interface: str,
    member: str,
    signature: str = "",
    body: Sequence[Any] = (),
) -> list[Any]:
    msg = Message(
        destination=destination,
        path=path,
        interface=interface,
        member=member,
        signature=signature,
        body=list(body),
    )
    try:
        async with asyncio.timeout(CALL_TIMEOUT_S):
            reply = await bus.call(msg)
    except TimeoutError as exc:
        raise MdnsError(f"{member}: no answer in {CALL_TIMEOUT_S} s") from exc
    except Exception as exc:  # the connection went away under the call
        raise MdnsError(f"{member}: {exc}") from exc
    if reply.message_type is MessageType.ERROR:
        text = reply.body[0] if reply.body else ""
        raise MdnsError(f"{member}: {reply.error_name}: {text}", dbus_error=reply.error_name or "")
    return list(reply.body)


async def _disconnect(bus: MessageBus) -> None:
    bus.disconnect()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]


async def avahi_running() -> bool:
    """Whether avahi-daemon owns its name on the system bus now (never starts it)."""
    try:
        bus = await _connect_system_bus()
    except MdnsError as exc:
        logger.debug("no system bus: %s", exc)
        return False
    try:
        (owned,) = await _call(bus, _DBUS, _DBUS_PATH, _DBUS, "NameHasOwner", "s", [AVAHI])
        return bool(owned)
    except MdnsError as exc:
        logger.debug("cannot ask the system bus about avahi: %s", exc)
        return False
    finally:
        await _disconnect(bus)


class AvahiBus:
    """A connection to avahi-daemon for one advertiser or browser (see the module doc)."""

    def __init__(self, *, on_up: Callable[[], None], on_down: Callable[[bool], None]) -> None:
        self._on_up = on_up
        self._on_down = on_down
        self._bus: MessageBus | None = None
        self._owner = ""  # avahi's unique name on the bus, "" when it has none
        self._watchers: dict[str, SignalHandler] = {}
        self._orphans: OrderedDict[str, list[tuple[str, list[Any]]]] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._sync_tasks: set[asyncio.Task[None]] = set()
        self._first_attempt = asyncio.Event()
        self._closing = False
        self.running = False

    async def start(self) -> None:
        """Connect; returns once the first attempt is over (``running`` says how it went)."""
        self._task = asyncio.create_task(self._supervise(), name="avahi-bus")
        await self._first_attempt.wait()

    async def close(self) -> None:
        self._closing = True
        for task in list(self._sync_tasks):
            task.cancel()
        if self._bus is not None:
            await _disconnect(self._bus)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.running = False

    async def call(
        self, path: str, interface: str, member: str, signature: str = "", body: Sequence[Any] = ()
    ) -> list[Any]:
        """Call a method of avahi's; raises :class:`MdnsError` with its D-Bus error name."""
        if self._bus is None or not self._bus.connected:
            raise MdnsError(f"{member}: not connected to the system bus")
        return await _call(self._bus, AVAHI, path, interface, member, signature, body)

    def watch(self, path: str, handler: SignalHandler) -> None:
        """Route the signals of avahi's object ``path`` to ``handler(member, body)``."""
        self._watchers[path] = handler
        for member, body in self._orphans.pop(path, []):
            handler(member, body)

    def unwatch(self, path: str) -> None:
        self._watchers.pop(path, None)
        self._orphans.pop(path, None)

    # --- the connection ----------------------------------------------------------------

    async def _supervise(self) -> None:
        backoff = Backoff(initial_s=0.5, maximum_s=30.0)
        attempt = 0
        while not self._closing:
            try:
                bus = await self._connect()
                attempt = 0
                self._first_attempt.set()
                await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.log(
                    logging.WARNING if attempt == 0 else logging.DEBUG,
                    "avahi over D-Bus: %s (retrying)",
                    exc,
                )
            self._first_attempt.set()
            self._bus = None
            self._daemon_gone()
            if self._closing:
                return
            await asyncio.sleep(backoff.delay_s(attempt, random.random()))
            attempt += 1

    async def _connect(self) -> MessageBus:
        bus = await _connect_system_bus()
        try:
            bus.add_message_handler(self._on_message)
            for rule in _MATCHES:
                await _call(bus, _DBUS, _DBUS_PATH, _DBUS, "AddMatch", "s", [rule])
            self._bus = bus
            await self._sync()
        except BaseException:
            self._bus = None
            await _disconnect(bus)
            raise
        return bus

    async def _sync(self) -> None:
        """Learn avahi's owner and state now (at connection, and when it reappears)."""
        bus = self._bus
        if bus is None:
            return
        try:
            (owner,) = await _call(bus, _DBUS, _DBUS_PATH, _DBUS, "GetNameOwner", "s", [AVAHI])
        except MdnsError as exc:
            if "NameHasNoOwner" not in exc.dbus_error:
                raise
            logger.info("avahi-daemon is not on the system bus; waiting for it")
            return
        self._owner = str(owner)
        (state,) = await self.call(SERVER_PATH, SERVER, "GetState")
        self._server_state(int(state))

    def _on_message(self, msg: Message) -> None:
        if msg.message_type is not MessageType.SIGNAL:
            return
        if msg.member == "NameOwnerChanged" and msg.sender == _DBUS:
            name, _old, new = msg.body
            if name == AVAHI:
                self._owner_changed(str(new))
        elif msg.sender != self._owner or not self._owner:
            return
        elif msg.path == SERVER_PATH and msg.interface == SERVER:
            if msg.member == "StateChanged":
                self._server_state(int(msg.body[0]))
        elif msg.path in self._watchers:
            self._watchers[msg.path](str(msg.member), list(msg.body))
        elif msg.path:
            self._keep_orphan(msg.path, str(msg.member), list(msg.body))

    def _keep_orphan(self, path: str, member: str, body: list[Any]) -> None:
        kept = self._orphans.setdefault(path, [])
        if len(kept) < _ORPHANS_PER_PATH:
            kept.append((member, body))
        while len(self._orphans) > _ORPHAN_PATHS:
            self._orphans.popitem(last=False)

    def _owner_changed(self, new_owner: str) -> None:
        if self._owner:
            logger.warning("avahi-daemon left the system bus")
            self._daemon_gone()
        self._owner = new_owner
        if new_owner:
            logger.info("avahi-daemon is back on the system bus")
            task = asyncio.get_running_loop().create_task(self._resync(), name="avahi-sync")
            self._sync_tasks.add(task)
            task.add_done_callback(self._sync_tasks.discard)

    async def _resync(self) -> None:
        try:
            await self._sync()
        except MdnsError as exc:  # it went away again: NameOwnerChanged will say so
            logger.debug("avahi state after its return: %s", exc)

    def _server_state(self, state: int) -> None:
        if state == ServerState.RUNNING and not self.running:
            self.running = True
            self._on_up()
        elif state != ServerState.RUNNING and self.running:
            logger.info("avahi-daemon is re-registering its host name (state %d)", state)
            self.running = False
            self._on_down(False)

    def _daemon_gone(self) -> None:
        self._owner = ""
        self._orphans.clear()
        self._watchers.clear()
        was_running, self.running = self.running, False
        if was_running:
            self._on_down(True)


class BusTasks:
    """Background calls on the avahi bus, cancelled together on close.

    A failure is logged: quietly when the daemon went away (which ends them all and is
    handled by re-publishing or re-browsing when it is back), loudly otherwise."""

    def __init__(self, bus: AvahiBus) -> None:
        self._bus = bus
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or (exc := task.exception()) is None:
            return
        if isinstance(exc, MdnsError) and not self._bus.running:
            logger.debug("avahi: %s stopped with the daemon: %s", task.get_name(), exc)
        else:
            logger.error("avahi: %s failed", task.get_name(), exc_info=exc)

    async def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
