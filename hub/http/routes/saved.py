"""Saved tracks with the Spotify Web API's paths and shapes: ``/me/tracks`` (ids) and the
newer ``/me/library`` (URIs), each taking its list in the query or the body."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from fastapi.concurrency import run_in_threadpool

from hub.catalog import library
from hub.clock import now_ms
from hub.errors import CatalogError
from hub.http import models as m
from hub.http import objects
from hub.http.deps import ContextDep, LibraryEditor, LibraryReader
from hub.http.library_models import SavedTrackIds, SavedTrackUris
from hub.http.params import Market, PageDep, base, id_list
from hub.http.validation import JsonBodyRoute

router = APIRouter(
    prefix="/v1", tags=["library"], responses=m.ERROR_RESPONSES, route_class=JsonBodyRoute
)
#: At most this many tracks per save or removal, as Spotify's limit.
MOST_PER_CALL = 50


def _ids(listed: list[str]) -> list[str]:
    if len(listed) > MOST_PER_CALL:
        raise CatalogError(f"At most {MOST_PER_CALL} tracks per request")
    return library.track_ids_from(listed)


def _listed(request: Request, key: str, body: SavedTrackIds | SavedTrackUris | None) -> list[str]:
    """The tracks named in the query (comma-separated ``key``), else in the body."""
    raw = request.query_params.get(key)
    if raw:
        return _ids(raw.split(","))
    if body is None:
        raise CatalogError(f"{key} must name at least one track")
    return _ids(body.listed)


async def _write(ctx: ContextDep, user_id: int, ids: list[str], *, save: bool) -> Response:
    def work() -> None:
        with ctx.db.transaction() as conn:
            if save:
                library.save_tracks(conn, user_id, ids, now_ms())
            else:
                library.unsave_tracks(conn, user_id, ids)

    await run_in_threadpool(work)
    return Response(status_code=200)


IdsBody = Annotated[SavedTrackIds | None, Body()]
UrisBody = Annotated[SavedTrackUris | None, Body()]


@router.put("/me/tracks", summary="Save tracks for the current user (ids)")
async def save_by_id(
    ctx: ContextDep, user: LibraryEditor, request: Request, body: IdsBody = None
) -> Response:
    return await _write(ctx, user.id, _listed(request, "ids", body), save=True)


@router.delete("/me/tracks", summary="Remove saved tracks (ids)")
async def remove_by_id(
    ctx: ContextDep, user: LibraryEditor, request: Request, body: IdsBody = None
) -> Response:
    return await _write(ctx, user.id, _listed(request, "ids", body), save=False)


@router.put("/me/library", summary="Save tracks for the current user (uris)")
async def save_by_uri(
    ctx: ContextDep, user: LibraryEditor, request: Request, body: UrisBody = None
) -> Response:
    return await _write(ctx, user.id, _listed(request, "uris", body), save=True)


@router.delete("/me/library", summary="Remove saved tracks (uris)")
async def remove_by_uri(
    ctx: ContextDep, user: LibraryEditor, request: Request, body: UrisBody = None
) -> Response:
    return await _write(ctx, user.id, _listed(request, "uris", body), save=False)


@router.get(
    "/me/tracks/contains", summary="Are these tracks saved? (ids)", response_model=list[bool]
)
def saved_contains(ctx: ContextDep, user: LibraryReader, ids: str) -> list[bool]:
    wanted = id_list(ids, "track", MOST_PER_CALL)
    with ctx.db.reading() as conn:
        return library.saved_contains(conn, user.id, wanted)


@router.get(
    "/me/library/contains",
    summary="Are these items in the library? (uris)",
    response_model=list[bool],
)
def library_contains(ctx: ContextDep, user: LibraryReader, uris: str) -> list[bool]:
    ids = library.track_ids_from(uris.split(","))
    with ctx.db.reading() as conn:
        return library.saved_contains(conn, user.id, ids)


@router.get(
    "/me/tracks",
    summary="The current user's saved tracks, newest first",
    response_model=m.Paging[m.SavedTrack],
)
def saved_tracks(
    ctx: ContextDep, user: LibraryReader, request: Request, page: PageDep, market: Market = None
) -> dict[str, Any]:
    url = base(request)
    with ctx.db.reading() as conn:
        saved, total = library.saved_page(conn, user.id, page.limit, page.offset)
        found = objects.tracks(conn, [s.track_id for s in saved], url, market)
    by_id = {t["id"]: t for t in found}
    items = [
        {"added_at": objects.iso_time(s.added_ms), "track": by_id.get(s.track_id)} for s in saved
    ]
    href = f"{url}/v1/me/tracks"
    return objects.paging(href, items, page.limit, page.offset, total, market=market)
