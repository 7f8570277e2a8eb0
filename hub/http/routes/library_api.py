"""The listener's own things with the Spotify Web API's paths and shapes: profile,
playlists, saved tracks, recently played and the queue."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from hub.accounts import scopes
from hub.accounts.tokens import Session, User
from hub.catalog import library, search
from hub.clock import now_ms
from hub.errors import CatalogError, Forbidden, NotFound
from hub.http import models as m
from hub.http import objects
from hub.http.deps import (
    ContextDep,
    HistoryReader,
    LibraryEditor,
    LibraryReader,
    PlaylistEditor,
    PlaylistReader,
    ProfileReader,
    QueueReader,
    SessionDep,
)
from hub.http.routes.catalog_api import Limit, Market, Offset, base, check_id, id_list

#: 100 URIs of a few dozen bytes, or a playlist's details, fit many times over.
MAX_BODY_BYTES = 256 * 1024
router = APIRouter(prefix="/v1", tags=["library"], responses=m.ERROR_RESPONSES)
Body = dict[str, Any]


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    if len(raw) > MAX_BODY_BYTES:
        raise CatalogError(f"The request body is over {MAX_BODY_BYTES // 1024} KiB")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise CatalogError("Malformed JSON body") from None


def _object(body: Any) -> Body:
    if not isinstance(body, dict):
        raise CatalogError("The request body must be a JSON object")
    return body


def need_playlist_scope(session: Session, *, public: bool) -> None:
    """Spotify's split: modifying a public playlist needs playlist-modify-public, a
    private (or collaborative) one playlist-modify-private."""
    wanted = scopes.MODIFY_PUBLIC_PLAYLISTS if public else scopes.MODIFY_PRIVATE_PLAYLISTS
    if wanted not in session.scopes:
        raise Forbidden(f"Insufficient client scope: this needs {wanted}")


def _opt_bool(body: Body, key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise CatalogError(f"{key} must be true or false")
    return value


def _opt_str(body: Body, key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise CatalogError(f"{key} must be a string")
    return value


def _opt_int(body: Body, key: str) -> int | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise CatalogError(f"{key} must be an integer")
    return value


# --- profile ------------------------------------------------------------------------


@router.get("/me", summary="The current user's profile", response_model=m.PrivateUser)
def me(user: ProfileReader, request: Request) -> Body:
    return {
        **objects.user(base(request), user.name),
        "country": "ZZ",
        "product": "premium",
        "explicit_content": {"filter_enabled": False, "filter_locked": False},
        # Legato extension: the dashboard shows its link to admins only
        "is_admin": user.is_admin,
    }


router.add_api_route("/me/", me, methods=["GET"], include_in_schema=False)  # spotipy's me()


@router.get("/users/{user_id}", summary="A user's public profile", response_model=m.PublicUser)
def user_profile(user_id: str, ctx: ContextDep, _user: ProfileReader, request: Request) -> Body:
    with ctx.db.reading() as conn:
        row = conn.execute("SELECT id, name FROM users WHERE name = ?", (user_id,)).fetchone()
    if row is None:
        raise NotFound(f"No user {user_id[:64]!r}")
    return objects.user(base(request), row["name"])


# --- playlists ----------------------------------------------------------------------


def _playlist_page(
    ctx: ContextDep, request: Request, owner_id: int, private_too: bool, limit: int, offset: int
) -> Body:
    """A user's playlists; private ones only to their owner holding playlist-read-private."""
    url = base(request)
    with ctx.db.reading() as conn:
        where = "owner_id = ?" + ("" if private_too else " AND public = 1")
        total = conn.execute(f"SELECT COUNT(*) FROM playlists WHERE {where}", (owner_id,))
        total_n = int(total.fetchone()[0])
        ids = [
            r[0]
            for r in conn.execute(
                f"SELECT id FROM playlists WHERE {where} ORDER BY created_ms DESC, id"
                " LIMIT ? OFFSET ?",
                (owner_id, limit, offset),
            )
        ]
        items = objects.playlists_simplified(conn, ids, url)
    return objects.paging(str(request.url).split("?")[0], items, limit, offset, total_n)


