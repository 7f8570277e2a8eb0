"""``GET /v1/search``: the Spotify Web API's search, over the hub's catalog.

One paging object per requested type (``tracks``, ``artists``, ``albums``,
``playlists``), its ``next`` and ``previous`` pointing back at this hub.  The work is
:func:`hub.catalog.search.find`; the items are :mod:`hub.http.objects`'s.  A sync route, so the
SQLite work runs in FastAPI's thread pool rather than on the event loop.
"""

from __future__ import annotations

import sqlite3
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from hub.accounts import scopes
from hub.accounts.users import User
from hub.catalog import search
from hub.errors import RequestError
from hub.http import models as m
from hub.http import objects
from hub.http.deps import ContextDep, SessionDep, limited_user
from hub.http.params import Market, Page, base, paged

router = APIRouter(prefix="/v1", tags=["search"], responses=m.ERROR_RESPONSES)
SearchUser = Annotated[User, Depends(limited_user("search"))]
#: Spotify's search pages: 0-50 items, at most 1,000 deep.
SearchPage = Annotated[Page, Depends(paged(least=0, max_offset=1000))]
#: The Web API's ``type`` values we serve, and their keys in the answer.
KEYS = {"album": "albums", "artist": "artists", "playlist": "playlists", "track": "tracks"}
_TYPE = "(album|artist|playlist|track)"
TYPE_PATTERN = f"^{_TYPE}(,{_TYPE})*$"


class SearchResults(m.Model):
    """Only the requested types' keys are present."""

    tracks: m.Paging[m.Track] | None = None
    artists: m.Paging[m.Artist] | None = None
    albums: m.Paging[m.SimplifiedAlbum] | None = None
    playlists: m.Paging[m.SimplifiedPlaylist] | None = None


def requested_types(raw: str) -> list[str]:
    """The ``type`` list, in order, without repeats (FastAPI checked it against
    :data:`TYPE_PATTERN`; this is the same rule, for callers that did not)."""
    kinds: list[str] = []
    for part in raw.split(","):
        kind = part.strip().lower()
        if kind not in KEYS:
            raise RequestError(
                f"Bad search type field {part.strip()[:40]!r}: use album, artist, playlist"
                " or track, comma-separated"
            )
        if kind not in kinds:
            kinds.append(kind)
    return kinds


def _items(
    conn: sqlite3.Connection, kind: str, ids: list[str], base_url: str, market: str | None
) -> list[dict[str, Any]]:
    if kind == "track":
        return objects.tracks(conn, ids, base_url, market)
    if kind == "artist":
        return objects.artists(conn, ids, base_url)
    if kind == "album":
        return objects.albums_simplified(conn, ids, base_url, market)
    return objects.playlists_simplified(conn, ids, base_url)


@router.get(
    "/search",
    summary="Search for items",
    description=(
        "Tracks, artists, albums and public playlists (and the caller's own) whose names"
        " match `q`. The last word is completed as typed unless `q` ends in a space;"
        " case and diacritics are ignored and small typos corrected. Filters:"
        ' `artist:`, `album:`, `track:` (a word or a "quoted phrase") and `year:1999`'
        " or `year:1990-1999` (`genre:`, `isrc:`, `upc:` and `tag:` are read as plain"
        " words). Results blend relevance with popularity; at most"
        " 1,000 per type can be paged through, and `total` counts up to 1,000."
    ),
    response_model=SearchResults,
    response_model_exclude_unset=True,
)
def search_catalog(
    request: Request,
    ctx: ContextDep,
    user: SearchUser,
    session: SessionDep,
    q: Annotated[str, Query(min_length=1, description="The search text, with optional filters")],
    kinds: Annotated[
        str,
        Query(
            alias="type",
            pattern=TYPE_PATTERN,
            description="Comma-separated: album, artist, playlist, track",
        ),
    ],
    page: SearchPage,
    market: Market = None,
    include_external: Annotated[
        Literal["audio"] | None, Query(description="Accepted for compatibility; no effect")
    ] = None,
) -> dict[str, Any]:
    if not q.strip():
        raise RequestError("No search query")
    wanted = requested_types(kinds)
    base_url = base(request)
    answer: dict[str, Any] = {}
    with ctx.db.reading() as conn:
        pages = search.find(
            conn,
            q,
            wanted,
            limit=page.limit,
            offset=page.offset,
            market=market,
            # one's own private playlists too, with the scope that reads them
            user_id=user.id if scopes.READ_PLAYLISTS in session.scopes else None,
        )
        for kind in wanted:
            found = pages[kind]
            items = _items(conn, kind, list(found.ids), base_url, market)
            answer[KEYS[kind]] = objects.paging(
                f"{base_url}/v1/search",
                items,
                page.limit,
                page.offset,
                found.total,
                q=q,
                type=kind,
                market=market,
                include_external=include_external,
            )
    return answer
