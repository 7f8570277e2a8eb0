"""The hub's side of the Connect protocol: device registry and command relay.

One MQTT connection, as the hub user, subscribed to every device's status,
state, ack and events.  ``send`` publishes a command and waits for its ack (and
for the state that ack promises), failing fast for unknown or offline devices,
with ``BrokerUnavailable`` when the broker goes away and ``CommandTimeout`` when
the speaker does not answer in time.  Every change is fanned out to listeners
(the WebSocket sessions).

The relay alone decides which speaker is *active*: the one last told to play, resume
or adopt a session through the hub (or given an empty session by a transfer).  A
state message nobody asked for never moves it, so a speaker (or anyone holding its
login) cannot claim the commands listeners send to "the active speaker".  It also
mints command ids.  Speakers' events go to event listeners (the fleet recorder stores
them); the registry of speakers is written on the relay's own background writer.

Clocks: a live state is re-stamped with the hub's receive time, so positions
are extrapolated on one clock (the hub's) whatever the speaker's clock says.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from connect_protocol.codec import DecodeError, decode, encode
from connect_protocol.errors import PayloadTooLargeError, TransportError
from connect_protocol.messages import (
    Ack,
    Adopt,
    Command,
    DeviceInfo,
    Event,
    Play,
    PlayerState,
    Resume,
)
from connect_protocol.mqtt import AsyncMqtt, BrokerAddress, Received
from connect_protocol.topics import HUB_USERNAME, Channel, all_devices_filter, device_topic
from connect_protocol.topics import parse_device_topic as parse_topic
from hub.clock import now_ms
from hub.db import BackgroundWriter, Database
from hub.errors import (
    BrokerUnavailable,
    CommandRefused,
    CommandTimeout,
    DeviceNotFound,
    PayloadTooLarge,
    RelayError,
)
from hub.fleet import registry

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Device:
    info: DeviceInfo
    online: bool
    last_seen_ms: int
    state: PlayerState = field(default_factory=PlayerState)
    recent_events: list[Event] = field(default_factory=list)


Change = Literal["devices", "state"]
Listener = Callable[[Change, str], None]
#: Called with (device id, event) for every event a speaker publishes.
EventListener = Callable[[str, Event], None]
#: Commands after whose ok ack their target becomes the active device.
MAKES_ACTIVE = frozenset({Play, Resume, Adopt})
MAX_RECENT_EVENTS = 50
STATE_AFTER_ACK_S = 1.0


class Relay:
    def __init__(
        self,
        db: Database,
        broker: BrokerAddress,
        *,
        ack_timeout_s: float = 5.0,
        client_id: str = HUB_USERNAME,
    ) -> None:
        self.db = db
        self.broker = broker
        self.ack_timeout_s = ack_timeout_s
        self.client_id = client_id
        self.devices: dict[str, Device] = {}
        self._active_device_id: str | None = None
        self._mqtt: AsyncMqtt | None = None
        self._pending: dict[str, tuple[str, asyncio.Future[Ack]]] = {}
        self._state_waiters: list[tuple[str, int, asyncio.Future[None]]] = []
        self._listeners: list[Listener] = []
        self._event_listeners: list[EventListener] = []
        self._task: asyncio.Task[None] | None = None
        self._seq = 0
        # Registry writes in order and off the event loop; changes are batched
        # (1,000 speakers come online in about a second).
        self._writer = BackgroundWriter(db, "relay-db")
        self._dirty: dict[str, tuple[DeviceInfo, int]] = {}
        self._dirty_lock = threading.Lock()
        self._flush_scheduled = False

    # --- lifecycle ---------------------------------------------------------------

    async def start(self, *, wait_s: float = 10.0) -> None:
        await asyncio.to_thread(self._load_registry)
        self._mqtt = AsyncMqtt(
            self.broker,
            client_id=self.client_id,
            subscriptions=[
                all_devices_filter(c)
                for c in (Channel.STATUS, Channel.STATE, Channel.ACK, Channel.EVENTS)
            ],
            on_connected=self._on_broker_connected,
            on_disconnected=self._on_broker_lost,
        )
        await self._mqtt.start(wait_s=wait_s)
        self._task = asyncio.create_task(self._consume(), name="relay-inbound")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._fail_pending(BrokerUnavailable("the hub is shutting down"))
        if self._mqtt is not None:
            await self._mqtt.stop()
        self._writer.run(self._flush)
        await asyncio.to_thread(self._writer.close)

    @property
    def broker_connected(self) -> bool:
        return self._mqtt is not None and self._mqtt.connected

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Be told of every change to the device list or a device's state; returns the
        function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def add_event_listener(self, listener: EventListener) -> Callable[[], None]:
        """Be told of every event a speaker publishes; returns the unsubscriber."""
        self._event_listeners.append(listener)
        return lambda: self._event_listeners.remove(listener)

    @property
    def active_device_id(self) -> str | None:
        """The speaker playback requests go to when they name none (see the module)."""
        return self._active_device_id

    def activate(self, device_id: str) -> None:
        """Make an online speaker the active one without a command (a transfer of an
        empty session: nothing to move, playback continues there when asked)."""
        self._set_active(self.online_device(device_id).info.id)

    def _set_active(self, device_id: str | None) -> None:
        """The one place the active speaker changes; kept across restarts."""
        if device_id == self._active_device_id:
            return
        self._active_device_id = device_id
        self._writer.run(lambda conn: registry.save_active_device(conn, device_id))

    # --- commands ------------------------------------------------------------------

    def new_command_id(self) -> str:
        self._seq += 1
        return f"h{time.monotonic_ns():x}-{self._seq}"

    def online_device(self, device_id: str) -> Device:
        device = self.devices.get(device_id)
        if device is None:
            raise DeviceNotFound(f"Device not found: {device_id[:64]}")
        if not device.online:
            raise DeviceNotFound(f"Device is offline: {device.info.name}")
        return device

    async def send(self, device_id: str, command: Command) -> Ack:
        """Relay ``command`` and return its ok ack; raise a ``RelayError`` otherwise."""
        device = self.online_device(device_id)
        if self._mqtt is None or not self._mqtt.connected:
            raise BrokerUnavailable("The hub is not connected to its broker; try again shortly")
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._pending[command.id] = (device_id, future)
        try:
            self._mqtt.publish(device_topic(device_id, Channel.CMD), encode(command))
            ack = await asyncio.wait_for(future, self.ack_timeout_s)
        except TimeoutError:
            raise CommandTimeout(
                f"{device.info.name} did not answer within {self.ack_timeout_s:g} s"
            ) from None
        except PayloadTooLargeError as exc:
            raise PayloadTooLarge(f"The command is too large to send: {exc}") from exc
        except TransportError as exc:
            raise BrokerUnavailable(f"could not reach the broker: {exc}") from exc
        finally:
            self._pending.pop(command.id, None)
        if not ack.ok:
            raise CommandRefused(ack)
        if type(command) in MAKES_ACTIVE:
            self._set_active(device_id)
        await self._wait_for_revision(device_id, ack.revision)
        return ack

    async def _wait_for_revision(self, device_id: str, revision: int) -> None:
        """Let the state an ack promises arrive, so a read right after sees it."""
        device = self.devices.get(device_id)
        if device is None or device.state.revision >= revision:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (device_id, revision, fut)
        self._state_waiters.append(entry)
        try:
            await asyncio.wait_for(fut, STATE_AFTER_ACK_S)
        except TimeoutError:
            logger.warning("state %d of %s did not follow its ack", revision, device_id)
        finally:
            if entry in self._state_waiters:
                self._state_waiters.remove(entry)

    # --- broker connection -----------------------------------------------------------

    def _on_broker_connected(self) -> None:
        # Until their retained status says otherwise, nobody is known to be online:
        # a speaker that died while the broker was away has no will left to tell us.
        for device in self.devices.values():
            device.online = False
        self._notify("devices", "")

    def _on_broker_lost(self) -> None:
        self._fail_pending(BrokerUnavailable("The hub lost its broker; try again shortly"))

    # --- inbound -------------------------------------------------------------------

    async def _consume(self) -> None:
        assert self._mqtt is not None
        while True:
            msg = await self._mqtt.messages.get()
            try:
                self._dispatch(msg)
            except Exception:
                logger.exception("could not handle message on %s", msg.topic)

    def _dispatch(self, msg: Received) -> None:
        parsed = parse_topic(msg.topic)
        if parsed is None or parsed.device_id == HUB_USERNAME:
            return
        match parsed.channel:
            case Channel.STATUS:
                self._on_status(parsed.device_id, msg.payload)
            case Channel.STATE:
                self._on_state(parsed.device_id, msg.payload, retained=msg.retain)
            case Channel.ACK:
                self._on_ack(parsed.device_id, msg.payload)
            case Channel.EVENTS:
                self._on_event(parsed.device_id, msg.payload)
            case Channel.CMD:
                return  # not subscribed; commands are ours to send, not to read

    def _on_status(self, device_id: str, payload: bytes) -> None:
        if not payload:  # a cleared retained status: the device was removed
            if self.devices.pop(device_id, None) is not None:
                self._notify("devices", device_id)
            return
        info = decode(DeviceInfo, payload)
        if isinstance(info, DecodeError) or info.id != device_id:
            logger.warning("ignoring bad status from %s", device_id)
            return
        device = self.devices.get(device_id)
        if device is None:
            device = self.devices[device_id] = Device(info, info.online, now_ms())
        device.info, device.online, device.last_seen_ms = info, info.online, now_ms()
        if not info.online:
            self._fail_pending(DeviceNotFound(f"{info.name} went offline"), device_id=device_id)
            if self._active_device_id == device_id:
                self._set_active(None)
        self._record(info, device.last_seen_ms)
        self._notify("devices", device_id)

    def _on_state(self, device_id: str, payload: bytes, *, retained: bool) -> None:
        state = decode(PlayerState, payload)
        if isinstance(state, DecodeError):
            logger.warning("ignoring bad state from %s: %s", device_id, state.message)
            return
        device = self.devices.get(device_id)
        if device is None:
            logger.info("state from %s before its status; ignored", device_id)
            return
        old = device.state
        if state.session == old.session and state.revision < old.revision:
            return  # an older copy arriving late; a new session (restart) always wins
        if not retained:
            state = dataclasses.replace(state, timestamp_ms=now_ms())
        device.state = state
        for waiter in list(self._state_waiters):
            if waiter[0] == device_id and state.revision >= waiter[1] and not waiter[2].done():
                waiter[2].set_result(None)
        self._notify("state", device_id)

    def _on_ack(self, device_id: str, payload: bytes) -> None:
        ack = decode(Ack, payload)
        if isinstance(ack, DecodeError):
            logger.warning("ignoring bad ack from %s: %s", device_id, ack.message)
            return
        pending = self._pending.get(ack.id)
        if pending is not None and pending[0] == device_id and not pending[1].done():
            pending[1].set_result(ack)

    def _on_event(self, device_id: str, payload: bytes) -> None:
        event = decode(Event, payload)
        device = self.devices.get(device_id)
        if isinstance(event, DecodeError) or device is None:
            return
        device.recent_events = [*device.recent_events[-(MAX_RECENT_EVENTS - 1) :], event]
        for listener in list(self._event_listeners):
            try:
                listener(device_id, event)
            except Exception:
                logger.exception("relay event listener failed")

    def _fail_pending(self, error: RelayError, *, device_id: str | None = None) -> None:
        """Fail the commands waiting on ``device_id`` (on every device when None)."""
        for dev, fut in self._pending.values():
            if (device_id is None or dev == device_id) and not fut.done():
                fut.set_exception(error)

    def _notify(self, change: Change, device_id: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(change, device_id)
            except Exception:
                logger.exception("relay listener failed")

    # --- registry persistence (writer thread) --------------------------------------

    def _load_registry(self) -> None:
        with self.db.reading() as conn:
            for known in registry.load(conn):
                info = known.info
                self.devices[info.id] = Device(info, False, known.last_seen_ms)
            self._active_device_id = registry.active_device(conn)

    def _record(self, info: DeviceInfo, last_seen_ms: int) -> None:
        """Queue a registry write; one flush writes whatever has piled up."""
        with self._dirty_lock:
            self._dirty[info.id] = (info, last_seen_ms)
            if self._flush_scheduled:
                return
            self._flush_scheduled = True
        self._writer.run(self._flush)

    def _flush(self, conn: sqlite3.Connection) -> None:
        with self._dirty_lock:
            batch, self._dirty = self._dirty, {}
            self._flush_scheduled = False
        if not batch:
            return
        conn.execute("BEGIN IMMEDIATE")  # one transaction for the whole batch
        try:
            registry.save(conn, batch.values())
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
