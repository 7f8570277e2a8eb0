"""``POST /api/token``: the OAuth2 password grant, form-encoded."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from hub import accounts
from hub.routes.deps import ContextDep

router = APIRouter(tags=["auth"])


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


@router.post("/api/token", summary="Exchange a user name and password for a bearer token")
async def token(
    ctx: ContextDep,
    grant_type: Annotated[str, Form()],
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
    scope: Annotated[str, Form()] = "player",
) -> JSONResponse:
    if grant_type != "password":
        return _oauth_error("unsupported_grant_type", "only grant_type=password is supported")
    if not username or not password:
        return _oauth_error("invalid_request", "username and password are required")
    # Argon2 takes tens of milliseconds: keep it off the event loop.
    user = await run_in_threadpool(accounts.authenticate, ctx.db, username, password)
    if user is None:
        return _oauth_error("invalid_grant", "Invalid username or password")
    issued = await run_in_threadpool(accounts.issue_token, ctx.db, user, scope=scope)
    return JSONResponse(
        {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in_s,
            "scope": issued.scope,
        },
        headers={"Cache-Control": "no-store"},
    )
