"""Dependencies shared by the routers, declared once as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from hub import accounts
from hub.accounts import User
from hub.context import HubContext


def get_context(request: Request) -> HubContext:
    ctx: HubContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[HubContext, Depends(get_context)]


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def current_user(request: Request, ctx: ContextDep) -> User:
    """The user behind the bearer token; 401 in the Web API's format otherwise."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise HTTPException(status_code=401, detail="No token provided")
    user = accounts.user_for_token(ctx.db, token)
    if user is None:
        raise HTTPException(status_code=401, detail="Invalid access token")
    return user


UserDep = Annotated[User, Depends(current_user)]
