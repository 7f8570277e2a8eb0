"""``/v1/connect/ws``: live device list and states, and player commands.

Authenticate with ``?access_token=TOKEN`` (browsers cannot set headers on a
WebSocket) or an ``Authorization: Bearer`` header.  The server sends
``{"type": "devices", ...}`` and ``{"type": "state", ...}`` messages as things
change; a client sends ``{"type": "command", "request_id": R, "action": A,
...params}`` with the same actions and parameters as the HTTP player endpoints
(:mod:`hub.http.connect_commands`) and gets ``{"type": "result", "request_id": R,
"ok": ...}`` back.  Bad input is answered with an error message; the connection stays up.

A slow client never stalls the hub: its pending updates are coalesced so it
always gets the latest device list and the latest state of each device.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool

from connect_protocol.codec import to_json_obj
from connect_protocol.messages import MAX_MESSAGE_BYTES
from hub.accounts import scopes, tokens
from hub.clock import now_ms
from hub.context import HubContext
from hub.errors import Forbidden, HubError, RateLimited, RequestError, TokenRejected
from hub.fleet.relay import Change
from hub.http.connect_commands import parse_command, run_command
from hub.http.deps import bearer_token
from hub.http.ratelimit import Category, RateLimiter
from hub.http.shapes import devices_listed, error_body, group_object, player_object

logger = logging.getLogger(__name__)
router = APIRouter()
MAX_IN_FLIGHT = 64
MAX_REPLIES = 1000
#: How often an open session checks that its token was not revoked.
TOKEN_RECHECK_S = 30.0


def devices_message(ctx: HubContext) -> dict[str, Any]:
    return {"type": "devices", "devices": devices_listed(ctx.relay, ctx.groups)}


def state_message(ctx: HubContext, device_id: str, base_url: str) -> dict[str, Any] | None:
    """A speaker's state; for a group, its leader's, as the group's own."""
    group = ctx.groups.group(device_id)
    leader = ctx.groups.leader_of(device_id) if group else device_id
    device = ctx.relay.devices.get(leader) if leader else None
    if device is None:
        return None
    active = leader == ctx.relay.active_device_id
    player = player_object(device, active=active, now_ms=now_ms(), base_url=base_url)
    if group is not None:
        player["device"] = group_object(ctx.groups.view(group))
    return {
        "type": "state",
        "device_id": device_id,
        "state": to_json_obj(device.state),
        "player": player,
    }


class Outbox:
    """What is owed to one client: replies in order, plus the latest of each update."""

    def __init__(self) -> None:
        self.replies: deque[dict[str, Any]] = deque()
        self.devices_changed = False
        self.states_changed: dict[str, None] = {}  # ordered set of device ids
        self.ready = asyncio.Event()

    def reply(self, message: dict[str, Any]) -> None:
        if len(self.replies) < MAX_REPLIES:
            self.replies.append(message)
            self.ready.set()

    def changed(self, change: Change, device_id: str) -> None:
        if change == "devices":
            self.devices_changed = True
        else:
            self.states_changed[device_id] = None
        self.ready.set()


@router.websocket("/v1/connect/ws")
async def connect_ws(ws: WebSocket) -> None:
    ctx: HubContext = ws.app.state.ctx
    token = ws.query_params.get("access_token") or bearer_token(ws.headers.get("authorization"))
    session = await run_in_threadpool(tokens.token_session, ctx.db, token or "")
    await ws.accept()
    if session is None:
        await ws.send_json({"type": "error", **error_body(401, "Invalid or missing access token")})
        await ws.close(code=4401)
        return
    granted = await run_in_threadpool(_scopes_of, ctx, token or "")
    if scopes.READ_PLAYBACK not in granted:
        denied = f"Insufficient client scope: this needs {scopes.READ_PLAYBACK}"
        await ws.send_json({"type": "error", **error_body(403, denied)})
        await ws.close(code=4403)
        return
    may_control = scopes.MODIFY_PLAYBACK in granted
    base_url = f"{ws.url.scheme.replace('ws', 'http')}://{ws.url.netloc}"
    outbox = Outbox()
    outbox.changed("devices", "")
    for device_id in [*ctx.relay.devices, *(v.group.id for v in ctx.groups.views())]:
        outbox.changed("state", device_id)
    unsubscribers = [
        ctx.relay.add_listener(outbox.changed),
        ctx.groups.add_listener(outbox.changed),
    ]
    sender = asyncio.create_task(_send_loop(ws, ctx, outbox, base_url))
    guard = asyncio.create_task(_end_with_token(ws, ctx, token or "", session[1]))
    in_flight: set[asyncio.Task[None]] = set()
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            raw = message.get("text")
            if raw is None:
                data = message.get("bytes") or b""
                try:
                    raw = data.decode()
                except UnicodeDecodeError:
                    outbox.reply(
                        {"type": "error", **error_body(400, "Messages must be UTF-8 JSON")}
                    )
                    continue
            if len(raw.encode()) > MAX_MESSAGE_BYTES:
                too_big = f"message over {MAX_MESSAGE_BYTES} bytes"
                outbox.reply({"type": "error", **error_body(413, too_big)})
                continue
            if len(in_flight) >= MAX_IN_FLIGHT:
                outbox.reply({"type": "error", **error_body(429, "too many commands in flight")})
                continue
            task = asyncio.create_task(
                _handle(ctx, raw, outbox, session[0].id, may_control, ws.app.state.rate_limiter)
            )
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
    except WebSocketDisconnect:
        pass
    finally:
        for unsubscribe in unsubscribers:
            unsubscribe()
        sender.cancel()
        guard.cancel()
        for task in in_flight:
            task.cancel()
        await asyncio.gather(sender, guard, *in_flight, return_exceptions=True)


