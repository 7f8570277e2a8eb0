"""Catalog endpoints with the Spotify Web API's paths and shapes: tracks, albums, artists,
audio features, recommendations and album art."""

from __future__ import annotations

import sqlite3
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from hub.catalog import reads, recommend
from hub.errors import CatalogError, NotFound
from hub.http import models as m
from hub.http import objects
from hub.http.deps import CatalogReader, ContextDep
from hub.http.params import Market, PageDep, base, check_id, id_list
from hub.http.routes import artwork
from hub.recommend import tuning
from hub.recommend.service import Ask

router = APIRouter(prefix="/v1", tags=["catalog"], responses=m.ERROR_RESPONSES)


def _one(items: list[dict[str, Any]], kind: str, item_id: str) -> dict[str, Any]:
    if not items:
        raise NotFound(f"Non existing {kind} id {item_id}")
    return items[0]


def _by_ids(items: list[dict[str, Any]], ids: list[str]) -> list[dict[str, Any] | None]:
    found = {i["id"]: i for i in items}
    return [found.get(i) for i in ids]


@router.get("/tracks/{track_id}", summary="Get a track", response_model=m.Track)
def track(
    track_id: str, ctx: ContextDep, _user: CatalogReader, request: Request, market: Market = None
) -> dict[str, Any]:
    check_id(track_id, "track")
    with ctx.db.reading() as conn:
        return _one(objects.tracks(conn, [track_id], base(request), market), "track", track_id)


@router.get("/tracks", summary="Get several tracks (up to 50 ids)", response_model=m.SeveralTracks)
def several_tracks(
    ctx: ContextDep, _user: CatalogReader, request: Request, ids: str, market: Market = None
) -> dict[str, Any]:
    wanted = id_list(ids, "track", 50)
    with ctx.db.reading() as conn:
        return {"tracks": _by_ids(objects.tracks(conn, wanted, base(request), market), wanted)}


@router.get("/albums/{album_id}", summary="Get an album", response_model=m.Album)
def album(
    album_id: str, ctx: ContextDep, _user: CatalogReader, request: Request, market: Market = None
) -> dict[str, Any]:
    check_id(album_id, "album")
    with ctx.db.reading() as conn:
        return _one(objects.albums(conn, [album_id], base(request), market), "album", album_id)


@router.get("/albums", summary="Get several albums (up to 20 ids)", response_model=m.SeveralAlbums)
def several_albums(
    ctx: ContextDep, _user: CatalogReader, request: Request, ids: str, market: Market = None
) -> dict[str, Any]:
    wanted = id_list(ids, "album", 20)
    with ctx.db.reading() as conn:
        return {"albums": _by_ids(objects.albums(conn, wanted, base(request), market), wanted)}


@router.get(
    "/albums/{album_id}/tracks",
    summary="Get an album's tracks",
    response_model=m.Paging[m.SimplifiedTrack],
)
def album_tracks(
    album_id: str,
    ctx: ContextDep,
    _user: CatalogReader,
    request: Request,
    page: PageDep,
    market: Market = None,
) -> dict[str, Any]:
    check_id(album_id, "album")
    limit, offset = page.limit, page.offset
    url = base(request)
    with ctx.db.reading() as conn:
        if not reads.album_exists(conn, album_id):
            raise NotFound(f"Non existing album id {album_id}")
        items, total = objects.album_tracks(conn, album_id, url, limit, offset, market)
    href = f"{url}/v1/albums/{album_id}/tracks"
    return objects.paging(href, items, limit, offset, total, market=market)


@router.get("/artists/{artist_id}", summary="Get an artist", response_model=m.Artist)
def artist(
    artist_id: str, ctx: ContextDep, _user: CatalogReader, request: Request
) -> dict[str, Any]:
    check_id(artist_id, "artist")
    with ctx.db.reading() as conn:
        return _one(objects.artists(conn, [artist_id], base(request)), "artist", artist_id)


@router.get(
    "/artists", summary="Get several artists (up to 50 ids)", response_model=m.SeveralArtists
)
def several_artists(
    ctx: ContextDep, _user: CatalogReader, request: Request, ids: str
) -> dict[str, Any]:
    wanted = id_list(ids, "artist", 50)
    with ctx.db.reading() as conn:
        return {"artists": _by_ids(objects.artists(conn, wanted, base(request)), wanted)}


def _artist_known(conn: sqlite3.Connection, artist_id: str) -> None:
    if not reads.artist_exists(conn, artist_id):
        raise NotFound(f"Non existing artist id {artist_id}")


@router.get(
    "/artists/{artist_id}/top-tracks",
    summary="An artist's ten most popular tracks",
    response_model=m.ArtistTopTracks,
)
def artist_top_tracks(
    artist_id: str,
    ctx: ContextDep,
    _user: CatalogReader,
    request: Request,
    market: Market = None,
    country: Market = None,
) -> dict[str, Any]:
    check_id(artist_id, "artist")
    market = market or country  # spotipy sends the older `country`
    with ctx.db.reading() as conn:
        _artist_known(conn, artist_id)
        rows = reads.artist_tracks_by_popularity(conn, artist_id)
        ids = [i for i, markets in rows if objects.playable_in(markets, market)][:10]
        return {"tracks": objects.tracks(conn, ids, base(request), market)}


