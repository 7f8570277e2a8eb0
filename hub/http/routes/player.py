"""``/v1/me/player``: the Spotify Web API's player endpoints, relayed to speakers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from hub.accounts.tokens import User
from hub.clock import now_ms
from hub.fleet.player import PlayerRequestError
from hub.http.deps import ContextDep, PlaybackController, PlaybackReader
from hub.http.shapes import device_object, player_object

router = APIRouter(prefix="/v1/me/player", tags=["player"])


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise PlayerRequestError("Malformed JSON body") from None
    if not isinstance(body, dict):
        raise PlayerRequestError("The request body must be a JSON object")
    return body


async def _run(
    ctx: ContextDep,
    action: str,
    request: Request,
    with_body: bool = False,
    user: User | None = None,
) -> Response:
    """Relay the command; ``user`` (on play and transfer) becomes the device's listener,
    whose recently played its plays join."""
    params: dict[str, Any] = dict(request.query_params)
    if with_body:
        params.update(await _body(request))
    await ctx.player.execute(action, params, user_id=user.id if user else None)
    return Response(status_code=204)


@router.get("/devices", summary="Get available devices")
async def devices(ctx: ContextDep, _user: PlaybackReader) -> dict[str, Any]:
    active = ctx.relay.active_device_id
    return {
        "devices": [
            device_object(d, active=d.info.id == active)
            for d in sorted(ctx.relay.devices.values(), key=lambda d: d.info.name)
        ]
    }


@router.get("", summary="Get playback state", response_model=None)
async def playback_state(ctx: ContextDep, _user: PlaybackReader, request: Request) -> Response:
    active = ctx.relay.active_device_id
    device = ctx.relay.devices.get(active) if active else None
    if device is None:
        return Response(status_code=204)
    base = str(request.base_url).rstrip("/")
    return JSONResponse(player_object(device, active=True, now_ms=now_ms(), base_url=base))


@router.put("", status_code=204, summary="Transfer playback to another device")
async def transfer(ctx: ContextDep, user: PlaybackController, request: Request) -> Response:
    return await _run(ctx, "transfer", request, with_body=True, user=user)


@router.put("/play", status_code=204, summary="Start or resume playback")
async def play(ctx: ContextDep, user: PlaybackController, request: Request) -> Response:
    return await _run(ctx, "play", request, with_body=True, user=user)


@router.put("/pause", status_code=204, summary="Pause playback")
async def pause(ctx: ContextDep, _user: PlaybackController, request: Request) -> Response:
    return await _run(ctx, "pause", request)


@router.post("/next", status_code=204, summary="Skip to next")
async def next_track(ctx: ContextDep, _user: PlaybackController, request: Request) -> Response:
    return await _run(ctx, "next", request)


@router.post("/previous", status_code=204, summary="Skip to previous")
async def previous_track(ctx: ContextDep, _user: PlaybackController, request: Request) -> Response:
    return await _run(ctx, "previous", request)


@router.put("/seek", status_code=204, summary="Seek to position (query position_ms)")
async def seek(ctx: ContextDep, _user: PlaybackController, request: Request) -> Response:
    return await _run(ctx, "seek", request)


@router.put("/volume", status_code=204, summary="Set volume (query volume_percent)")
async def volume(ctx: ContextDep, _user: PlaybackController, request: Request) -> Response:
    return await _run(ctx, "volume", request)


@router.put("/shuffle", status_code=204, summary="Toggle shuffle (query state)")
async def shuffle(ctx: ContextDep, _user: PlaybackController, request: Request) -> Response:
    return await _run(ctx, "shuffle", request)


@router.put("/repeat", status_code=204, summary="Set repeat mode (query state)")
async def repeat(ctx: ContextDep, _user: PlaybackController, request: Request) -> Response:
    return await _run(ctx, "repeat", request)


@router.post("/queue", status_code=204, summary="Add item to the queue (query uri)")
async def queue(ctx: ContextDep, _user: PlaybackController, request: Request) -> Response:
    return await _run(ctx, "queue", request)