@router.get(
    "/me/playlists",
    summary="The current user's playlists",
    response_model=m.Paging[m.SimplifiedPlaylist],
)
def my_playlists(
    ctx: ContextDep, user: PlaylistReader, request: Request, limit: Limit = 20, offset: Offset = 0
) -> Body:
    return _playlist_page(ctx, request, user.id, True, limit, offset)


def _user_id(ctx: ContextDep, name: str) -> int:
    with ctx.db.reading() as conn:
        row = conn.execute("SELECT id FROM users WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise NotFound(f"No user {name[:64]!r}")
    return int(row[0])


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
    limit: Limit = 20,
    offset: Offset = 0,
) -> Body:
    owner = _user_id(ctx, user_id)
    private_too = owner == user.id and scopes.READ_PLAYLISTS in session.scopes
    return _playlist_page(ctx, request, owner, private_too, limit, offset)


async def _create(ctx: ContextDep, session: Session, request: Request) -> Response:
    body = _object(await json_body(request))
    name = _opt_str(body, "name")
    if name is None:
        raise CatalogError("name is required")
    need_playlist_scope(session, public=_opt_bool(body, "public") is not False)
    user_id = session.user.id

    def work() -> Any:
        with ctx.db.transaction() as conn:
            playlist_id = library.create_playlist(
                conn,
                user_id,
                name,
                description=_opt_str(body, "description") or "",
                public=_opt_bool(body, "public") is not False,
                collaborative=bool(_opt_bool(body, "collaborative")),
                now_ms=now_ms(),
            )
            search.index_playlist(conn, playlist_id)
            created = objects.playlists_simplified(conn, [playlist_id], base(request))[0]
            created["tracks"] = objects.paging(created["tracks"]["href"], [], 100, 0, 0)
        return _json(created, 201)

    return await run_in_threadpool(work)


def _json(body: Any, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status)


@router.post(
    "/users/{user_id}/playlists",
    status_code=201,
    summary="Create a playlist",
    response_model=None,
    responses={201: {"model": m.SimplifiedPlaylist}},
)
async def create_for_user(
    user_id: str, ctx: ContextDep, user: PlaylistEditor, session: SessionDep, request: Request
) -> Response:
    if user_id != user.name:
        raise Forbidden("You can only create playlists for yourself")
    return await _create(ctx, session, request)


@router.post(
    "/me/playlists",
    status_code=201,
    summary="Create a playlist for the current user",
    response_model=None,
    responses={201: {"model": m.SimplifiedPlaylist}},
)
async def create_for_me(
    ctx: ContextDep, _user: PlaylistEditor, session: SessionDep, request: Request
) -> Response:
    return await _create(ctx, session, request)


@router.get("/playlists/{playlist_id}", summary="Get a playlist", response_model=m.Playlist)
def playlist(
    playlist_id: str, ctx: ContextDep, user: ProfileReader, request: Request, market: Market = None
) -> Body:
    check_id(playlist_id, "playlist")
    url = base(request)
    with ctx.db.reading() as conn:
        library.get_playlist(conn, playlist_id, user.id)
        obj = objects.playlists_simplified(conn, [playlist_id], url)[0]
        items, total = objects.playlist_items(conn, playlist_id, url, 100, 0, market)
    obj["tracks"] = objects.paging(obj["tracks"]["href"], items, 100, 0, total, market=market)
    obj["followers"] = {"href": None, "total": 0}
    return obj


