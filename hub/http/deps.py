"""Dependencies shared by the routers, declared once as ``Annotated`` aliases.

Authentication, scopes and rate limits, for a route's signature::

    user: UserDep                                   # any valid access token
    user: Annotated[User, Depends(require_scope(scopes.READ_LIBRARY))]
    user: Annotated[User, Depends(limited_user("search"))]
    user: Annotated[User, Depends(limited_user("player", scopes.MODIFY_PLAYBACK))]
    admin: AdminDep                                 # the dashboard

Declare such aliases at module level (``SearchUser = Annotated[...]``): FastAPI
resolves postponed annotations in the module's globals, not in a function's locals.
Errors use the Web API's format: 401 (no, bad, expired or revoked token), 403
("Insufficient client scope", or not an admin), 429 with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from fastapi.security import OAuth2PasswordBearer
from starlette.datastructures import Headers

from hub.accounts import scopes, tokens
from hub.accounts.throttle import FREE_FAILURES_PER_ADDRESS, LoginThrottle
from hub.accounts.tokens import Session
from hub.accounts.users import User
from hub.context import HubContext
from hub.errors import RateLimited, TokenRejected
from hub.http.ratelimit import Category, RateLimiter, monotonic_ms
from hub.http.shapes import error_body

INSUFFICIENT_SCOPE = "Insufficient client scope"


def get_context(request: Request) -> HubContext:
    ctx: HubContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[HubContext, Depends(get_context)]

# Parses nothing itself (current_session reads the header): it is here so that
# /openapi.json describes how to get a token and which scopes exist.
_oauth2 = OAuth2PasswordBearer(
    tokenUrl="/api/token",
    refreshUrl="/api/token",
    scopes=scopes.KNOWN_DESCRIPTIONS,
    auto_error=False,
    description="Bearer access token from POST /api/token (password or refresh_token grant).",
)


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def current_session(
    request: Request,
    ctx: ContextDep,
    _documented: Annotated[str | None, Depends(_oauth2)] = None,
) -> Session:
    """The session behind the bearer token; 401 in the Web API's format otherwise."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise HTTPException(status_code=401, detail="No token provided")
    try:
        return tokens.access_session(ctx.db, token)
    except TokenRejected as exc:
        raise HTTPException(status_code=401, detail=str(exc)) from None


SessionDep = Annotated[Session, Depends(current_session)]


def current_user(request: Request, ctx: ContextDep) -> User:
    """The user behind the bearer token (also callable directly, as audio.py does)."""
    return current_session(request, ctx).user


async def _session_user(session: SessionDep) -> User:
    return session.user


UserDep = Annotated[User, Depends(_session_user)]


def require_scope(*names: str) -> Callable[[Session], Awaitable[User]]:
    """A dependency: the user, if the token holds any one of ``names``; else 403."""
    unknown = set(names) - scopes.KNOWN
    if not names or unknown:
        raise ValueError(f"require_scope needs known scope names, not {sorted(unknown)}")
    wanted = frozenset(names)

    async def scoped_user(session: SessionDep) -> User:
        if session.scopes.isdisjoint(wanted):
            raise HTTPException(status_code=403, detail=INSUFFICIENT_SCOPE)
        return session.user

    return scoped_user


def limited_user(category: str, *names: str) -> Callable[..., Awaitable[User]]:
    """A dependency: authenticate, check any-of ``names`` (if given), count the request.

    ``category`` is a :class:`hub.http.ratelimit.Category` value: "standard", "search",
    "player" or "playlist-changes".  Over the limit: 429 with ``Retry-After``.
    """
    counted = Category(category)  # a typo fails at import, not on a request
    check = require_scope(*names) if names else _session_user

    # A default, not ``Annotated``: postponed annotations cannot see the local ``check``.
    async def limited(request: Request, user: User = Depends(check)) -> User:  # noqa: B008
        limiter: RateLimiter = request.app.state.rate_limiter
        decision = limiter.hit(user.id, counted)
        if not decision.allowed:
            raise RateLimited(decision.retry_after_s)
        return user

    return limited


