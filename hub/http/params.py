"""Request parameters the Web API's routes share: paging, market, ids and the base URL.

Paging is one dependency (``PageDep``, or :func:`paged` for other bounds) so every
list answers ``limit`` and ``offset`` alike, with the bounds Spotify documents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

from hub.catalog.ids import is_base62_id
from hub.errors import CatalogError

Market = Annotated[
    str | None,
    Query(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2 country code"),
]


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    offset: int


def paged(
    *, default: int = 20, most: int = 50, least: int = 1, max_offset: int = 100_000
) -> Callable[..., Page]:
    """A dependency reading ``limit`` (``least``..``most``, ``default``) and ``offset``."""

    # Defaults, not ``Annotated``: postponed annotations cannot see this closure's bounds.
    def page(
        limit: int = Query(default, ge=least, le=most, description="Items per page"),
        offset: int = Query(0, ge=0, le=max_offset, description="Index of the first item"),
    ) -> Page:
        return Page(limit, offset)

    return page


#: 1..50 items a page (20 by default), as most of Spotify's lists.
PageDep = Annotated[Page, Depends(paged())]


def base(request: Request) -> str:
    """The hub's own URL as the client reached it, for links in answers."""
    return str(request.base_url).rstrip("/")


def check_id(value: str, kind: str) -> str:
    if not is_base62_id(value):
        raise CatalogError(f"Invalid {kind} id {value[:40]!r}: expected 22 base62 characters")
    return value


def id_list(raw: str, kind: str, most: int) -> list[str]:
    """Comma-separated catalog ids, each checked; at most ``most``."""
    ids = [i.strip() for i in raw.split(",") if i.strip()]
    if not ids:
        raise CatalogError("ids must name at least one id")
    if len(ids) > most:
        raise CatalogError(f"At most {most} ids per request")
    for i in ids:
        check_id(i, kind)
    return ids
