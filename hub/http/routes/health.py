"""Health and the broker address speakers ask for."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from hub.http.deps import ContextDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="200 when the hub, its database and its broker are up")
async def healthz(ctx: ContextDep) -> JSONResponse:
    database = await run_in_threadpool(ctx.db.ping)
    broker = ctx.broker_healthy() and ctx.relay.broker_connected
    ok = database and broker
    body = {"status": "ok" if ok else "degraded", "database": database, "broker": broker}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/api/connect", summary="Where speakers find the hub's MQTT broker")
async def connect_info(ctx: ContextDep) -> dict[str, object]:
    mqtt = {"host": ctx.public_mqtt_host, "port": ctx.public_mqtt_port, "tls": ctx.public_mqtt_tls}
    doc: dict[str, object] = {"mqtt": mqtt, "proto": "1"}
    if ctx.public_https_port:
        doc["https_port"] = ctx.public_https_port  # where speakers (and legato-flash) go
    return doc