ALBUM_GROUPS = ("album", "single", "compilation", "appears_on")


@router.get(
    "/artists/{artist_id}/albums",
    summary="An artist's albums",
    response_model=m.Paging[m.SimplifiedAlbum],
)
def artist_albums(
    artist_id: str,
    ctx: ContextDep,
    _user: CatalogReader,
    request: Request,
    page: PageDep,
    include_groups: str | None = None,
    market: Market = None,
    country: Market = None,
) -> dict[str, Any]:
    check_id(artist_id, "artist")
    limit, offset = page.limit, page.offset
    groups = [g.strip() for g in (include_groups or ",".join(ALBUM_GROUPS)).split(",") if g]
    bad = [g for g in groups if g not in ALBUM_GROUPS]
    if bad or not groups:
        raise CatalogError(f"include_groups takes some of {', '.join(ALBUM_GROUPS)}")
    market = market or country
    types = [g for g in groups if g != "appears_on"]
    url = base(request)
    with ctx.db.reading() as conn:
        _artist_known(conn, artist_id)
        found = reads.artist_albums(conn, artist_id, types, appears_on="appears_on" in groups)
        ids = [i for i, markets in found if objects.playable_in(markets, market)]
        albums = objects.albums_simplified(conn, ids[offset : offset + limit], url, market)
    href = f"{url}/v1/artists/{artist_id}/albums"
    return objects.paging(
        href, albums, limit, offset, len(ids), include_groups=include_groups, market=market
    )


@router.get(
    "/audio-features/{track_id}", summary="A track's audio features", response_model=m.AudioFeatures
)
def audio_features(
    track_id: str, ctx: ContextDep, _user: CatalogReader, request: Request
) -> dict[str, Any]:
    check_id(track_id, "track")
    with ctx.db.reading() as conn:
        found = objects.audio_features(conn, [track_id], base(request))
    return _one(found, "track", track_id)


@router.get(
    "/audio-features",
    summary="Audio features of several tracks (up to 100 ids)",
    response_model=m.SeveralAudioFeatures,
)
def several_audio_features(
    ctx: ContextDep, _user: CatalogReader, request: Request, ids: str
) -> dict[str, Any]:
    wanted = id_list(ids, "track", 100)
    with ctx.db.reading() as conn:
        found = objects.audio_features(conn, wanted, base(request))
    return {"audio_features": _by_ids(found, wanted)}


@router.get(
    "/recommendations",
    summary="Tracks for you like the seeds (min_/max_/target_ audio features tune them)",
    response_model=m.Recommendations,
)
async def recommendations(
    ctx: ContextDep,
    user: CatalogReader,
    request: Request,
    seed_tracks: str | None = None,
    seed_artists: str | None = None,
    seed_genres: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    market: Market = None,
) -> dict[str, Any]:
    tracks = id_list(seed_tracks, "track", 5) if seed_tracks else []
    artists = id_list(seed_artists, "artist", 5) if seed_artists else []
    genres = [g for g in (seed_genres or "").split(",") if g.strip()]
    if not tracks and not artists and not genres:
        raise CatalogError("Give at least one of seed_tracks, seed_artists, seed_genres")
    if len(tracks) + len(artists) + len(genres) > 5:
        raise CatalogError("At most 5 seeds in all")
    url = base(request)
    tuned = tuning.parse(request.query_params)

    def work() -> dict[str, Any]:
        with ctx.db.reading() as conn:
            allowed, pull = tuning.apply(conn, tuned)
        ask = Ask(
            seed_tracks=tracks,
            seed_artists=artists,
            seed_genres=genres,
            limit=limit * 2 if market else limit,  # room for what the market leaves out
            allowed=allowed,
            pull=pull,
        )
        with ctx.db.reading() as conn:
            if ctx.recommender.scoring().model is None:  # untrained: content alone
                picked, seeds = recommend.recommend(conn, tracks, artists, genres, 100, market)
                picked = [t for t in picked if allowed is None or t in allowed]
                picked = ctx.recommender.ruled(user.id, picked, ask.limit)
            else:
                picked = ctx.recommender.recommend(user.id, ask)
                seeds = recommend.seed_objects(tracks, artists, genres, len(picked))
            if market:
                playable = {t["id"] for t in objects.tracks(conn, picked, url, market)}
                picked = [t for t in picked if t in playable][:limit]
            return {"seeds": seeds, "tracks": objects.tracks(conn, picked, url, market)}

    return await run_in_threadpool(work)


@router.get(
    "/images/albums/{album_id}/{size}",
    summary="Album art, resized (640, 300 or 64 px)",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}},
)
async def album_image(album_id: str, size: int, ctx: ContextDep, request: Request) -> Response:
    check_id(album_id, "album")
    if size not in objects.IMAGE_SIZES:
        raise NotFound(f"No image size {size}; sizes are {objects.IMAGE_SIZES}")
    return await run_in_threadpool(artwork.serve, ctx, album_id, size, request)