def rate_limit(category: str) -> Callable[..., Awaitable[User]]:
    """``limited_user`` with no scope: for routes any valid token may call."""
    return limited_user(category)


async def admin_user(session: SessionDep) -> User:
    """An administrator whose token carries ``legato-admin`` (a narrower token does not)."""
    if not session.user.is_admin:
        raise HTTPException(status_code=403, detail="This needs an administrator account")
    if scopes.ADMIN not in session.scopes:
        raise HTTPException(
            status_code=403, detail=f"{INSUFFICIENT_SCOPE}: this needs {scopes.ADMIN}"
        )
    return session.user


AdminDep = Annotated[User, Depends(admin_user)]

#: ``/v1/me/player`` reads (devices, state, currently playing, queue) and commands.
PlaybackReader = Annotated[User, Depends(limited_user("player", scopes.READ_PLAYBACK))]
PlaybackController = Annotated[User, Depends(limited_user("player", scopes.MODIFY_PLAYBACK))]


async def _too_many_requests(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RateLimited)
    return JSONResponse(
        error_body(exc.status, str(exc)),
        status_code=exc.status,
        headers={"Retry-After": str(exc.retry_after_s)},
    )


def install_rate_limits(app: FastAPI, limiter: RateLimiter | None = None) -> RateLimiter:
    """Give ``app`` its limiter (``app.state.rate_limiter``), the 429 handler, and the
    login guards (``login_throttle``, ``login_limiter``), which are on even when the
    Web API's limits are off."""
    installed = limiter if limiter is not None else RateLimiter()  # an empty one is falsy
    app.state.rate_limiter = installed
    app.state.login_throttle = LoginThrottle(monotonic_ms)
    app.state.address_throttle = LoginThrottle(monotonic_ms, free=FREE_FAILURES_PER_ADDRESS)
    app.add_exception_handler(RateLimited, _too_many_requests)
    return installed


# The Web API's routes by what they need (category for the rate limit, then scopes).
CatalogReader = Annotated[User, Depends(limited_user("standard"))]
ProfileReader = Annotated[User, Depends(limited_user("standard"))]
PlaylistReader = Annotated[User, Depends(limited_user("standard", scopes.READ_PLAYLISTS))]
PlaylistEditor = Annotated[
    User,
    Depends(
        limited_user(
            "playlist-changes", scopes.MODIFY_PUBLIC_PLAYLISTS, scopes.MODIFY_PRIVATE_PLAYLISTS
        )
    ),
]
LibraryReader = Annotated[User, Depends(limited_user("standard", scopes.READ_LIBRARY))]
LibraryEditor = Annotated[User, Depends(limited_user("standard", scopes.MODIFY_LIBRARY))]
HistoryReader = Annotated[User, Depends(limited_user("standard", scopes.READ_RECENTLY_PLAYED))]
#: Clearing one's history: a scope of its own, not one a remote-control app asks for.
HistoryEraser = Annotated[User, Depends(limited_user("standard", scopes.MODIFY_HISTORY))]
TopReader = Annotated[User, Depends(limited_user("standard", scopes.READ_TOP))]
QueueReader = Annotated[User, Depends(limited_user("player", scopes.READ_PLAYBACK))]
Searcher = Annotated[User, Depends(limited_user("search"))]


def admin_headers(ctx: HubContext) -> Callable[[Headers], Awaitable[bool]]:
    """Whether a request's headers carry an administrator's token with ``legato-admin``:
    what :mod:`hub.http.body_caps` asks before letting an upload's body be read."""

    async def check(headers: Headers) -> bool:
        token = bearer_token(headers.get("authorization"))
        if token is None:
            return False
        try:
            session = await run_in_threadpool(tokens.access_session, ctx.db, token)
        except TokenRejected:
            return False
        return session.user.is_admin and scopes.ADMIN in session.scopes

    return check
