"""``/v1/me/player``: the Spotify Web API's player endpoints, relayed to speakers.

Each command's parameters are its request model (:mod:`hub.fleet.requests`): the
query for most, the JSON body for play and transfer (which also take ``device_id``
and ``expected_revision`` in the query, as Spotify's play does).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from hub.accounts.users import User
from hub.clock import now_ms
from hub.fields import Boolean, NonNegative, Text
from hub.fleet.requests import (
    NextRequest,
    PauseRequest,
    PlayerAction,
    PlayRequest,
    PreviousRequest,
    QueueRequest,
    RepeatRequest,
    SeekRequest,
    ShuffleRequest,
    TransferRequest,
    VolumeRequest,
)
from hub.http.deps import ContextDep, PlaybackController, PlaybackReader
from hub.http.shapes import devices_listed, group_object, player_object
from hub.http.validation import JsonBodyRoute
from hub.listening import settings

router = APIRouter(prefix="/v1/me/player", tags=["player"], route_class=JsonBodyRoute)

DeviceQuery = Annotated[Text | None, Query(description="The speaker (default: the active one)")]
RevisionQuery = Annotated[NonNegative | None, Query(description="Legato: the state expected")]


async def _run(ctx: ContextDep, request: PlayerAction, user: User | None = None) -> Response:
    """Relay the command; ``user`` (on play and transfer) becomes the device's listener,
    whose recently played its plays join."""
    await ctx.groups.execute(request, user_id=user.id if user else None)
    return Response(status_code=204)


@router.get("/devices", summary="Get available devices")
async def devices(ctx: ContextDep, _user: PlaybackReader) -> dict[str, Any]:
    return {"devices": devices_listed(ctx.relay, ctx.groups)}


@router.get("", summary="Get playback state", response_model=None)
async def playback_state(ctx: ContextDep, _user: PlaybackReader, request: Request) -> Response:
    active = ctx.relay.active_device_id
    device = ctx.relay.devices.get(active) if active else None
    if device is None:
        return Response(status_code=204)
    base = str(request.base_url).rstrip("/")
    player = player_object(device, active=True, now_ms=now_ms(), base_url=base)
    group = ctx.groups.active_group()
    if group is not None:  # the group plays: it is the device, its leader's state its own
        player["device"] = group_object(ctx.groups.view(group))
    return JSONResponse(player)


@router.put("", status_code=204, summary="Transfer playback to another device")
async def transfer(
    ctx: ContextDep, user: PlaybackController, body: Annotated[TransferRequest, Body()]
) -> Response:
    return await _run(ctx, body, user)


@router.put("/play", status_code=204, summary="Start or resume playback")
async def play(
    ctx: ContextDep,
    user: PlaybackController,
    body: Annotated[PlayRequest | None, Body()] = None,
    device_id: DeviceQuery = None,
    expected_revision: RevisionQuery = None,
) -> Response:
    given = body or PlayRequest()
    request = given.model_copy(
        update={
            "device_id": given.device_id if given.device_id is not None else device_id,
            "expected_revision": given.expected_revision
            if given.expected_revision is not None
            else expected_revision,
        }
    )
    return await _run(ctx, request, user)


@router.put("/pause", status_code=204, summary="Pause playback")
async def pause(
    ctx: ContextDep, _user: PlaybackController, request: Annotated[PauseRequest, Query()]
) -> Response:
    return await _run(ctx, request)


@router.post("/next", status_code=204, summary="Skip to next")
async def next_track(
    ctx: ContextDep, _user: PlaybackController, request: Annotated[NextRequest, Query()]
) -> Response:
    return await _run(ctx, request)


@router.post("/previous", status_code=204, summary="Skip to previous")
async def previous_track(
    ctx: ContextDep, _user: PlaybackController, request: Annotated[PreviousRequest, Query()]
) -> Response:
    return await _run(ctx, request)


@router.put("/seek", status_code=204, summary="Seek to a position in the playing track")
async def seek(
    ctx: ContextDep, _user: PlaybackController, request: Annotated[SeekRequest, Query()]
) -> Response:
    return await _run(ctx, request)


@router.put("/volume", status_code=204, summary="Set the volume")
async def volume(
    ctx: ContextDep, _user: PlaybackController, request: Annotated[VolumeRequest, Query()]
) -> Response:
    return await _run(ctx, request)


@router.put("/shuffle", status_code=204, summary="Turn shuffle on or off")
async def shuffle(
    ctx: ContextDep, _user: PlaybackController, request: Annotated[ShuffleRequest, Query()]
) -> Response:
    return await _run(ctx, request)


@router.put("/repeat", status_code=204, summary="Set the repeat mode")
async def repeat(
    ctx: ContextDep, _user: PlaybackController, request: Annotated[RepeatRequest, Query()]
) -> Response:
    return await _run(ctx, request)


@router.post("/queue", status_code=204, summary="Add a track to the end of the queue")
async def queue(
    ctx: ContextDep, _user: PlaybackController, request: Annotated[QueueRequest, Query()]
) -> Response:
    return await _run(ctx, request)


class AutoplaySetting(BaseModel):
    autoplay: bool = Field(description="Whether a speaker goes on with a radio when a context ends")


@router.get("/autoplay", summary="Legato: whether autoplay is on for the current user")
def get_autoplay(ctx: ContextDep, user: PlaybackReader) -> AutoplaySetting:
    return AutoplaySetting(autoplay=settings.autoplay(ctx.db, user.id))


@router.put("/autoplay", status_code=204, summary="Legato: turn autoplay on or off")
def put_autoplay(
    ctx: ContextDep,
    user: PlaybackController,
    state: Annotated[Boolean, Query(description="true: go on with a radio when a context ends")],
) -> Response:
    settings.set_autoplay(ctx.db, user.id, state)
    return Response(status_code=204)
