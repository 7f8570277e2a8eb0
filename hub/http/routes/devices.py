"""A speaker's local-control token, for a signed-in listener's phone.

With it the phone can steer the speaker through the speaker's own port when the hub
is away (see the speaker's ``/control``).  It needs ``user-modify-playback-state``,
as playing through the hub does, and names an existing speaker.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from hub.accounts import scopes
from hub.accounts.users import User
from hub.errors import NotFound
from hub.fleet.local_control import local_token
from hub.fleet.registry import device_name
from hub.http.deps import ContextDep, limited_user

router = APIRouter(prefix="/v1/devices", tags=["player"])
Controller = Annotated[User, Depends(limited_user("player", scopes.MODIFY_PLAYBACK))]


@router.get(
    "/{device_id}/local-access",
    summary="The token a phone needs for the speaker's own local control",
)
async def local_access(device_id: str, ctx: ContextDep, _user: Controller) -> dict[str, Any]:
    def read() -> str | None:
        with ctx.db.reading() as conn:
            return device_name(conn, device_id)

    if await run_in_threadpool(read) is None:
        raise NotFound(f"no speaker {device_id[:64]!r} on this hub")
    token = await run_in_threadpool(local_token, ctx.data_dir, device_id)
    return {"device_id": device_id, "token": token}
