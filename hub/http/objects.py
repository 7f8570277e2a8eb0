"""The Spotify Web API's catalog objects, shaped from the catalog's rows.

Every function takes an open connection and a list of ids and returns the objects in
the order of the ids (unknown ids are left out; callers that must answer ``null`` for
them, as ``GET /v1/tracks?ids=`` does, map by id).  The rows come from
:mod:`hub.catalog.reads` in batches, so a 50-track page costs a handful of queries.  Field names and
nesting follow Spotify's reference, so clients written against it (spotipy) work;
``uri`` is ``legato:{type}:{id}`` (the hub accepts ``spotify:`` URIs as an alias).
"""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, Literal
from urllib.parse import urlencode

from hub.catalog import reads, recommend
from hub.catalog.library import snapshot_id
from hub.catalog.recommend import FEATURES

Obj = dict[str, Any]
#: Sizes album art is served at (``GET /v1/images/albums/{id}/{size}``), largest first.
IMAGE_SIZES = (640, 300, 64)


def markets(text: str) -> list[str]:
    """Markets column ('' = everywhere) as Spotify's ``available_markets`` list."""
    return text.split() if text else []


def playable_in(text: str, market: str | None) -> bool:
    return not market or not text or market.upper() in text.split()


def _link(base_url: str, kind: str, item_id: str) -> Obj:
    return {
        "id": item_id,
        "type": kind,
        "uri": f"legato:{kind}:{item_id}",
        "href": f"{base_url}/v1/{kind}s/{item_id}",
        "external_urls": {"legato": f"{base_url}/v1/{kind}s/{item_id}"},
    }


def simplified_artist(base_url: str, artist_id: str, name: str) -> Obj:
    return {**_link(base_url, "artist", artist_id), "name": name}


def _credits(
    conn: sqlite3.Connection, of: Literal["track", "album"], ids: Sequence[str], base_url: str
) -> dict[str, list[Obj]]:
    found = reads.credits(conn, of, ids)
    return {k: [simplified_artist(base_url, a, name) for a, name in v] for k, v in found.items()}


def images(
    conn: sqlite3.Connection, album_ids: Sequence[str], base_url: str
) -> dict[str, list[Obj]]:
    """Album art links at each served size (none when the album has no art)."""
    have = reads.albums_with_art(conn, album_ids)
    return {
        a: [
            {"url": f"{base_url}/v1/images/albums/{a}/{size}", "height": size, "width": size}
            for size in IMAGE_SIZES
        ]
        for a in have
    }


def _release_precision(date: str) -> str:
    return {4: "year", 7: "month", 10: "day"}.get(len(date), "year")


def albums_simplified(
    conn: sqlite3.Connection, ids: Sequence[str], base_url: str, market: str | None = None
) -> list[Obj]:
    rows = reads.albums(conn, ids)
    found = [i for i in ids if i in rows]
    credits = _credits(conn, "album", found, base_url)
    art = images(conn, found, base_url)
    out = []
    for i in found:
        r = rows[i]
        obj: Obj = {
            **_link(base_url, "album", i),
            "name": r["name"],
            "album_type": r["album_type"],
            "total_tracks": r["total_tracks"],
            "available_markets": markets(r["markets"]),
            "images": art.get(i, []),
            "release_date": r["release_date"] or "",
            "release_date_precision": _release_precision(r["release_date"] or ""),
            "artists": credits.get(i, []),
        }
        if market:
            obj["is_playable"] = playable_in(r["markets"], market)
        out.append(obj)
    return out


def albums(
    conn: sqlite3.Connection,
    ids: Sequence[str],
    base_url: str,
    market: str | None = None,
    *,
    track_limit: int = 50,
) -> list[Obj]:
    """Full album objects, each with the first page of its tracks."""
    simple = albums_simplified(conn, ids, base_url, market)
    if not simple:
        return []
    extra = reads.albums(conn, [a["id"] for a in simple])
    out = []
    for album in simple:
        tracks, total = album_tracks(conn, album["id"], base_url, track_limit, 0, market)
        href = f"{base_url}/v1/albums/{album['id']}/tracks"
        out.append(
            {
                **album,
                "label": extra[album["id"]]["label"],
                "popularity": extra[album["id"]]["popularity"],
                "genres": [],
                "copyrights": [],
                "external_ids": {},
                "tracks": paging(href, tracks, track_limit, 0, total),
            }
        )
    return out


def _track_fields(r: sqlite3.Row, base_url: str, artists: list[Obj], market: str | None) -> Obj:
    obj: Obj = {
        **_link(base_url, "track", r["id"]),
        "name": r["name"],
        "artists": artists,
        "available_markets": markets(r["markets"]),
        "disc_number": r["disc_number"],
        "track_number": r["track_number"],
        "duration_ms": r["duration_ms"],
        "explicit": bool(r["explicit"]),
        "is_local": False,
        "preview_url": None,
    }
    if market:
        obj["is_playable"] = playable_in(r["markets"], market)
    return obj


