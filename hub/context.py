"""What the hub's routes need, built once per app (no import-time singletons)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from connect_protocol.messages import Event, EventKind
from hub.catalog import library, sql_functions
from hub.db import Database
from hub.fleet.events import EventRecorder
from hub.fleet.player import PlayerService
from hub.fleet.relay import Relay
from hub.ingest.jobs import IngestJobs
from hub.offline.service import OfflineService


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
    broker_healthy: Callable[[], bool] = field(default=lambda: True)
    offline: OfflineService = field(init=False)
    player: PlayerService = field(init=False)
    ingest: IngestJobs = field(init=False)

    def __post_init__(self) -> None:
        self.offline = OfflineService(self.db, self.data_dir, self.relay)
        self.player = PlayerService(self.relay, offline=self.offline)
        self.ingest = IngestJobs(self.db, self.data_dir)
        self.relay.event_hooks.append(self._record_play)
        # every event kept for the dashboard's charts and speaker pages
        self.relay.event_hooks.append(EventRecorder(self.relay.write_later))

    def _record_play(self, device_id: str, event: Event) -> None:
        """A track that started on a speaker joins its listener's recently played."""
        user_id = self.player.listeners.get(device_id)
        if event.kind is not EventKind.STARTED or not event.track_uri or user_id is None:
            return
        track_id = event.track_uri.rsplit(":", 1)[-1]
        device = self.relay.devices.get(device_id)
        context = device.state.context_uri if device is not None else None
        self.relay.write_later(
            library.INSERT_PLAY, (user_id, event.timestamp_ms, context, track_id)
        )
