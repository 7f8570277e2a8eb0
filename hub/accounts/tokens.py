"""Bearer tokens: issued, refreshed, checked and revoked.

Tokens are random strings
handed out once; only their SHA-256 is stored, so a stolen database yields no
usable token.  Expiry is checked against an injected ``now`` (ms).

A password grant starts a token *family*: one access token (1 h) and one refresh
token (30 days).  Each refresh revokes the refresh token it used and hands out a
new pair in the same family; a revoked refresh token presented again means it was
copied, so the whole family is revoked (OAuth 2.0 Security BCP, refresh token
rotation).  A token reads ``<family>.<secret>`` and its row is keyed
``<family>:<sha256 of the token>``: the family id is not secret, and the prefix
lets one indexed range scan of the primary key find a family's rows.  Tokens
issued before families existed are keyed by their bare digest and still work.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from dataclasses import dataclass

from hub.accounts import scopes
from hub.accounts.users import User
from hub.clock import now_ms
from hub.db import Database
from hub.errors import GrantRefused, InvalidScope, TokenRejected

TOKEN_TTL_MS = 60 * 60 * 1000  # access tokens
REFRESH_TTL_MS = 30 * 24 * 60 * 60 * 1000
#: Rows expired longer than this are deleted when their user gets new tokens; until
#: then a stale token is told apart ("expired") from an unknown one.
PRUNE_AFTER_MS = 24 * 60 * 60 * 1000
MAX_TOKEN_CHARS = 256
ACCESS = "access"
REFRESH = "refresh"
EXPIRED = "The access token expired"
INVALID = "Invalid access token"


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """What a valid access token stands for."""

    user: User
    scopes: frozenset[str]
    expires_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedToken:
    access_token: str
    expires_in_s: int
    scope: str
    user: User
    refresh_token: str | None = None

    def __repr__(self) -> str:  # tokens are secrets: never in logs or tracebacks
        return f"IssuedToken(user={self.user.name!r}, scope={self.scope!r})"


def _key(token: str) -> str:
    """The row key of a token: ``family:digest``, or the bare digest of an old token."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    family, dot, _ = token.partition(".")
    return f"{family}:{digest}" if dot and family else digest


def _family_range(family: str) -> tuple[str, str]:
    # ':' and ';' are adjacent code points, and family ids never contain either.
    return f"{family}:", f"{family};"


def _grant(
    conn: sqlite3.Connection,
    user: User,
    granted: frozenset[str],
    *,
    family: str,
    refresh: bool,
    now: int,
) -> IssuedToken:
    """Insert an access token (and a refresh token) of ``family``; prune the user's old rows."""
    conn.execute(
        "DELETE FROM tokens WHERE user_id = ? AND expires_ms < ?", (user.id, now - PRUNE_AFTER_MS)
    )
    scope = scopes.format_scopes(granted)

    def insert(kind: str, ttl_ms: int) -> str:
        token = f"{family}.{secrets.token_urlsafe(32)}"
        conn.execute(
            "INSERT INTO tokens (token_hash, user_id, scope, expires_ms, kind) "
            "VALUES (?, ?, ?, ?, ?)",
            (_key(token), user.id, scope, now + ttl_ms, kind),
        )
        return token

    access = insert(ACCESS, TOKEN_TTL_MS)
    return IssuedToken(
        access_token=access,
        expires_in_s=TOKEN_TTL_MS // 1000,
        scope=scope,
        user=user,
        refresh_token=insert(REFRESH, REFRESH_TTL_MS) if refresh else None,
    )


def new_family() -> str:
    """A token family's random name, which starts every token of the family.

    Never with "-": a token is pasted into command lines (``legato-flash --token T``),
    where one starting with "-" would be taken for an option.
    """
    return "t" + secrets.token_urlsafe(9)


def issue_token(
    db: Database,
    user: User,
    *,
    scope: str | None = None,
    refresh: bool = False,
    now: int | None = None,
) -> IssuedToken:
    """A new token family: an access token, and with ``refresh`` a refresh token.

    ``scope`` is the request's space-separated scope (``None`` or empty:
    :data:`hub.accounts.scopes.DEFAULT`, and for an administrator also ``legato-admin``);
    an unknown name raises :class:`hub.errors.InvalidScope`.
    """
    granted = scopes.granted(scope, is_admin=user.is_admin)
    with db.transaction() as conn:
        return _grant(
            conn,
            user,
            granted,
            family=new_family(),
            refresh=refresh,
            now=now_ms() if now is None else now,
        )


