"""The speaker daemon: wires controller, engine, MQTT, mDNS and the local API.

Everything here is I/O plumbing around ``Controller``: commands arrive on the
device's ``cmd`` topic (or the local WebSocket), their acks go to ``ack``, each
new state is published retained on ``state`` and events on ``events``.  On every
(re)connect the retained status and state are published again, so a broker
restart loses nothing a subscriber needs.  ``device.updates.agent.UpdateAgent`` is
told when the hub is reached and when the engine fails (a release in trial is judged
on both), and may ask the service to stop by itself (``finished``, ``exit_status``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import sqlite3
from pathlib import Path
from typing import Any, cast

from connect_protocol import mdns
from connect_protocol.codec import encode
from connect_protocol.errors import ConnectError, NotConnectedError
from connect_protocol.media import Quality
from connect_protocol.messages import (
    Ack,
    Command,
    DeviceInfo,
    Downloads,
    Event,
    EventKind,
    JoinGroup,
    LeaveGroup,
    PlayerState,
    Stop,
)
from connect_protocol.mqtt import AsyncMqtt, BrokerAddress, Will
from connect_protocol.reducer import rebased
from connect_protocol.topics import Channel, device_topic
from device.audio.source import HubMedia
from device.config import ConfigError, SpeakerConfig, default_state_dir
from device.control_devices import ControlDevice, open_control_devices
from device.controller import Controller, Outcome, SteadyWallClock
from device.downloads import DownloadManager
from device.engine_api import Engine
from device.engine_factory import build_engine, plays_through_sink
from device.hub_link import sync_address
from device.last_played import FILE_NAME, LastPlayedKeeper, load_last
from device.local_access import own_hosts, pairing_token
from device.local_api import LocalApi, info_document
from device.local_controls import LocalControls
from device.sync.engine import GroupPlayer, SyncEngine
from device.sync.membership import FILE_NAME as GROUP_FILE
from device.sync.membership import GroupMember, MembershipFile, PortMemory
from device.sync.peer import Role, SyncPeer
from device.updates.agent import UpdateAgent
from offline_cache.device_keys import DeviceKeys
from offline_cache.store import OfflineStore, StoreError

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class MdnsPlan:
    """How the speaker appears on mDNS: with its own advertiser (the default), not at all,
    or through the host's advertiser, handing it the record in ``handoff``."""

    advertise: bool = True
    handoff: Path | None = None


