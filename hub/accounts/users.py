"""Listener accounts: names, passwords and who they are.

Passwords are hashed with Argon2id (memory-hard), at most
:data:`MAX_CONCURRENT_HASHES` at once so a burst of logins (or an attack on
``/api/token``) cannot exhaust a Pi's memory.  A user's name is their Web API id,
which clients put in URL paths.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.clock import now_ms
from hub.db import Database
from hub.errors import AccountError

MAX_NAME = 64
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
_hasher = PasswordHasher()  # stateless parameters object; safe to share
#: Argon2 takes 64 MiB and ~150 ms a hash: at most this many at once.
MAX_CONCURRENT_HASHES = 2
_hashing = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    id: int
    name: str
    is_admin: bool


def _hash(password: str) -> str:
    with _hashing:
        return _hasher.hash(password)


#: A user's name is their Web API id, which clients put in URL paths (/v1/users/{id}).
NAME_FORBIDDEN = set("/?#%\\:")


def _validate_name(name: str) -> None:
    if not 0 < len(name) <= MAX_NAME or not name.isprintable() or name != name.strip():
        raise AccountError(f"user name must be 1-{MAX_NAME} printable characters")
    if NAME_FORBIDDEN & set(name):
        raise AccountError("user name cannot contain / ? # % \\ or : (it is used in URLs)")


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


def user_id_of(conn: sqlite3.Connection, name: str) -> int | None:
    """The id of the user called ``name``; None when there is none."""
    row = conn.execute("SELECT id FROM users WHERE name = ?", (name,)).fetchone()
    return None if row is None else int(row[0])
