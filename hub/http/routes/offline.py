"""Listeners' offline downloads on a speaker, and the admin's list of licences.

Reads need ``user-read-playback-state``, changes ``user-modify-playback-state``;
each listener sees and changes only their own downloads.  Adding and removing
also ask the speaker (when online) to sync at once.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from fastapi.concurrency import run_in_threadpool

from hub.accounts import scopes
from hub.accounts.users import User
from hub.errors import CatalogError, OfflineError, OfflineForbidden
from hub.http import offline_models as m
from hub.http.deps import AdminDep, ContextDep, limited_user
from hub.http.validation import JsonBodyRoute
from hub.offline.items import split_uris

router = APIRouter(
    prefix="/v1",
    tags=["offline downloads"],
    responses=m.OFFLINE_ERRORS,
    route_class=JsonBodyRoute,  # a JSON body whatever its Content-Type (curl -d)
)

DownloadsReader = Annotated[User, Depends(limited_user("standard", scopes.READ_PLAYBACK))]
DownloadsEditor = Annotated[User, Depends(limited_user("standard", scopes.MODIFY_PLAYBACK))]
UriList = Annotated[
    str,
    Query(
        max_length=20_000,
        description="comma-separated legato:track:, legato:album: or legato:playlist: URIs",
    ),
]


@router.put(
    "/devices/{device_id}/downloads",
    status_code=202,
    summary="Download tracks, albums or playlists to a speaker for offline play",
    response_model=m.Downloads,
)
async def add_downloads(
    device_id: str,
    body: Annotated[m.DownloadRequest, Body()],
    ctx: ContextDep,
    user: DownloadsEditor,
) -> dict[str, Any]:
    try:
        return await ctx.offline.download(user.id, device_id, body.uris)
    except CatalogError as exc:
        raise OfflineError(str(exc)) from None


@router.get(
    "/devices/{device_id}/downloads",
    summary="Your offline downloads on a speaker, with their progress and your licence",
    response_model=m.Downloads,
)
async def list_downloads(device_id: str, ctx: ContextDep, user: DownloadsReader) -> dict[str, Any]:
    return await run_in_threadpool(ctx.offline.document, user.id, device_id)


@router.get(
    "/devices/{device_id}/downloads/estimate",
    summary="How many tracks and bytes (per quality) these URIs would download",
    response_model=m.Estimate,
)
async def estimate(
    device_id: str, uris: UriList, ctx: ContextDep, user: DownloadsReader
) -> dict[str, Any]:
    return await run_in_threadpool(ctx.offline.estimate, device_id, split_uris(uris), user.id)


@router.delete(
    "/devices/{device_id}/downloads",
    status_code=204,
    summary="Remove offline downloads from a speaker (all of yours without uris)",
)
async def remove_downloads(
    device_id: str, ctx: ContextDep, user: DownloadsEditor, uris: UriList | None = None
) -> Response:
    await ctx.offline.remove_downloads(
        user.id, device_id, None if uris is None else split_uris(uris)
    )
    return Response(status_code=204)


@router.delete(
    "/devices/{device_id}/licence",
    status_code=204,
    summary="Revoke your offline licence on a speaker (admins: anyone's, with user)",
)
async def revoke_licence(
    device_id: str,
    ctx: ContextDep,
    user: DownloadsEditor,
    name: Annotated[
        str | None, Query(alias="user", max_length=64, description="whose (admins only)")
    ] = None,
) -> Response:
    user_id = user.id
    if name is not None and name != user.name:
        if not user.is_admin:
            raise OfflineForbidden("only an administrator may revoke another account's licence")
        user_id = await run_in_threadpool(ctx.offline.user_id, name)
    await ctx.offline.revoke_licence(device_id, user_id)
    return Response(status_code=204)


@router.get(
    "/licences",
    summary="Every offline licence the hub has issued (administrators)",
    response_model=m.Licences,
)
async def licences(ctx: ContextDep, _admin: AdminDep) -> dict[str, Any]:
    return {"licences": await run_in_threadpool(ctx.offline.licences)}