class SpeakerService:
    def __init__(
        self,
        config: SpeakerConfig,
        broker: BrokerAddress | None,
        *,
        fast_sink: bool = False,
        mdns_plan: MdnsPlan = MdnsPlan(),
    ) -> None:
        self.config = config
        self._mdns_plan = mdns_plan
        self._wall_ms = SteadyWallClock()  # read as the service is made, not at import
        self._fast_sink = fast_sink
        self.broker = broker
        self.info = DeviceInfo(id=config.id, name=config.name, model=config.model, fw=config.fw)
        self.controller: Controller | None = None
        self.mqtt: AsyncMqtt | None = None
        self.local_api: LocalApi | None = None
        self._advertiser: mdns.Advertiser | mdns.Handoff | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.store: OfflineStore | None = None
        self.downloads: DownloadManager | None = None
        self._keys: DeviceKeys | None = None
        self._pending: list[tuple[str, bytes, bool]] = []  # published once reconnected
        self.controls: LocalControls | None = None
        self._last_played = LastPlayedKeeper(default_state_dir() / config.id / FILE_NAME)
        self._control_devices: list[ControlDevice] = []
        self.sync_peer: SyncPeer | None = None
        self.group_player: GroupPlayer | None = None
        self.group: GroupMember | None = None
        self.updates = UpdateAgent(
            config,
            publish=self._publish_event,
            request_exit=self.request_exit,
            now_ms=self._wall_ms,
        )
        #: set when the speaker should stop by itself (a new release is current, a
        #: failed trial), with the status the process exits with
        self.finished = asyncio.Event()
        self.exit_status = 0

    def topic(self, channel: Channel) -> str:
        return device_topic(self.config.id, channel)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.store = self._open_store()
        # a release in trial checks itself before it builds anything that plays
        await self.updates.begin(self.store)
        self.updates.start()
        engine = build_engine(
            self.config,
            on_track_ended=self._on_track_ended,
            on_event=self._on_engine_event,
            on_report=self._on_engine_report,
            loop=asyncio.get_running_loop(),
            fast=self._fast_sink,
            store=self.store,
        )
        engine = await self._open_group(engine)
        engine.set_volume(50)
        # A fresh session per start: the hub then knows revisions begin again.
        self.controller = Controller(
            engine,
            state=PlayerState(session=secrets.token_hex(8)),
            now_ms=self._wall_ms,
            on_group=self._on_group,
        )
        assert self.group is not None
        self.group.restore()  # a member that restarted rejoins its group by itself
        if self.store is not None:
            self.downloads = self._download_manager(engine, loop)
            self.controller.on_sync_downloads = self.downloads.request_sync
        await self._open_controls(loop)
        # a token file and a look-up of the host's own name (DNS): never on the loop
        token, hosts = await asyncio.to_thread(
            lambda: (pairing_token(self.config), own_hosts(self.config.http_host))
        )
        self.local_api = LocalApi(
            info=self._info_doc,
            state=lambda: self._controller.state,
            on_command=self._local_command,
            token=token,
            hosts=hosts,
            offline=self.downloads.status if self.downloads is not None else None,
            diagnostics=self.diagnostics,
        )
        await self.local_api.start(self.config.http_host, self.config.http_port)
        logger.info("local API on port %d (/info, /control)", self.local_api.port)
        if self.broker is not None:
            offline = encode(dataclasses.replace(self.info, online=False))
            self.mqtt = AsyncMqtt(
                self.broker,
                client_id=self.config.id,  # the broker requires id == user name
                subscriptions=[self.topic(Channel.CMD)],
                will=Will(topic=self.topic(Channel.STATUS), payload=offline),
                on_connected=self._on_connected,
                on_disconnected=lambda: self._observe(connected=False),
            )
            await self.mqtt.start()
            self._tasks.append(asyncio.create_task(self._consume(), name="speaker-commands"))
        if self.downloads is not None:
            self.downloads.start()
        await self._advertise()
        self._observe(started=True)

    async def _open_group(self, engine: Engine) -> Engine:
        """The sync socket and the group player, for an engine that can play in a group;
        what the controller drives (the engine itself for one that cannot)."""
        cfg = self.config
        membership = MembershipFile(default_state_dir() / cfg.id / GROUP_FILE)
        if not hasattr(engine, "set_sync"):
            name = cfg.engine if plays_through_sink(cfg) else "clock"
            cannot = f"this speaker's engine ({name}) cannot play in a group; use the native engine"
            self.group = GroupMember(cfg.id, None, membership, cannot=cannot)
            return engine
        ports = PortMemory(membership.path.with_name("sync-port"))
        peer = SyncPeer(host=cfg.sync_bind, port=cfg.sync_port or ports.load())
        try:
            await peer.start()
        except OSError:  # the remembered port is taken now: any free one
            if cfg.sync_port:
                raise
            peer = SyncPeer(host=cfg.sync_bind, port=0)
            await peer.start()
        if not cfg.sync_port:
            ports.save(peer.port)
        self.sync_peer = peer
        addr = await asyncio.to_thread(sync_address, cfg, self.broker, peer.port)
        self.info = dataclasses.replace(self.info, sync_addr=addr)
        self.group_player = GroupPlayer(cast(SyncEngine, engine), peer)
        self.group = GroupMember(cfg.id, self.group_player, membership)
        return self.group_player

    def _on_group(self, cmd: JoinGroup | LeaveGroup) -> str | None:
        """JoinGroup/LeaveGroup from the hub; a leader leaving stops its own player too."""
        assert self.group is not None
        player = self.group_player
        was = player.role if player is not None else Role.NONE
        why = self.group.on_group(cmd)
        now = player.role if player is not None else Role.NONE
        # the controller's own player stops too: a leader's music ends with the group, and
        # a speaker that becomes a follower plays the group's instead of its own
        # (a former leader now following must not keep advancing a queue nobody hears)
        changed = now is not was and now in (Role.NONE, Role.FOLLOWER)
        if why is None and changed and self._controller.state.current is not None:
            stop = Stop(id=f"group-stop-{secrets.token_hex(4)}")
            asyncio.get_running_loop().call_soon(self._control_command, stop)
        return why

    async def _open_controls(self, loop: asyncio.AbstractEventLoop) -> None:
        """Buttons, knob, lights and front panel: commands in, the status out."""
        controls = LocalControls(
            self.config.controls,
            loop=loop,
            apply=self._control_command,
            state=lambda: self._controller.state,
            last=await asyncio.to_thread(load_last, self._last_played.path),
            on_remember=self._last_played.remember,
        )
        self.controls = controls

        def release_all() -> None:  # called from a device's own thread
            loop.call_soon_threadsafe(controls.release_all)

        # opening GPIO chips and serial ports may block: off the loop
        self._control_devices = await asyncio.to_thread(
            open_control_devices, self.config, controls.submit, release_all
        )
        for device in self._control_devices:
            controls.add_indicator(device)
        paired = bool(self.config.password)
        controls.observe(state=self._controller.state, paired=paired, connected=not paired)

    def request_exit(self, status: int) -> None:
        """Ask the process to stop (``finished``) with ``status``; the first ask wins."""
        if not self.finished.is_set():
            self.exit_status = status
            self.finished.set()

    def _observe(self, **changes: Any) -> None:
        if self.controls is not None:
            self.controls.observe(**changes)

    def _control_command(self, cmd: Command) -> None:
        """A button or the knob: applied here and now; no ack, as nobody waits for one."""
        outcome = self._controller.handle(cmd)
        self._emit(dataclasses.replace(outcome, ack=None))

    def diagnostics(self) -> dict[str, Any]:
        """What ``/info`` adds for a client with the pairing token: the controls' counts,
        which a maker reads when a button or the panel misbehaves, and where the
        speaker's release stands (trial, last outcome, an offer being fetched)."""
        controls = self.controls
        return {
            "controls": {
                "events": controls.events if controls is not None else 0,
                "detents": controls.detents if controls is not None else 0,
                "refused": controls.refused if controls is not None else 0,
                "devices": {d.name: d.diagnostics() for d in self._control_devices},
            },
            "updates": self.updates.diagnostics(),
            "sync": self._sync_diagnostics(),
        }

    def _sync_diagnostics(self) -> dict[str, Any]:
        """The group this speaker is in (never its key), and how its sync goes."""
        group = self.group.membership if self.group is not None else None
        doc: dict[str, Any] = {
            "group_id": group.group_id if group else None,
            "leader_id": group.leader_id if group else None,
            "sync_addr": self.info.sync_addr,
        }
        if self.sync_peer is not None:
            doc["peer"] = self.sync_peer.stats()
        if self.group_player is not None and self.group_player.role is not Role.NONE:
            doc["engine"] = dataclasses.asdict(self.group_player.sync_stats())
        return doc

    def _open_store(self) -> OfflineStore | None:
        """The encrypted cache, for a paired speaker that fetches audio (not the clock)."""
        cfg = self.config
        if cfg.engine == "clock" or not cfg.hub_url or not cfg.password:
            return None
        cache_dir, keys_dir = cfg.offline_dirs()
        try:
            self._keys = DeviceKeys.load_or_create(keys_dir)
            return OfflineStore(cache_dir, device_id=cfg.id, keys=self._keys)
        except (OSError, sqlite3.Error, StoreError) as exc:
            raise ConfigError(f"cannot open the offline cache in {cache_dir}: {exc}") from exc

    def _download_manager(self, engine: Engine, loop: asyncio.AbstractEventLoop) -> DownloadManager:
        cfg = self.config
        assert self.store is not None
        assert self._keys is not None

        def report(downloads: Downloads) -> None:
            loop.call_soon_threadsafe(
                lambda: self._emit(self._controller.downloads_report(downloads))
            )

        def event(kind: EventKind, uri: str | None, message: str) -> None:
            loop.call_soon_threadsafe(self._on_engine_event, kind, uri, message)

        return DownloadManager(
            store=self.store,
            hub=HubMedia(cfg.hub_url, cfg.id, cfg.password, ca_pem=cfg.hub_ca),
            device_id=cfg.id,
            keys=self._keys,
            quality=Quality.parse(cfg.download_quality),
            busy=engine.needs_network,  # playback first
            on_report=report,
            on_event=event,
        )

    @property
    def _controller(self) -> Controller:
        assert self.controller is not None
        return self.controller

    def _info_doc(self) -> dict[str, Any]:
        return info_document(self.info)

    async def _advertise(self) -> None:
        assert self.local_api is not None
        record = mdns.ServiceRecord(
            kind="speaker",
            id=self.config.id,
            name=self.config.name,
            model=self.config.model,
            proto=self.info.proto,
            fw=self.config.fw,
            host=mdns.reachable_address(self.config.http_host),
            port=self.local_api.port,
        )
        plan = self._mdns_plan
        if not plan.advertise:
            return
        if plan.handoff is not None:
            self._advertiser = mdns.Handoff(record, plan.handoff)
        else:
            self._advertiser = mdns.Advertiser(record)
        try:
            await self._advertiser.start()
        except Exception:  # mDNS is a convenience: a speaker still plays without it
            logger.exception("mDNS advertisement failed; continuing without it")
            self._advertiser = None

    async def stop(self) -> None:
        await self.updates.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._advertiser is not None:
            await self._advertiser.close()
        if self.mqtt is not None:
            # A clean goodbye: the will only fires on an unclean loss.
            offline = dataclasses.replace(self.info, online=False)
            self._publish(Channel.STATUS, encode(offline), retain=True)
            await asyncio.sleep(0.1)
            await self.mqtt.stop()
        if self.local_api is not None:
            await self.local_api.close()
        # the devices first, so no event arrives once the controls have stopped
        for device in self._control_devices:
            await asyncio.to_thread(device.close)
        if self.controls is not None:
            self.controls.close()
            await self._last_played.flush()
        if self.downloads is not None:
            await asyncio.to_thread(self.downloads.stop)
        if self.controller is not None:
            self.controller.engine.close()
        if self.sync_peer is not None:
            await self.sync_peer.close()
        if self.store is not None:
            self.store.close()

    # --- inputs ------------------------------------------------------------------

    async def _consume(self) -> None:
        assert self.mqtt is not None
        while True:
            msg = await self.mqtt.messages.get()
            if msg.topic != self.topic(Channel.CMD):
                continue
            self._emit(self._controller.handle_bytes(msg.payload))

    def _local_command(self, payload: bytes) -> Ack | None:
        outcome = self._controller.handle_bytes(payload, from_hub=False)
        self._emit(outcome)
        return outcome.ack

    def _on_track_ended(self, uri: str) -> None:
        if self.group_player is None:
            self._emit(self._controller.track_ended(uri))
            return
        with self.group_player.track_ending(uri):  # the next track's load: a gapless join
            outcome = self._controller.track_ended(uri)
        self._emit(outcome)

    def _on_engine_report(self, uri: str, position_ms: int, buffering: bool) -> None:
        self._emit(self._controller.engine_report(uri, position_ms, buffering))

    def _on_engine_event(self, kind: EventKind, uri: str | None, message: str) -> None:
        if kind in (EventKind.ERROR, EventKind.UNDERRUN):
            logger.warning("%s: %s (%s)", kind.value, message, uri or "-")
        elif kind is EventKind.QUALITY_CHANGE:
            logger.info("quality %s (%s)", message, uri or "-")
        if kind is EventKind.ERROR:
            self._observe(failed=True)  # the status light shows it until something plays
            self.updates.engine_error(message)
        event = Event(kind=kind, timestamp_ms=self._wall_ms(), track_uri=uri, message=message)
        self._publish_event(event)

    def _on_connected(self) -> None:
        self._observe(connected=True)
        if self.downloads is not None:  # the hub may be back: renew, catch up
            self.downloads.request_sync()
        if self._publish(Channel.STATUS, encode(self.info), retain=True):
            self.updates.hub_reached()  # the hub knows this release's version now
        # Rebased: the hub stamps live states with its own clock on arrival.
        state = rebased(self._controller.state, self._wall_ms())
        self._publish(Channel.STATE, encode(state), retain=True)
        pending, self._pending = self._pending, []
        for topic, payload, retain in pending:
            self._publish_raw(topic, payload, retain)

    # --- outputs -----------------------------------------------------------------

    def _emit(self, outcome: Outcome) -> None:
        # State before ack: a client that sees the ack finds the new state already there.
        if outcome.state is not None:
            self._publish(Channel.STATE, encode(outcome.state), retain=True)
            if self.local_api is not None:
                self.local_api.broadcast_state(outcome.state)
            self._observe(state=outcome.state)
        if outcome.ack is not None:
            self._publish(Channel.ACK, encode(outcome.ack))
        for event in outcome.events:
            self._publish_event(event)

    def _publish_event(self, event: Event) -> None:
        self._publish(Channel.EVENTS, encode(event))

    def _publish(self, channel: Channel, payload: bytes, *, retain: bool = False) -> bool:
        return self._publish_raw(self.topic(channel), payload, retain)

    def _publish_raw(self, topic: str, payload: bytes, retain: bool) -> bool:
        """Hand a message to the broker connection; False when it could not take it."""
        if self.mqtt is None:
            return False
        try:
            self.mqtt.publish(topic, payload, retain=retain)
        except NotConnectedError:
            # Keep events and acks for the reconnect; status/state are republished anyway.
            if not retain and len(self._pending) < 1000:
                self._pending.append((topic, payload, retain))
            return False
        except ConnectError:
            logger.exception("publish to %s failed", topic)
            return False
        return True