async def _end_with_token(ws: WebSocket, ctx: HubContext, token: str, expires_ms: int) -> None:
    """Close the session when its token expires, or within a check of its revocation."""
    while True:
        await asyncio.sleep(max(0.0, min(TOKEN_RECHECK_S, (expires_ms - now_ms()) / 1000)))
        still_valid = now_ms() < expires_ms and (
            await run_in_threadpool(tokens.token_session, ctx.db, token) is not None
        )
        if still_valid:
            continue
        await ws.send_json({"type": "error", **error_body(401, "The access token expired")})
        await ws.close(code=4401)
        return


async def _send_loop(ws: WebSocket, ctx: HubContext, outbox: Outbox, base_url: str) -> None:
    while True:
        await outbox.ready.wait()
        outbox.ready.clear()
        # Replies and updates interleave in the order a client expects: a state
        # change triggered by a command is on its way before the command's result
        # (the relay waits for that state before the command completes).
        batch: list[dict[str, Any]] = []
        if outbox.devices_changed:
            outbox.devices_changed = False
            batch.append(devices_message(ctx))
        states, outbox.states_changed = outbox.states_changed, {}
        for device_id in states:
            message = state_message(ctx, device_id, base_url)
            if message is not None:
                batch.append(message)
        while outbox.replies:
            batch.append(outbox.replies.popleft())
        for message in batch:
            await ws.send_text(json.dumps(message, separators=(",", ":")))


def _scopes_of(ctx: HubContext, token: str) -> frozenset[str]:
    try:
        return tokens.access_session(ctx.db, token).scopes
    except TokenRejected:
        return frozenset()


def _result(request_id: Any, error: HubError | None = None) -> dict[str, Any]:
    if error is None:
        return {"type": "result", "request_id": request_id, "ok": True}
    body = error_body(error.status, str(error), error.reason)
    return {"type": "result", "request_id": request_id, "ok": False, **body}


async def _handle(
    ctx: HubContext,
    text: str,
    outbox: Outbox,
    user_id: int,
    may_control: bool,
    limiter: RateLimiter,
) -> None:
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        outbox.reply({"type": "error", **error_body(400, "Malformed JSON")})
        return
    if not isinstance(message, dict) or message.get("type") != "command":
        outbox.reply({"type": "error", **error_body(400, 'Expected {"type": "command", ...}')})
        return
    request_id = message.get("request_id")
    action = message.get("action")
    if not isinstance(action, str):
        outbox.reply(_result(request_id, RequestError("Missing required field: action")))
        return
    if not may_control:
        denied = f"Insufficient client scope: this needs {scopes.MODIFY_PLAYBACK}"
        outbox.reply(_result(request_id, Forbidden(denied)))
        return
    decision = limiter.hit(user_id, Category.PLAYER)  # the same budget as the Web API's
    if not decision.allowed:
        outbox.reply(_result(request_id, RateLimited(decision.retry_after_s)))
        return
    try:
        await run_command(ctx, parse_command(message), user_id)
    except HubError as exc:
        outbox.reply(_result(request_id, exc))
        return
    except Exception:
        logger.exception("WebSocket command %r failed", action[:40])
        outbox.reply(_result(request_id, HubError("Internal server error")))
        return
    outbox.reply(_result(request_id))
