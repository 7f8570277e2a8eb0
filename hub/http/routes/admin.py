"""The dashboard's JSON: the fleet to poll, users and their tokens, the hub's health.

Administrators only (``AdminDep``: 403 for anyone else), with the bearer token
like every change in the API: the page cookie never authorises these.
Licences are revoked through ``DELETE /v1/devices/{id}/licence?user=NAME``
(routes/downloads.py), ingest is routes/admin_ingest.py.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from hub.accounts import admin as user_admin
from hub.accounts import tokens, users
from hub.clock import now_ms
from hub.http.deps import AdminDep, ContextDep
from hub.web import health_view
from hub.web.fleet import fleet_rows

router = APIRouter(prefix="/api/admin", tags=["dashboard"])


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=users.MAX_NAME)
    password: str = Field(min_length=users.MIN_PASSWORD, max_length=users.MAX_PASSWORD)
    admin: bool = False


@router.get("/fleet", summary="Every speaker's status row (what the fleet page shows)")
async def fleet(ctx: ContextDep, _admin: AdminDep) -> dict[str, Any]:
    devices = list(ctx.relay.devices.values())
    now = now_ms()

    def rows() -> list[dict[str, Any]]:
        with ctx.db.reading() as conn:
            return [r.to_json() for r in fleet_rows(conn, devices, now)]

    return {"now_ms": now, "speakers": await run_in_threadpool(rows)}


@router.get("/users", summary="Every account with its number of live tokens")
async def list_users(ctx: ContextDep, _admin: AdminDep) -> dict[str, Any]:
    def read() -> list[dict[str, Any]]:
        with ctx.db.reading() as conn:
            return [asdict(u) for u in user_admin.list_users(conn, now_ms())]

    return {"users": await run_in_threadpool(read)}


@router.post("/users", status_code=201, summary="Add an account (optionally an administrator)")
async def add_user(body: NewUser, ctx: ContextDep, _admin: AdminDep) -> dict[str, Any]:
    user = await run_in_threadpool(
        users.add_user, ctx.db, body.name, body.password, admin=body.admin
    )
    return {"id": user.id, "name": user.name, "is_admin": user.is_admin}


@router.post("/users/{user_id}/revoke-tokens", summary="Sign an account out everywhere")
async def revoke_tokens(user_id: int, ctx: ContextDep, _admin: AdminDep) -> dict[str, int]:
    def revoke() -> int | None:
        with ctx.db.reading() as conn:
            if not user_admin.exists(conn, user_id):
                return None
        return tokens.revoke_all(ctx.db, user_id)

    revoked = await run_in_threadpool(revoke)
    if revoked is None:
        raise HTTPException(status_code=404, detail="No such user")
    return {"revoked": revoked}


@router.get("/health", summary="Database, broker, speakers and ingest at a glance")
async def health(request: Request, ctx: ContextDep, _admin: AdminDep) -> dict[str, Any]:
    return (await health_view.collect(ctx, request.app.version)).to_json()
