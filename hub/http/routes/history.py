"""What the listener played and what comes next, with the Spotify Web API's paths and
shapes: ``/me/player/recently-played`` (from :mod:`hub.catalog.plays`; ``DELETE``
clears the listener's history), ``/me/top/tracks`` and ``/me/top/artists`` (ranked
by :mod:`hub.listening.top`) and ``/me/player/queue`` (from the active speaker's
state)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from connect_protocol.uris import kind_of, track_id_of
from hub.catalog import plays
from hub.clock import now_ms
from hub.errors import CatalogError
from hub.http import models as m
from hub.http import objects
from hub.http.deps import ContextDep, HistoryEraser, HistoryReader, QueueReader, TopReader
from hub.http.params import PageDep, base
from hub.listening import retention, top

router = APIRouter(prefix="/v1", tags=["library"], responses=m.ERROR_RESPONSES)
Cursor = Annotated[int | None, Query(ge=0, le=2**62)]
Limit = Annotated[int, Query(ge=1, le=50, description="Items per page")]
TimeRange = Annotated[
    Literal["short_term", "medium_term", "long_term"],
    Query(description="short_term: 4 weeks, medium_term: 6 months, long_term: all history"),
]


def _context(uri: str | None) -> dict[str, str] | None:
    kind = kind_of(uri) if uri else None
    return None if kind is None or uri is None else {"type": kind, "uri": uri}


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
    after: Cursor = None,
    before: Cursor = None,
) -> dict[str, Any]:
    if after is not None and before is not None:
        raise CatalogError("Give after or before, not both")
    url = base(request)
    with ctx.db.reading() as conn:
        found = plays.recent(conn, user.id, limit, after_ms=after, before_ms=before)
        by_id = {t["id"]: t for t in objects.tracks(conn, [p.track_id for p in found], url)}
    items = [
        {
            "track": by_id.get(p.track_id),
            "played_at": objects.iso_time(p.played_ms),
            "context": _context(p.context_uri),
        }
        for p in found
    ]
    href = f"{url}/v1/me/player/recently-played"
    oldest = found[-1].played_ms if found else None
    return {
        "href": href,
        "items": items,
        "limit": limit,
        "next": f"{href}?before={oldest}&limit={limit}" if oldest is not None else None,
        "cursors": {
            "after": str(found[0].played_ms) if found else None,
            "before": str(oldest) if oldest is not None else None,
        },
    }


@router.delete(
    "/me/player/recently-played",
    summary="Clear the current user's listening history",
    status_code=204,
    response_class=Response,
)
async def clear_history(ctx: ContextDep, user: HistoryEraser) -> Response:
    await run_in_threadpool(retention.clear, ctx.db, user.id, now_ms())
    return Response(status_code=204)


@router.get(
    "/me/top/tracks",
    summary="The current user's most played tracks",
    response_model=m.Paging[m.Track],
)
def top_tracks(
    ctx: ContextDep,
    user: TopReader,
    request: Request,
    page: PageDep,
    time_range: TimeRange = "medium_term",
) -> dict[str, Any]:
    url = base(request)
    with ctx.db.reading() as conn:
        ranked = top.top_tracks(conn, user.id, time_range, now_ms())
        items = objects.tracks(conn, ranked[page.offset : page.offset + page.limit], url)
    href = f"{url}/v1/me/top/tracks"
    return objects.paging(href, items, page.limit, page.offset, len(ranked), time_range=time_range)


@router.get(
    "/me/top/artists",
    summary="The current user's most played artists",
    response_model=m.Paging[m.Artist],
)
def top_artists(
    ctx: ContextDep,
    user: TopReader,
    request: Request,
    page: PageDep,
    time_range: TimeRange = "medium_term",
) -> dict[str, Any]:
    url = base(request)
    with ctx.db.reading() as conn:
        ranked = top.top_artists(conn, user.id, time_range, now_ms())
        items = objects.artists(conn, ranked[page.offset : page.offset + page.limit], url)
    href = f"{url}/v1/me/top/artists"
    return objects.paging(href, items, page.limit, page.offset, len(ranked), time_range=time_range)


@router.get(
    "/me/player/queue", summary="The playing track and the queue after it", response_model=m.Queue
)
def queue(ctx: ContextDep, _user: QueueReader, request: Request) -> dict[str, Any]:
    active = ctx.relay.active_device_id
    device = ctx.relay.devices.get(active) if active else None
    if device is None:
        return {"currently_playing": None, "queue": []}
    state = device.state
    uris = [t.uri for t in ([state.current] if state.current else []) + list(state.queue)]
    ids = [track_id_of(u) for u in uris]
    with ctx.db.reading() as conn:
        by_id = {t["id"]: t for t in objects.tracks(conn, ids, base(request))}
    current = by_id.get(ids[0]) if state.current else None
    rest = ids[1:] if state.current else ids
    return {"currently_playing": current, "queue": [by_id[i] for i in rest if i in by_id]}
