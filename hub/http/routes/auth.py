"""``POST /api/token`` (password and refresh grants) and ``POST /api/token/revoke``.

Form-encoded, answering in OAuth 2.0's format (RFC 6749 section 5, RFC 7009), not
the Web API's: OAuth client libraries such as spotipy parse these errors.  The hub
has no client registry, so ``client_id``/``client_secret`` (form fields or HTTP
Basic, as spotipy sends) are accepted and ignored.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from hub.accounts import scopes, tokens, users
from hub.accounts.throttle import LoginThrottle
from hub.errors import GrantRefused, InvalidScope
from hub.http.deps import ContextDep

router = APIRouter(tags=["auth"])

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_SCOPES_DOC = (
    "Space-separated scopes; none means all of: " + scopes.format_scopes(scopes.DEFAULT) + ". "
    "With refresh_token, at most the scopes first granted."
)


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=_NO_STORE
    )


def _granted(issued: tokens.IssuedToken) -> JSONResponse:
    return JSONResponse(
        {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in_s,
            "scope": issued.scope,
            "refresh_token": issued.refresh_token,
        },
        headers=_NO_STORE,
    )


@router.post(
    "/api/token",
    summary="Get an access and a refresh token (password grant), or refresh them",
    response_model=None,
)
async def token(
    ctx: ContextDep,
    request: Request,
    grant_type: Annotated[str | None, Form(description="password or refresh_token")] = None,
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
    refresh_token: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form(description=_SCOPES_DOC)] = None,
    client_id: Annotated[str | None, Form(description="accepted, ignored")] = None,
    client_secret: Annotated[str | None, Form(description="accepted, ignored")] = None,
) -> JSONResponse:
    if grant_type == "password":
        if not username or not password:
            return _oauth_error("invalid_request", "username and password are required")
        try:
            scopes.parse(scope)  # before Argon2: a bad request costs no hashing
        except InvalidScope as exc:
            return _oauth_error("invalid_scope", str(exc))
        # Guessing is slowed per (account, address) and per address, before Argon2.
        client = request.client.host if request.client else "-"
        pairs: LoginThrottle = request.app.state.login_throttle
        addresses: LoginThrottle = request.app.state.address_throttle
        wait_s = max(pairs.retry_after_s(username, client), addresses.retry_after_s("", client))
        if wait_s:
            return JSONResponse(
                {"error": "slow_down", "error_description": "Too many login attempts; retry later"},
                status_code=429,
                headers={"Retry-After": str(wait_s), **_NO_STORE},
            )
        # Argon2 takes tens of milliseconds: keep it off the event loop.
        user = await run_in_threadpool(users.authenticate, ctx.db, username, password)
        pairs.record(username, client, succeeded=user is not None)
        if user is None:
            addresses.record("", client, succeeded=False)
            return _oauth_error("invalid_grant", "Invalid username or password")
        try:
            issued = await run_in_threadpool(
                lambda: tokens.issue_token(ctx.db, user, scope=scope, refresh=True)
            )
        except InvalidScope as exc:  # legato-admin asked for by a listener
            return _oauth_error("invalid_scope", str(exc))
        return _granted(issued)
    if grant_type == "refresh_token":
        if not refresh_token:
            return _oauth_error("invalid_request", "refresh_token is required")
        try:
            issued = await run_in_threadpool(
                lambda: tokens.refresh(ctx.db, refresh_token, scope=scope)
            )
        except InvalidScope as exc:
            return _oauth_error("invalid_scope", str(exc))
        except GrantRefused as exc:
            return _oauth_error("invalid_grant", str(exc))
        return _granted(issued)
    if not grant_type:
        return _oauth_error("invalid_request", "grant_type is required")
    return _oauth_error("unsupported_grant_type", "grant_type must be password or refresh_token")


@router.post(
    "/api/token/revoke",
    summary="Revoke a token (a refresh token takes its access tokens along)",
    response_model=None,
)
async def revoke(
    ctx: ContextDep,
    token: Annotated[str | None, Form()] = None,
    token_type_hint: Annotated[str | None, Form(description="accepted, ignored")] = None,
    client_id: Annotated[str | None, Form(description="accepted, ignored")] = None,
    client_secret: Annotated[str | None, Form(description="accepted, ignored")] = None,
) -> Response:
    if not token:
        return _oauth_error("invalid_request", "token is required")
    # RFC 7009: 200 whether or not the token was known, so this endpoint tells
    # nobody which strings are tokens.
    await run_in_threadpool(tokens.revoke_token, ctx.db, token)
    return Response(status_code=200, headers=_NO_STORE)
