"""Profiles with the Spotify Web API's paths and shapes: the current user's and others'."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from hub.accounts.users import user_id_of
from hub.errors import NotFound
from hub.http import models as m
from hub.http import objects
from hub.http.deps import ContextDep, ProfileReader
from hub.http.params import base

router = APIRouter(prefix="/v1", tags=["library"], responses=m.ERROR_RESPONSES)


@router.get("/me", summary="The current user's profile", response_model=m.PrivateUser)
def me(user: ProfileReader, request: Request) -> dict[str, Any]:
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
def user_profile(
    user_id: str, ctx: ContextDep, _user: ProfileReader, request: Request
) -> dict[str, Any]:
    with ctx.db.reading() as conn:
        found = user_id_of(conn, user_id)
    if found is None:
        raise NotFound(f"No user {user_id[:64]!r}")
    return objects.user(base(request), user_id)
