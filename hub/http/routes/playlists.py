"""Playlists with the Spotify Web API's paths and shapes: read, create, change details,
and add, reorder, replace or remove items (at ``/tracks`` and the newer ``/items``).

Bodies are :mod:`hub.http.library_models`; the work is :mod:`hub.catalog.library`'s,
in one transaction per request, run in the thread pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from hub.accounts import scopes
from hub.accounts.tokens import Session
from hub.accounts.users import user_id_of
from hub.catalog import library, reads
from hub.catalog.search import index_playlist
from hub.clock import now_ms
from hub.errors import CatalogError, Forbidden, NotFound
from hub.fields import Whole
from hub.http import models as m
from hub.http import objects
from hub.http.deps import ContextDep, PlaylistEditor, PlaylistReader, ProfileReader, SessionDep
from hub.http.library_models import AddItems, ChangeItems, NewPlaylist, PlaylistDetails, RemoveItems
from hub.http.params import Market, Page, PageDep, base, check_id, paged
from hub.http.validation import JsonBodyRoute

router = APIRouter(
    prefix="/v1", tags=["library"], responses=m.ERROR_RESPONSES, route_class=JsonBodyRoute
)
Obj = dict[str, Any]
#: A playlist's items come 100 to a page by default.
ItemsPage = Annotated[Page, Depends(paged(default=100, most=100))]


def need_playlist_scope(session: Session, *, public: bool) -> None:
    """Spotify's split: modifying a public playlist needs playlist-modify-public, a
    private (or collaborative) one playlist-modify-private."""
    wanted = scopes.MODIFY_PUBLIC_PLAYLISTS if public else scopes.MODIFY_PRIVATE_PLAYLISTS
    if wanted not in session.scopes:
        raise Forbidden(f"Insufficient client scope: this needs {wanted}")


def _json(body: Any, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status)


def _query_uris(request: Request) -> list[str] | None:
    """``?uris=a,b``: Spotify also takes the URIs in the query."""
    raw = request.query_params.get("uris")
    return raw.split(",") if raw else None


# --- reading ------------------------------------------------------------------------


def _playlist_page(
    ctx: ContextDep, request: Request, owner_id: int, private_too: bool, page: Page
) -> Obj:
    """A user's playlists; private ones only to their owner holding playlist-read-private."""
    with ctx.db.reading() as conn:
        ids, total = reads.owned_playlists(
            conn, owner_id, private_too=private_too, limit=page.limit, offset=page.offset
        )
        items = objects.playlists_simplified(conn, ids, base(request))
    return objects.paging(str(request.url).split("?")[0], items, page.limit, page.offset, total)


@router.get(
    "/me/playlists",
    summary="The current user's playlists",
    response_model=m.Paging[m.SimplifiedPlaylist],
)
def my_playlists(ctx: ContextDep, user: PlaylistReader, request: Request, page: PageDep) -> Obj:
    return _playlist_page(ctx, request, user.id, True, page)


@router.get(
    "/users/{user_id}/playlists",
    summary="A user's public playlists",
    response_model=m.Paging[m.SimplifiedPlaylist],
)
def user_playlists(
    user_id: str,
    ctx: ContextDep,
    user: ProfileReader,
    session: SessionDep,
    request: Request,
    page: PageDep,
) -> Obj:
    with ctx.db.reading() as conn:
        owner = user_id_of(conn, user_id)
    if owner is None:
        raise NotFound(f"No user {user_id[:64]!r}")
    private_too = owner == user.id and scopes.READ_PLAYLISTS in session.scopes
    return _playlist_page(ctx, request, owner, private_too, page)