def _lookup(conn: sqlite3.Connection, token: str) -> sqlite3.Row | None:
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    row: sqlite3.Row | None = conn.execute(
        "SELECT u.id, u.name, u.is_admin, t.kind, t.scope, t.expires_ms, t.revoked "
        "FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?",
        (_key(token),),
    ).fetchone()
    return row


def _user(row: sqlite3.Row) -> User:
    return User(id=row["id"], name=row["name"], is_admin=bool(row["is_admin"]))


def refresh(
    db: Database, refresh_token: str, *, scope: str | None = None, now: int | None = None
) -> IssuedToken:
    """Exchange a refresh token for a new pair, revoking it (rotation).

    ``scope`` may narrow the family's scopes, never widen them.  Raises
    :class:`GrantRefused` (and revokes the family if the token had been used) or
    :class:`hub.errors.InvalidScope`.
    """
    current = now_ms() if now is None else now
    requested = None if scope is None or not scope.strip() else scopes.parse(scope)
    family = refresh_token.partition(".")[0]
    with db.transaction() as conn:
        row = _lookup(conn, refresh_token)
        if row is None or row["kind"] != REFRESH:
            refused = "Invalid refresh token"
        elif row["revoked"]:
            conn.execute(
                "UPDATE tokens SET revoked = 1 WHERE token_hash >= ? AND token_hash < ?",
                _family_range(family),
            )
            refused = "Refresh token already used or revoked"
        elif row["expires_ms"] <= current:
            refused = "Refresh token expired"
        else:
            granted = scopes.from_stored(row["scope"])
            if requested is not None and not requested <= granted:
                raise InvalidScope("The requested scope exceeds the scope granted")
            conn.execute(
                "UPDATE tokens SET revoked = 1 WHERE token_hash = ?", (_key(refresh_token),)
            )
            return _grant(
                conn,
                _user(row),
                requested if requested is not None else granted,
                family=family,
                refresh=True,
                now=current,
            )
    raise GrantRefused(refused)  # outside the transaction: a family revocation commits


def access_session(db: Database, token: str, *, now: int | None = None) -> Session:
    """The session behind a bearer token; :class:`TokenRejected` says why there is none."""
    with db.reading() as conn:
        row = _lookup(conn, token)
    if row is None or row["kind"] != ACCESS or row["revoked"]:
        raise TokenRejected(INVALID)
    if row["expires_ms"] <= (now_ms() if now is None else now):
        raise TokenRejected(EXPIRED)
    return Session(
        user=_user(row), scopes=scopes.from_stored(row["scope"]), expires_ms=row["expires_ms"]
    )


def token_session(db: Database, token: str, *, now: int | None = None) -> tuple[User, int] | None:
    """The user behind a valid access token and when the token expires (ms), else ``None``."""
    try:
        session = access_session(db, token, now=now)
    except TokenRejected:
        return None
    return session.user, session.expires_ms


def user_for_token(db: Database, token: str, *, now: int | None = None) -> User | None:
    session = token_session(db, token, now=now)
    return session[0] if session else None


def revoke_token(db: Database, token: str) -> bool:
    """Revoke a token; a refresh token takes its whole family (its access tokens) along.

    Returns whether the token was known.
    """
    with db.transaction() as conn:
        row = _lookup(conn, token)
        if row is None:
            return False
        if row["kind"] == REFRESH:
            family = token.partition(".")[0]
            conn.execute(
                "UPDATE tokens SET revoked = 1 WHERE token_hash >= ? AND token_hash < ?",
                _family_range(family),
            )
        conn.execute("UPDATE tokens SET revoked = 1 WHERE token_hash = ?", (_key(token),))
    return True


def revoke_all(db: Database, user_id: int) -> int:
    """Revoke every token of a user (a password change, a lost phone); returns how many."""
    with db.transaction() as conn:
        cur = conn.execute(
            "UPDATE tokens SET revoked = 1 WHERE user_id = ? AND revoked = 0", (user_id,)
        )
    return cur.rowcount
