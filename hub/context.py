"""The composition root: the hub's services, built once per app and wired together here
(no import-time singletons), so no domain package needs to know another's wiring."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from hub.catalog import sql_functions
from hub.db import Database
from hub.fleet.autoplay import Autoplay
from hub.fleet.groups import GroupService
from hub.fleet.player import RADIO_LENGTH, PlayerService
from hub.fleet.recorder import FleetRecorder
from hub.fleet.relay import Relay
from hub.ingest.jobs import IngestJobs
from hub.listening import settings
from hub.offline.service import OfflineService
from hub.recommend.service import Recommender
from hub.releases.recorder import UpdateRecorder
from hub.releases.service import Releases


def hub_database(path: Path) -> Database:
    """The hub's database at ``path``, its connections given the catalog's SQL functions."""
    return Database(path, on_connect=(sql_functions.register,))


@dataclass(slots=True, kw_only=True)
class HubContext:
    data_dir: Path
    db: Database
    relay: Relay
    public_mqtt_host: str
    public_mqtt_port: int
    #: whether speakers are told to use MQTT over TLS (``mqtts://``)
    public_mqtt_tls: bool = True
    public_https_port: int = 0  # the speakers' HTTPS port (0: not served by this process)
    broker_healthy: Callable[[], bool] = field(default=lambda: True)
    #: what the operator turned off and should know about (plain MQTT...): shown on
    #: the dashboard's health page, logged at start
    insecure: tuple[str, ...] = ()
    offline: OfflineService = field(init=False)
    player: PlayerService = field(init=False)
    groups: GroupService = field(init=False)
    recorder: FleetRecorder = field(init=False)
    recommender: Recommender = field(init=False)
    autoplay: Autoplay = field(init=False)
    ingest: IngestJobs = field(init=False)
    releases: Releases = field(init=False)
    update_recorder: UpdateRecorder = field(init=False)

    def __post_init__(self) -> None:
        self.recommender = Recommender(self.db, self.data_dir)
        self.player = PlayerService(self.relay, radio=self._radio)
        # multiroom: a group's commands to its leader, members told whom to follow
        self.groups = GroupService(self.db, self.relay, self.player)
        # when a listener's album or radio runs out, their speaker goes on with a radio
        self.autoplay = Autoplay(
            self.relay, self.player, enabled=lambda user_id: settings.autoplay(self.db, user_id)
        )
        self.offline = OfflineService(self.db, self.data_dir, self.relay)
        # every event kept for the dashboard, each started track as its listener's play
        self.recorder = FleetRecorder(self.db, self.relay, listener_of=self.player.listener_of)
        self.ingest = IngestJobs(self.db, self.data_dir)
        # signed releases, offered in waves; speakers' reports may halt a rollout
        self.releases = Releases(self.db, self.data_dir, live_fw=self._live_fw)
        self.update_recorder = UpdateRecorder(self.db, self.relay, self.releases)

    def _live_fw(self) -> dict[str, str]:
        """The release each speaker's retained status names (it may never have reported)."""
        return {device_id: d.info.fw for device_id, d in list(self.relay.devices.items())}

    def _radio(self, user_id: int | None, seed_uri: str, exclude: Collection[str]) -> list[str]:
        return self.recommender.radio(user_id, seed_uri, limit=RADIO_LENGTH, exclude=exclude)

    async def start(self, *, wait_s: float = 10.0) -> None:
        """Connect to the broker (the relay); the rest starts as it is used."""
        await self.groups.start()  # before the relay: it sees every member come online
        await self.relay.start(wait_s=wait_s)

    async def stop(self) -> None:
        """Stop going on with radios and relaying, then write what the recorder holds."""
        await self.autoplay.close()
        await self.groups.stop()
        await self.relay.stop()
        await asyncio.to_thread(self.recorder.close)
        await asyncio.to_thread(self.update_recorder.close)
