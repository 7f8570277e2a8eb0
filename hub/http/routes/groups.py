"""``/v1/groups``: multiroom groups, made, listed, changed and removed.

Speakers are the household's, so every listener sees every group (as every
listener sees every speaker); only a group's owner or an administrator changes or
removes it.  Errors in the Web API's format: 400 for a bad name or member count,
404 for an unknown group or speaker, 409 for a speaker offline or in another group,
403 for someone else's group.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, ConfigDict, Field

from hub.accounts.users import User
from hub.fleet.groups import Owner
from hub.groups import rules
from hub.http.deps import ContextDep, PlaybackController, PlaybackReader
from hub.http.shapes import group_listing
from hub.http.validation import JsonBodyRoute

router = APIRouter(prefix="/v1/groups", tags=["player"], route_class=JsonBodyRoute)

DeviceIds = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=64)]],
    Field(
        min_length=rules.MIN_MEMBERS,
        max_length=rules.MAX_MEMBERS,
        description="The member speakers in order (the first online one leads)",
    ),
]
Name = Annotated[str, Field(min_length=1, max_length=rules.MAX_NAME_CHARS)]


class NewGroup(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    name: Name
    device_ids: DeviceIds


class GroupChange(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    device_ids: DeviceIds
    name: Name | None = None


def _owner(user: User) -> Owner:
    return Owner(id=user.id, name=user.name, is_admin=user.is_admin)


@router.post("", status_code=201, summary="Legato: make a group of speakers")
async def create_group(
    ctx: ContextDep, user: PlaybackController, body: Annotated[NewGroup, Body()]
) -> dict[str, Any]:
    view = await ctx.groups.create(_owner(user), body.name, body.device_ids)
    return group_listing(view)


@router.get("", summary="Legato: every group, with its members")
async def list_groups(ctx: ContextDep, _user: PlaybackReader) -> dict[str, Any]:
    return {"groups": [group_listing(v) for v in ctx.groups.views()]}


@router.put("/{group_id}", summary="Legato: change a group's members (and name)")
async def change_group(
    group_id: str, ctx: ContextDep, user: PlaybackController, body: Annotated[GroupChange, Body()]
) -> dict[str, Any]:
    view = await ctx.groups.update(_owner(user), group_id, body.device_ids, body.name)
    return group_listing(view)


@router.delete("/{group_id}", status_code=204, summary="Legato: remove a group")
async def delete_group(group_id: str, ctx: ContextDep, user: PlaybackController) -> Response:
    await ctx.groups.delete(_owner(user), group_id)
    return Response(status_code=204)