@router.put("/playlists/{playlist_id}", summary="Change a playlist's details")
async def change_details(
    playlist_id: str, ctx: ContextDep, user: PlaylistEditor, session: SessionDep, request: Request
) -> Response:
    check_id(playlist_id, "playlist")
    body = _object(await json_body(request))

    def work() -> Any:
        with ctx.db.transaction() as conn:
            found = library.editable(conn, playlist_id, user.id)
            if found.owner_id != user.id:
                raise Forbidden("Only the owner can change a playlist's details")
            need_playlist_scope(session, public=found.public)
            if _opt_bool(body, "public") is not None:
                need_playlist_scope(session, public=bool(_opt_bool(body, "public")))
            library.change_details(
                conn,
                found,
                name=_opt_str(body, "name"),
                description=_opt_str(body, "description"),
                public=_opt_bool(body, "public"),
                collaborative=_opt_bool(body, "collaborative"),
            )
            search.index_playlist(conn, playlist_id)  # name, description or visibility changed
        return Response(status_code=200)

    return await run_in_threadpool(work)


def _items_page(
    playlist_id: str,
    ctx: ContextDep,
    user: User,
    request: Request,
    market: str | None,
    limit: int,
    offset: int,
) -> Body:
    check_id(playlist_id, "playlist")
    url = base(request)
    with ctx.db.reading() as conn:
        library.get_playlist(conn, playlist_id, user.id)
        items, total = objects.playlist_items(conn, playlist_id, url, limit, offset, market)
    href = str(request.url).split("?")[0]
    return objects.paging(href, items, limit, offset, total, market=market)


Limit100 = Annotated[int, Query(ge=1, le=100)]


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
    market: Market = None,
    limit: Limit100 = 100,
    offset: Offset = 0,
) -> Body:
    return _items_page(playlist_id, ctx, user, request, market, limit, offset)


async def _add(
    playlist_id: str, ctx: ContextDep, user: PlaylistEditor, session: SessionDep, request: Request
) -> Response:
    check_id(playlist_id, "playlist")
    body = await json_body(request)
    uris: list[str]
    position = _query_int(request, "position")
    if isinstance(body, list):  # spotipy posts the bare list of URIs
        uris = body
    else:
        body = _object(body)
        raw = body.get("uris")
        if raw is None and request.query_params.get("uris"):
            raw = request.query_params["uris"].split(",")
        if not isinstance(raw, list):
            raise CatalogError("uris must be a list of track URIs")
        uris = raw
        position = _opt_int(body, "position") if "position" in body else position
    ids = library.track_ids_from(uris)

    def work() -> Any:
        with ctx.db.transaction() as conn:
            found = library.editable(conn, playlist_id, user.id, adding=True)
            need_playlist_scope(session, public=found.public)
            snap = library.add_items(
                conn, found, ids, position=position, user_id=user.id, now_ms=now_ms()
            )
        return _json({"snapshot_id": snap}, 201)

    return await run_in_threadpool(work)


def _query_int(request: Request, key: str) -> int | None:
    raw = request.query_params.get(key)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise CatalogError(f"{key} must be an integer") from None


async def _change(
    playlist_id: str, ctx: ContextDep, user: PlaylistEditor, session: SessionDep, request: Request
) -> Response:
    """PUT: reorder (range_start/insert_before) or replace the items (uris)."""
    check_id(playlist_id, "playlist")
    body = _object(await json_body(request))

    def work() -> Any:
        with ctx.db.transaction() as conn:
            found = library.editable(conn, playlist_id, user.id)
            need_playlist_scope(session, public=found.public)
            if "range_start" in body or "insert_before" in body:
                start, before = _opt_int(body, "range_start"), _opt_int(body, "insert_before")
                if start is None or before is None:
                    raise CatalogError("range_start and insert_before are both required")
                snap = library.reorder(
                    conn,
                    found,
                    range_start=start,
                    insert_before=before,
                    range_length=1
                    if body.get("range_length") is None
                    else _opt_int(body, "range_length") or 0,
                    snapshot=_opt_str(body, "snapshot_id"),
                )
            else:
                raw = body.get("uris")
                if raw is None and request.query_params.get("uris"):
                    raw = request.query_params["uris"].split(",")
                if not isinstance(raw, list):
                    raise CatalogError("Give uris (to replace) or range_start and insert_before")
                ids = library.track_ids_from(raw)
                snap = library.replace_items(conn, found, ids, user_id=user.id, now_ms=now_ms())
        return _json({"snapshot_id": snap})

    return await run_in_threadpool(work)