@router.get("/playlists/{playlist_id}", summary="Get a playlist", response_model=m.Playlist)
def playlist(
    playlist_id: str, ctx: ContextDep, user: ProfileReader, request: Request, market: Market = None
) -> Obj:
    check_id(playlist_id, "playlist")
    url = base(request)
    with ctx.db.reading() as conn:
        library.get_playlist(conn, playlist_id, user.id)
        obj = objects.playlists_simplified(conn, [playlist_id], url)[0]
        items, total = objects.playlist_items(conn, playlist_id, url, 100, 0, market)
    obj["tracks"] = objects.paging(obj["tracks"]["href"], items, 100, 0, total, market=market)
    obj["followers"] = {"href": None, "total": 0}
    return obj


@router.get(
    "/playlists/{playlist_id}/tracks",
    summary="A playlist's items",
    response_model=m.Paging[m.PlaylistTrack],
)
@router.get(
    "/playlists/{playlist_id}/items",
    summary="A playlist's items (newer path)",
    response_model=m.Paging[m.PlaylistTrack],
)
def playlist_items(
    playlist_id: str,
    ctx: ContextDep,
    user: ProfileReader,
    request: Request,
    page: ItemsPage,
    market: Market = None,
) -> Obj:
    check_id(playlist_id, "playlist")
    url = base(request)
    limit, offset = page.limit, page.offset
    with ctx.db.reading() as conn:
        library.get_playlist(conn, playlist_id, user.id)
        items, total = objects.playlist_items(conn, playlist_id, url, limit, offset, market)
    href = str(request.url).split("?")[0]
    return objects.paging(href, items, limit, offset, total, market=market)


# --- creating and changing details ----------------------------------------------------


async def _create(
    ctx: ContextDep, session: Session, request: Request, body: NewPlaylist
) -> Response:
    public = body.public is not False
    need_playlist_scope(session, public=public)
    user_id = session.user.id

    def work() -> Response:
        with ctx.db.transaction() as conn:
            playlist_id = library.create_playlist(
                conn,
                user_id,
                body.name,
                description=body.description or "",
                public=public,
                collaborative=bool(body.collaborative),
                now_ms=now_ms(),
            )
            index_playlist(conn, playlist_id)
            created = objects.playlists_simplified(conn, [playlist_id], base(request))[0]
            created["tracks"] = objects.paging(created["tracks"]["href"], [], 100, 0, 0)
        return _json(created, 201)

    return await run_in_threadpool(work)


@router.post(
    "/users/{user_id}/playlists",
    status_code=201,
    summary="Create a playlist",
    response_model=None,
    responses={201: {"model": m.SimplifiedPlaylist}},
)
async def create_for_user(
    user_id: str,
    ctx: ContextDep,
    user: PlaylistEditor,
    session: SessionDep,
    request: Request,
    body: Annotated[NewPlaylist, Body()],
) -> Response:
    if user_id != user.name:
        raise Forbidden("You can only create playlists for yourself")
    return await _create(ctx, session, request, body)


@router.post(
    "/me/playlists",
    status_code=201,
    summary="Create a playlist for the current user",
    response_model=None,
    responses={201: {"model": m.SimplifiedPlaylist}},
)
async def create_for_me(
    ctx: ContextDep,
    _user: PlaylistEditor,
    session: SessionDep,
    request: Request,
    body: Annotated[NewPlaylist, Body()],
) -> Response:
    return await _create(ctx, session, request, body)


@router.put("/playlists/{playlist_id}", summary="Change a playlist's details")
async def change_details(
    playlist_id: str,
    ctx: ContextDep,
    user: PlaylistEditor,
    session: SessionDep,
    body: Annotated[PlaylistDetails | None, Body()] = None,
) -> Response:
    check_id(playlist_id, "playlist")
    details = body or PlaylistDetails()

    def work() -> Response:
        with ctx.db.transaction() as conn:
            found = library.editable(conn, playlist_id, user.id)
            if found.owner_id != user.id:
                raise Forbidden("Only the owner can change a playlist's details")
            need_playlist_scope(session, public=found.public)
            if details.public is not None:
                need_playlist_scope(session, public=details.public)
            library.change_details(
                conn,
                found,
                name=details.name,
                description=details.description,
                public=details.public,
                collaborative=details.collaborative,
            )
            index_playlist(conn, playlist_id)  # name, description or visibility changed
        return Response(status_code=200)

    return await run_in_threadpool(work)


