"""The operator's view of accounts: who exists, and how many live tokens each holds.

Adding users and revoking tokens are ``hub.accounts``'s own functions; this
module only reads, for the dashboard's users page.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class UserSummary:
    id: int
    name: str
    is_admin: bool
    created_ms: int
    live_tokens: int  # unrevoked and unexpired, access and refresh alike


def list_users(conn: sqlite3.Connection, now_ms: int) -> list[UserSummary]:
    rows = conn.execute(
        "SELECT u.id, u.name, u.is_admin, u.created_ms, (SELECT COUNT(*) FROM tokens t"
        " WHERE t.user_id = u.id AND t.revoked = 0 AND t.expires_ms > ?) AS live_tokens"
        " FROM users u ORDER BY u.name COLLATE NOCASE",
        (now_ms,),
    )
    return [
        UserSummary(
            id=r["id"],
            name=r["name"],
            is_admin=bool(r["is_admin"]),
            created_ms=r["created_ms"],
            live_tokens=r["live_tokens"],
        )
        for r in rows
    ]


def exists(conn: sqlite3.Connection, user_id: int) -> bool:
    return conn.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchone() is not None
