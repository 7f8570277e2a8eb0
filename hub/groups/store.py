"""Groups in hub.db (``groups``, ``group_members``): who made each, its key, its members.

The key (32 random bytes) seals the members' sync datagrams; it is made once, with
the group, and never leaves the hub except in the commands that tell a member it
joined.  Functions take a connection: the caller holds the transaction.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    name: str
    owner_id: int
    owner_name: str
    key: bytes
    device_ids: tuple[str, ...]
    created_ms: int
    #: the member that led when the hub last said so (None: not yet chosen)
    leader_id: str | None = None


def new_group_id() -> str:
    """A fresh group id: plain characters, as a device id is, and never a speaker's."""
    return f"group-{secrets.token_hex(8)}"


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def load_all(conn: sqlite3.Connection) -> list[Group]:
    """Every group, oldest first, each with its members in order."""
    members: dict[str, list[str]] = {}
    for row in conn.execute(
        "SELECT group_id, device_id FROM group_members ORDER BY group_id, position"
    ):
        members.setdefault(row[0], []).append(row[1])
    return [
        Group(
            id=r["id"],
            name=r["name"],
            owner_id=r["owner_id"],
            owner_name=r["owner_name"],
            key=bytes(r["key"]),
            device_ids=tuple(members.get(r["id"], ())),
            created_ms=r["created_ms"],
            leader_id=r["leader_id"],
        )
        for r in conn.execute(
            "SELECT g.id, g.name, g.owner_id, u.name AS owner_name, g.key, g.created_ms,"
            " g.leader_id FROM groups g JOIN users u ON u.id = g.owner_id"
            " ORDER BY g.created_ms, g.id"
        )
    ]


def insert(conn: sqlite3.Connection, group: Group) -> None:
    conn.execute(
        "INSERT INTO groups (id, name, owner_id, key, created_ms) VALUES (?, ?, ?, ?, ?)",
        (group.id, group.name, group.owner_id, group.key, group.created_ms),
    )
    _write_members(conn, group.id, group.device_ids)


def update(conn: sqlite3.Connection, group_id: str, name: str, device_ids: Sequence[str]) -> None:
    conn.execute("UPDATE groups SET name = ? WHERE id = ?", (name, group_id))
    conn.execute("DELETE FROM group_members WHERE group_id = ?", (group_id,))
    _write_members(conn, group_id, device_ids)


def save_leader(conn: sqlite3.Connection, group_id: str, leader_id: str | None) -> None:
    conn.execute("UPDATE groups SET leader_id = ? WHERE id = ?", (leader_id, group_id))


def delete(conn: sqlite3.Connection, group_id: str) -> bool:
    """Remove the group and its memberships; False when there was none."""
    return conn.execute("DELETE FROM groups WHERE id = ?", (group_id,)).rowcount > 0


def _write_members(conn: sqlite3.Connection, group_id: str, device_ids: Sequence[str]) -> None:
    conn.executemany(
        "INSERT INTO group_members (group_id, device_id, position) VALUES (?, ?, ?)",
        [(group_id, d, i) for i, d in enumerate(device_ids)],
    )