# --- items ----------------------------------------------------------------------------


async def _add(
    playlist_id: str,
    ctx: ContextDep,
    user: PlaylistEditor,
    session: SessionDep,
    request: Request,
    body: Annotated[AddItems | None, Body()] = None,
    position: Whole | None = None,
) -> Response:
    check_id(playlist_id, "playlist")
    uris = body.uris if body is not None and body.uris is not None else _query_uris(request)
    if uris is None:
        raise CatalogError("uris must be a list of track URIs")
    at = body.position if body is not None and "position" in body.model_fields_set else position
    ids = library.track_ids_from(uris)

    def work() -> Response:
        with ctx.db.transaction() as conn:
            found = library.editable(conn, playlist_id, user.id, adding=True)
            need_playlist_scope(session, public=found.public)
            snap = library.add_items(
                conn, found, ids, position=at, user_id=user.id, now_ms=now_ms()
            )
        return _json({"snapshot_id": snap}, 201)

    return await run_in_threadpool(work)


async def _change(
    playlist_id: str,
    ctx: ContextDep,
    user: PlaylistEditor,
    session: SessionDep,
    request: Request,
    body: Annotated[ChangeItems | None, Body()] = None,
) -> Response:
    """PUT: reorder (range_start/insert_before) or replace the items (uris)."""
    check_id(playlist_id, "playlist")
    change = body or ChangeItems()
    if change.reorders and (change.range_start is None or change.insert_before is None):
        raise CatalogError("range_start and insert_before are both required")
    uris = change.uris if change.uris is not None else _query_uris(request)
    if not change.reorders and uris is None:
        raise CatalogError("Give uris (to replace) or range_start and insert_before")

    def work() -> Response:
        with ctx.db.transaction() as conn:
            found = library.editable(conn, playlist_id, user.id)
            need_playlist_scope(session, public=found.public)
            start, before = change.range_start, change.insert_before
            if start is not None and before is not None:
                snap = library.reorder(
                    conn,
                    found,
                    range_start=start,
                    insert_before=before,
                    range_length=1 if change.range_length is None else change.range_length,
                    snapshot=change.snapshot_id,
                )
            else:
                ids = library.track_ids_from(uris or [])
                snap = library.replace_items(conn, found, ids, user_id=user.id, now_ms=now_ms())
        return _json({"snapshot_id": snap})

    return await run_in_threadpool(work)


async def _remove(
    playlist_id: str,
    ctx: ContextDep,
    user: PlaylistEditor,
    session: SessionDep,
    body: Annotated[RemoveItems | None, Body()] = None,
) -> Response:
    check_id(playlist_id, "playlist")
    if body is None:
        raise CatalogError("items must be a non-empty list of {uri, positions?}")
    removals = [(library.track_ids_from([i.uri])[0], i.positions) for i in body.removals]
    snapshot = body.snapshot_id

    def work() -> Response:
        with ctx.db.transaction() as conn:
            found = library.editable(conn, playlist_id, user.id)
            need_playlist_scope(session, public=found.public)
            snap = library.remove_items(conn, found, removals, snapshot=snapshot)
        return _json({"snapshot_id": snap})

    return await run_in_threadpool(work)


_ITEM_WRITES: list[tuple[str, Callable[..., Any], int, str]] = [
    ("POST", _add, 201, "Add items"),
    ("PUT", _change, 200, "Reorder or replace a playlist's items"),
    ("DELETE", _remove, 200, "Remove items"),
]
for _path in ("/playlists/{playlist_id}/tracks", "/playlists/{playlist_id}/items"):
    for _method, _endpoint, _status, _summary in _ITEM_WRITES:
        router.add_api_route(
            _path,
            _endpoint,
            methods=[_method],
            status_code=_status,
            summary=_summary,
            response_model=None,
            responses={_status: {"model": m.SnapshotId}},
        )