async def _remove(
    playlist_id: str, ctx: ContextDep, user: PlaylistEditor, session: SessionDep, request: Request
) -> Response:
    check_id(playlist_id, "playlist")
    body = _object(await json_body(request))
    entries = body.get("items", body.get("tracks"))
    if not isinstance(entries, list) or not entries:
        raise CatalogError("items must be a non-empty list of {uri, positions?}")
    removals: list[tuple[str, list[int] | None]] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("uri"), str):
            raise CatalogError("each item needs a uri")
        positions = entry.get("positions")
        if positions is not None and (
            not isinstance(positions, list) or not all(isinstance(p, int) for p in positions)
        ):
            raise CatalogError("positions must be a list of integers")
        removals.append((library.track_ids_from([entry["uri"]])[0], positions))

    def work() -> Any:
        with ctx.db.transaction() as conn:
            found = library.editable(conn, playlist_id, user.id)
            need_playlist_scope(session, public=found.public)
            snap = library.remove_items(
                conn, found, removals, snapshot=_opt_str(body, "snapshot_id")
            )
        return _json({"snapshot_id": snap})

    return await run_in_threadpool(work)


for path in ("/playlists/{playlist_id}/tracks", "/playlists/{playlist_id}/items"):
    router.add_api_route(
        path,
        _add,
        methods=["POST"],
        status_code=201,
        summary="Add items",
        response_model=None,
        responses={201: {"model": m.SnapshotId}},
    )
    router.add_api_route(
        path,
        _change,
        methods=["PUT"],
        summary="Reorder or replace a playlist's items",
        response_model=None,
        responses={200: {"model": m.SnapshotId}},
    )
    router.add_api_route(
        path,
        _remove,
        methods=["DELETE"],
        summary="Remove items",
        response_model=None,
        responses={200: {"model": m.SnapshotId}},
    )


# --- saved tracks (both the /me/tracks ids form and the newer /me/library uris form) ----


async def _ids_from(request: Request, key: str) -> list[str]:
    raw = request.query_params.get(key)
    values: Any
    if raw:
        values = raw.split(",")
    else:
        body = await json_body(request)
        values = body.get(key) if isinstance(body, dict) else body
        if not isinstance(values, list) or not values:
            raise CatalogError(f"{key} must name at least one track")
    if len(values) > 50:
        raise CatalogError("At most 50 tracks per request")
    return library.track_ids_from(values)


def _library_writer(key: str, *, save: bool) -> Callable[..., Awaitable[Response]]:
    """PUT (save) or DELETE (remove) of the tracks named by ``key`` (ids or uris)."""

    async def write(ctx: ContextDep, user: LibraryEditor, request: Request) -> Response:
        ids = await _ids_from(request, key)

        def work() -> None:
            with ctx.db.transaction() as conn:
                if save:
                    library.save_tracks(conn, user.id, ids, now_ms())
                else:
                    library.unsave_tracks(conn, user.id, ids)

        await run_in_threadpool(work)
        return Response(status_code=200)

    return write


for _path, _key in (("/me/tracks", "ids"), ("/me/library", "uris")):
    router.add_api_route(
        _path,
        _library_writer(_key, save=True),
        methods=["PUT"],
        summary=f"Save tracks for the current user ({_key})",
    )
    router.add_api_route(
        _path,
        _library_writer(_key, save=False),
        methods=["DELETE"],
        summary=f"Remove saved tracks ({_key})",
    )


