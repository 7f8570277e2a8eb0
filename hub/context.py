"""What the hub's routes need, built once per app (no import-time singletons)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hub.db import Database
from hub.player import PlayerService
from hub.relay import Relay


@dataclass(slots=True, kw_only=True)
class HubContext:
    data_dir: Path
    db: Database
    relay: Relay
    public_mqtt_host: str
    public_mqtt_port: int
    broker_healthy: Callable[[], bool] = field(default=lambda: True)
    player: PlayerService = field(init=False)

    def __post_init__(self) -> None:
        self.player = PlayerService(self.relay)
