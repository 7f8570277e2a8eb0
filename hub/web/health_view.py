"""The hub's health as the operator reads it (the dashboard's page and its JSON)."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from typing import Any

from fastapi.concurrency import run_in_threadpool

from hub.context import HubContext


@dataclass(frozen=True, slots=True, kw_only=True)
class Health:
    ok: bool
    database: bool
    broker_process: bool  # the embedded broker (or true for an external one)
    broker_connected: bool  # the relay's own MQTT connection
    speakers_online: int
    speakers_known: int
    db_bytes: int
    ingest_running: bool
    version: str
    python: str
    insecure: tuple[str, ...] = ()  # links the operator chose to leave in clear

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _db_bytes(ctx: HubContext) -> int:
    path = ctx.db.path
    total = 0
    for name in (path, path.with_name(path.name + "-wal")):
        if name.exists():
            total += name.stat().st_size
    return total


async def collect(ctx: HubContext, version: str) -> Health:
    database = await run_in_threadpool(ctx.db.ping)
    size = await run_in_threadpool(_db_bytes, ctx)
    process, connected = ctx.broker_healthy(), ctx.relay.broker_connected
    devices = list(ctx.relay.devices.values())
    return Health(
        ok=database and process and connected,
        database=database,
        broker_process=process,
        broker_connected=connected,
        speakers_online=sum(1 for d in devices if d.online),
        speakers_known=len(devices),
        db_bytes=size,
        ingest_running=ctx.ingest.running(),
        version=version,
        python=platform.python_version(),
        insecure=ctx.insecure,
    )