def tracks(
    conn: sqlite3.Connection, ids: Sequence[str], base_url: str, market: str | None = None
) -> list[Obj]:
    """Full track objects (with their simplified album)."""
    rows = reads.tracks(conn, ids)
    found = [i for i in ids if i in rows]
    credits = _credits(conn, "track", found, base_url)
    album_ids = list(dict.fromkeys(rows[i]["album_id"] for i in found))
    album_objs = {a["id"]: a for a in albums_simplified(conn, album_ids, base_url, market)}
    out = []
    for i in found:
        r = rows[i]
        obj = _track_fields(r, base_url, credits.get(i, []), market)
        obj["album"] = album_objs.get(r["album_id"])
        obj["popularity"] = r["popularity"]
        obj["external_ids"] = {"isrc": r["isrc"]} if r["isrc"] else {}
        out.append(obj)
    return out


def album_tracks(
    conn: sqlite3.Connection,
    album_id: str,
    base_url: str,
    limit: int,
    offset: int,
    market: str | None = None,
) -> tuple[list[Obj], int]:
    """One page of an album's simplified tracks, in disc and track order, and the total."""
    rows, total = reads.album_track_page(conn, album_id, limit, offset)
    credits = _credits(conn, "track", [r["id"] for r in rows], base_url)
    return [_track_fields(r, base_url, credits.get(r["id"], []), market) for r in rows], total


def artists(conn: sqlite3.Connection, ids: Sequence[str], base_url: str) -> list[Obj]:
    """Full artist objects."""
    rows = reads.artists(conn, ids)
    found = [i for i in ids if i in rows]
    picture_albums = reads.artist_picture_albums(conn, found)
    pictures = images(conn, list(picture_albums.values()), base_url)
    out = []
    for i in found:
        r = rows[i]
        album = picture_albums.get(i)
        out.append(
            {
                **simplified_artist(base_url, i, r["name"]),
                "popularity": r["popularity"],
                "genres": r["genres"].split(",") if r["genres"] else [],
                "followers": {"href": None, "total": r["followers"]},
                "images": pictures.get(album, []) if album is not None else [],
            }
        )
    return out


def user(base_url: str, name: str) -> Obj:
    """A public user object (Spotify's ids are strings: the user's name is the id)."""
    return {
        "id": name,
        "type": "user",
        "uri": f"legato:user:{name}",
        "href": f"{base_url}/v1/users/{name}",
        "display_name": name,
        "external_urls": {"legato": f"{base_url}/v1/users/{name}"},
        "followers": {"href": None, "total": 0},
        "images": [],
    }


def playlists_simplified(conn: sqlite3.Connection, ids: Sequence[str], base_url: str) -> list[Obj]:
    rows = reads.playlists(conn, ids)
    found = [i for i in ids if i in rows]
    first_albums = reads.playlist_first_albums(conn, found)
    art = images(conn, list(first_albums.values()), base_url)
    out = []
    for i in found:
        r = rows[i]
        first = first_albums.get(i)
        out.append(
            {
                **_link(base_url, "playlist", i),
                "name": r["name"],
                "description": r["description"],
                "public": bool(r["public"]),
                "collaborative": bool(r["collaborative"]),
                "owner": user(base_url, r["owner_name"]),
                "snapshot_id": snapshot_id(i, r["version"]),
                "images": art.get(first, []) if first is not None else [],
                "tracks": {"href": f"{base_url}/v1/playlists/{i}/tracks", "total": r["total"]},
                "primary_color": None,
            }
        )
    return out


def playlist_items(
    conn: sqlite3.Connection,
    playlist_id: str,
    base_url: str,
    limit: int,
    offset: int,
    market: str | None = None,
) -> tuple[list[Obj], int]:
    """One page of a playlist's items (``added_at``, ``added_by``, ``track``), and the total."""
    rows, total = reads.playlist_item_page(conn, playlist_id, limit, offset)
    by_id = {t["id"]: t for t in tracks(conn, [r["track_id"] for r in rows], base_url, market)}
    items = [
        {
            "added_at": iso_time(r["added_ms"]),
            "added_by": user(base_url, r["uname"]) if r["uname"] else None,
            "is_local": False,
            "track": by_id.get(r["track_id"]),
        }
        for r in rows
    ]
    return items, total


def iso_time(ms: int) -> str:
    """Spotify's timestamps: ISO 8601 UTC with a Z."""
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def paging(
    href: str, items: Iterable[Obj], limit: int, offset: int, total: int, **query: Any
) -> Obj:
    """Spotify's paging object; ``next``/``previous`` point at the hub with the same query."""
    items = list(items)

    def page(at: int) -> str:
        params = {**{k: v for k, v in query.items() if v is not None}, "offset": at, "limit": limit}
        return f"{href}?{urlencode(params)}"

    return {
        "href": page(offset),
        "items": items,
        "limit": limit,
        "offset": offset,
        "total": total,
        "next": page(offset + limit) if limit and offset + limit < total else None,
        "previous": page(max(0, offset - limit)) if offset > 0 and limit else None,
    }


def audio_features(conn: sqlite3.Connection, ids: Sequence[str], base_url: str) -> list[Obj]:
    """Spotify's audio-features objects for the ids that have them, in order."""
    rows = recommend.features_rows(conn, ids)
    out = []
    for i in ids:
        r = rows.get(i)
        if r is None:
            continue
        obj = {k: r[k] for k in (*FEATURES, "loudness", "tempo", "key", "mode", "time_signature")}
        obj.update(
            id=i,
            type="audio_features",
            uri=f"legato:track:{i}",
            track_href=f"{base_url}/v1/tracks/{i}",
            analysis_url=None,
            duration_ms=r["duration_ms"],
        )
        out.append(obj)
    return out
