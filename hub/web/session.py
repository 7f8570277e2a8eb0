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
#: path segments a browser resolves away, as written or percent-encoded
_DOT_SEGMENTS = frozenset({".", "..", "%2e", ".%2e", "%2e.", "%2e%2e"})


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


def local_path(target: str) -> str | None:
    """``target`` if it is a plain path on this hub, else None.

    Browsers drop tabs and newlines and read ``\\`` as ``/`` before they decide
    the host, so ``/\\host`` and ``/<tab>/host`` are ``//host``, another origin;
    ``/.//host`` stays here but resolves to the path ``//host``, another origin
    again once written out as a link.  So only this passes: one leading ``/`` with
    no second one after it, no control character anywhere, and in the path no
    backslash and no dot segment.  Stricter than the login page's own rule
    (``static/login.js`` keeps whatever the browser resolves to this origin), never
    looser; a test holds the two together.
    """
    if not target.startswith("/") or target.startswith("//"):
        return None
    if any(ord(c) < 0x20 or c == "\x7f" for c in target):
        return None
    path = target.split("?", 1)[0].split("#", 1)[0]
    if "\\" in path or any(seg.lower() in _DOT_SEGMENTS for seg in path.split("/")):
        return None
    return target


def to_login(request: Request) -> RedirectResponse:
    """Send the browser to the login page, coming back here afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    back = local_path(target)
    login = "/login" if back is None else f"/login?next={quote(back, safe='/')}"
    return RedirectResponse(login, status_code=303)
