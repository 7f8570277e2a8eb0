"""``/v1/connect/ws``: live device list and states, and player commands.

Authenticate with ``?access_token=TOKEN`` (browsers cannot set headers on a
WebSocket) or an ``Authorization: Bearer`` header.  The server sends
``{"type": "devices", ...}`` and ``{"type": "state", ...}`` messages as things
change; a client sends ``{"type": "command", "request_id": R, "action": A,
...params}`` with the same actions and parameters as the HTTP player endpoints
and gets ``{"type": "result", "request_id": R, "ok": ...}`` back.  Bad input is
answered with an error message; the connection stays up.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool

from connect_protocol.codec import to_json_obj
from connect_protocol.messages import MAX_MESSAGE_BYTES
from hub import accounts
from hub.accounts import now_ms
from hub.context import HubContext
from hub.relay import Change, RelayError
from hub.routes.deps import bearer_token
from hub.shapes import device_object, error_body, player_object

logger = logging.getLogger(__name__)
router = APIRouter()
MAX_IN_FLIGHT = 64
OUTBOX = 10_000


def devices_message(ctx: HubContext) -> dict[str, Any]:
    active = ctx.relay.active_device_id
    return {
        "type": "devices",
        "devices": [
            device_object(d, active=d.info.id == active) for d in ctx.relay.devices.values()
        ],
    }


def state_message(ctx: HubContext, device_id: str, base_url: str) -> dict[str, Any] | None:
    device = ctx.relay.devices.get(device_id)
    if device is None:
        return None
    return {
        "type": "state",
        "device_id": device_id,
        "state": to_json_obj(device.state),
        "player": player_object(
            device,
            active=device_id == ctx.relay.active_device_id,
            now_ms=now_ms(),
            base_url=base_url,
        ),
    }


@router.websocket("/v1/connect/ws")
async def connect_ws(ws: WebSocket) -> None:
    ctx: HubContext = ws.app.state.ctx
    token = ws.query_params.get("access_token") or bearer_token(ws.headers.get("authorization"))
    user = await run_in_threadpool(accounts.user_for_token, ctx.db, token or "")
    await ws.accept()
    if user is None:
        await ws.send_json({"type": "error", **error_body(401, "Invalid or missing access token")})
        await ws.close(code=4401)
        return
    base_url = f"{ws.url.scheme.replace('ws', 'http')}://{ws.url.netloc}"
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(OUTBOX)

    def push(message: dict[str, Any] | None) -> None:
        if message is None:
            return
        try:
            outbox.put_nowait(message)
        except asyncio.QueueFull:
            logger.warning("WebSocket client too slow; dropping an update")

    def on_change(change: Change, device_id: str) -> None:
        push(
            devices_message(ctx) if change == "devices" else state_message(ctx, device_id, base_url)
        )

    push(devices_message(ctx))
    for device_id in list(ctx.relay.devices):
        push(state_message(ctx, device_id, base_url))
    unsubscribe = ctx.relay.add_listener(on_change)
    sender = asyncio.create_task(_send_loop(ws, outbox))
    in_flight: set[asyncio.Task[None]] = set()
    try:
        while True:
            text = await ws.receive_text()
            if len(text.encode()) > MAX_MESSAGE_BYTES:
                push(
                    {"type": "error", **error_body(413, f"message over {MAX_MESSAGE_BYTES} bytes")}
                )
                continue
            if len(in_flight) >= MAX_IN_FLIGHT:
                push({"type": "error", **error_body(429, "too many commands in flight")})
                continue
            task = asyncio.create_task(_handle(ctx, text, push))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
    except WebSocketDisconnect:
        pass
    finally:
        unsubscribe()
        sender.cancel()
        for task in in_flight:
            task.cancel()
        await asyncio.gather(sender, *in_flight, return_exceptions=True)


async def _send_loop(ws: WebSocket, outbox: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        message = await outbox.get()
        await ws.send_text(json.dumps(message, separators=(",", ":")))


async def _handle(ctx: HubContext, text: str, push: Any) -> None:
    try:
        message = json.loads(text)
    except ValueError:
        push({"type": "error", **error_body(400, "Malformed JSON")})
        return
    if not isinstance(message, dict) or message.get("type") != "command":
        push({"type": "error", **error_body(400, 'Expected {"type": "command", ...}')})
        return
    request_id = message.get("request_id")
    action = message.get("action")
    if not isinstance(action, str):
        push(
            {
                "type": "result",
                "request_id": request_id,
                "ok": False,
                **error_body(400, "Missing required field: action"),
            }
        )
        return
    params = {k: v for k, v in message.items() if k not in ("type", "request_id", "action")}
    try:
        await ctx.player.execute(action, params)
    except RelayError as exc:
        push(
            {
                "type": "result",
                "request_id": request_id,
                "ok": False,
                **error_body(exc.status, str(exc)),
            }
        )
        return
    except Exception:
        logger.exception("WebSocket command %r failed", action)
        push(
            {
                "type": "result",
                "request_id": request_id,
                "ok": False,
                **error_body(500, "internal error"),
            }
        )
        return
    push({"type": "result", "request_id": request_id, "ok": True})