@router.get(
    "/me/tracks/contains", summary="Are these tracks saved? (ids)", response_model=list[bool]
)
def saved_contains(ctx: ContextDep, user: LibraryReader, ids: str) -> list[bool]:
    wanted = id_list(ids, "track", 50)
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
    ctx: ContextDep,
    user: LibraryReader,
    request: Request,
    market: Market = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Body:
    url = base(request)
    with ctx.db.reading() as conn:
        total = conn.execute(
            "SELECT COUNT(*) FROM saved_tracks WHERE user_id = ?", (user.id,)
        ).fetchone()[0]
        rows = conn.execute(
            "SELECT track_id, added_ms FROM saved_tracks WHERE user_id = ?"
            " ORDER BY added_ms DESC, track_id LIMIT ? OFFSET ?",
            (user.id, limit, offset),
        ).fetchall()
        by_id = {t["id"]: t for t in objects.tracks(conn, [r[0] for r in rows], url, market)}
    items = [
        {"added_at": objects.iso_time(r["added_ms"]), "track": by_id.get(r["track_id"])}
        for r in rows
    ]
    return objects.paging(f"{url}/v1/me/tracks", items, limit, offset, total, market=market)


# --- recently played and the queue --------------------------------------------------


@router.get(
    "/me/player/recently-played",
    summary="Tracks the current user played lately",
    response_model=m.CursorPaging[m.PlayHistory],
)
def recently_played(
    ctx: ContextDep,
    user: HistoryReader,
    request: Request,
    limit: Limit = 20,
    after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    before: Annotated[int | None, Query(ge=0, le=2**62)] = None,
) -> Body:
    if after is not None and before is not None:
        raise CatalogError("Give after or before, not both")
    url = base(request)
    with ctx.db.reading() as conn:
        if after is not None:
            rows = conn.execute(
                "SELECT * FROM (SELECT track_id, played_ms, context_uri FROM plays"
                " WHERE user_id = ? AND played_ms > ? ORDER BY played_ms LIMIT ?)"
                " ORDER BY played_ms DESC",
                (user.id, after, limit),
            ).fetchall()
        else:
            rows = conn.execute(
                "SELECT track_id, played_ms, context_uri FROM plays WHERE user_id = ?"
                " AND played_ms < ? ORDER BY played_ms DESC LIMIT ?",
                (user.id, before if before is not None else 2**62, limit),
            ).fetchall()
        by_id = {t["id"]: t for t in objects.tracks(conn, [r[0] for r in rows], url)}
    items = [
        {
            "track": by_id.get(r["track_id"]),
            "played_at": objects.iso_time(r["played_ms"]),
            "context": {"type": r["context_uri"].split(":")[1], "uri": r["context_uri"]}
            if r["context_uri"] and r["context_uri"].count(":") == 2
            else None,
        }
        for r in rows
    ]
    href = f"{url}/v1/me/player/recently-played"
    oldest = rows[-1]["played_ms"] if rows else None
    return {
        "href": href,
        "items": items,
        "limit": limit,
        "next": f"{href}?before={oldest}&limit={limit}" if oldest is not None else None,
        "cursors": {
            "after": str(rows[0]["played_ms"]) if rows else None,
            "before": str(oldest) if oldest is not None else None,
        },
    }


@router.get(
    "/me/player/queue", summary="The playing track and the queue after it", response_model=m.Queue
)
def queue(ctx: ContextDep, _user: QueueReader, request: Request) -> Body:
    active = ctx.relay.active_device_id
    device = ctx.relay.devices.get(active) if active else None
    if device is None:
        return {"currently_playing": None, "queue": []}
    state = device.state
    uris = [t.uri for t in ([state.current] if state.current else []) + list(state.queue)]
    ids = [u.rsplit(":", 1)[-1] for u in uris]
    with ctx.db.reading() as conn:
        by_id = {t["id"]: t for t in objects.tracks(conn, ids, base(request))}
    current = by_id.get(ids[0]) if state.current else None
    rest = ids[1:] if state.current else ids
    return {"currently_playing": current, "queue": [by_id[i] for i in rest if i in by_id]}
