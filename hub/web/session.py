"""Who is asking for a page: the access token the browser keeps in a cookie.

The login page (``static/login.js``) gets tokens from ``POST /api/token`` like
any client and puts the access token in the ``legato_token`` cookie
(``SameSite=Strict``). Only page ``GET``s read the cookie, to decide what to
render or refuse; every change still goes through the JSON API with a bearer
header, so the cookie can never be ridden by another site to change anything.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse

from hub.accounts import tokens
from hub.accounts.tokens import Session
from hub.accounts.users import User
from hub.context import HubContext
from hub.errors import TokenRejected

COOKIE = "legato_token"


def page_session(request: Request) -> Session | None:
    """The session behind the page cookie, or None (no cookie, expired or revoked)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    ctx: HubContext = request.app.state.ctx
    try:
        return tokens.access_session(ctx.db, token)
    except TokenRejected:
        return None


def page_user(request: Request) -> User | None:
    """The user behind the page cookie, or None."""
    session = page_session(request)
    return None if session is None else session.user


def to_login(request: Request) -> RedirectResponse:
    """Send the browser to the login page, coming back here afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
