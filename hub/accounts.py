"""Listener accounts and bearer tokens.

Passwords are hashed with Argon2id (memory-hard).  Tokens are 256-bit random
strings handed out once; only their SHA-256 is stored, so a stolen database
yields no usable token.  Expiry is checked against an injected ``now_ms``.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.clock import now_ms
from hub.db import Database
from hub.errors import AccountError

TOKEN_TTL_MS = 60 * 60 * 1000
MAX_NAME = 64
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
_hasher = PasswordHasher()  # stateless parameters object; safe to share
#: Argon2 takes 64 MiB and ~150 ms a hash: at most this many at once, so a burst
#: of logins (or an attack on /api/token) cannot exhaust a Pi's memory.
MAX_CONCURRENT_HASHES = 2
_hashing = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    id: int
    name: str
    is_admin: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedToken:
    access_token: str
    expires_in_s: int
    scope: str
    user: User


def _hash(password: str) -> str:
    with _hashing:
        return _hasher.hash(password)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _validate_name(name: str) -> None:
    if not 0 < len(name) <= MAX_NAME or not name.isprintable() or name != name.strip():
        raise AccountError(f"user name must be 1-{MAX_NAME} printable characters")


def add_user(db: Database, name: str, password: str, *, admin: bool = False) -> User:
    _validate_name(name)
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError(f"password must be {MIN_PASSWORD}-{MAX_PASSWORD} characters")
    digest = _hash(password)
    try:
        with db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO users (name, password_hash, is_admin, created_ms) VALUES (?, ?, ?, ?)",
                (name, digest, int(admin), now_ms()),
            )
    except sqlite3.IntegrityError:
        raise AccountError(f"user {name!r} already exists") from None
    assert cur.lastrowid is not None
    return User(id=cur.lastrowid, name=name, is_admin=admin)


def set_password(db: Database, name: str, password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError(f"password must be {MIN_PASSWORD}-{MAX_PASSWORD} characters")
    with db.transaction() as conn:
        cur = conn.execute(
            "UPDATE users SET password_hash = ? WHERE name = ?", (_hash(password), name)
        )
        if cur.rowcount == 0:
            raise AccountError(f"no user {name!r}")


def authenticate(db: Database, name: str, password: str) -> User | None:
    with db.reading() as conn:
        row = conn.execute(
            "SELECT id, name, password_hash, is_admin FROM users WHERE name = ?", (name,)
        ).fetchone()
    if row is None:
        _hash(password)  # spend the same time as a real check
        return None
    try:
        with _hashing:
            _hasher.verify(row["password_hash"], password)
    except (VerificationError, InvalidHashError):
        return None
    return User(id=row["id"], name=row["name"], is_admin=bool(row["is_admin"]))


def issue_token(
    db: Database, user: User, *, scope: str = "player", now: int | None = None
) -> IssuedToken:
    token = secrets.token_urlsafe(32)
    issued_at = now_ms() if now is None else now
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO tokens (token_hash, user_id, scope, expires_ms) VALUES (?, ?, ?, ?)",
            (_token_hash(token), user.id, scope, issued_at + TOKEN_TTL_MS),
        )
    return IssuedToken(
        access_token=token, expires_in_s=TOKEN_TTL_MS // 1000, scope=scope, user=user
    )


def user_for_token(db: Database, token: str, *, now: int | None = None) -> User | None:
    session = token_session(db, token, now=now)
    return session[0] if session else None


def token_session(db: Database, token: str, *, now: int | None = None) -> tuple[User, int] | None:
    """The user behind a valid token and when the token expires (ms), else ``None``."""
    if not token or len(token) > 256:
        return None
    with db.reading() as conn:
        row = conn.execute(
            "SELECT u.id, u.name, u.is_admin, t.expires_ms, t.revoked FROM tokens t "
            "JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?",
            (_token_hash(token),),
        ).fetchone()
    current = now_ms() if now is None else now
    if row is None or row["revoked"] or row["expires_ms"] <= current:
        return None
    user = User(id=row["id"], name=row["name"], is_admin=bool(row["is_admin"]))
    return user, int(row["expires_ms"])


def revoke_token(db: Database, token: str) -> bool:
    with db.transaction() as conn:
        cur = conn.execute(
            "UPDATE tokens SET revoked = 1 WHERE token_hash = ?", (_token_hash(token),)
        )
    return cur.rowcount > 0
