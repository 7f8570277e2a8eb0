"""The device registry's table (``devices``): every speaker the hub has heard from.

The relay keeps the live registry in memory and writes it here in batches, so a
restarted hub still lists its speakers (offline until their retained status says
otherwise) and other parts can name a speaker without asking the relay.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from connect_protocol.messages import DeviceInfo
from connect_protocol.topics import is_valid_device_id


@dataclass(frozen=True, slots=True)
class KnownDevice:
    info: DeviceInfo
    last_seen_ms: int


def load(conn: sqlite3.Connection) -> list[KnownDevice]:
    """Every registered speaker, offline (the broker's retained status says otherwise)."""
    return [
        KnownDevice(
            DeviceInfo(id=r["id"], name=r["name"], model=r["model"], fw=r["fw"], online=False),
            r["last_seen_ms"],
        )
        for r in conn.execute("SELECT id, name, model, fw, last_seen_ms FROM devices")
    ]


def save(conn: sqlite3.Connection, seen: Iterable[tuple[DeviceInfo, int]]) -> int:
    """Insert or update each (info, last seen ms); returns how many rows were written."""
    rows = [
        (info.id, info.name, info.model, info.fw, int(info.online), last_seen_ms)
        for info, last_seen_ms in seen
    ]
    conn.executemany(
        "INSERT INTO devices (id, name, model, fw, online, last_seen_ms) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
        "name = excluded.name, model = excluded.model, fw = excluded.fw, "
        "online = excluded.online, last_seen_ms = excluded.last_seen_ms",
        rows,
    )
    return len(rows)


def device_name(conn: sqlite3.Connection, device_id: str) -> str | None:
    """The name listeners know a speaker by; None when the hub knows no such speaker
    (a paired speaker that never came online goes by its id)."""
    if not is_valid_device_id(device_id):
        return None
    row = conn.execute("SELECT name FROM devices WHERE id = ?", (device_id,)).fetchone()
    if row is not None:
        return str(row[0])
    paired = conn.execute(
        "SELECT 1 FROM broker_users WHERE username = ? AND role = 'speaker'", (device_id,)
    ).fetchone()
    return device_id if paired else None


def device_names(conn: sqlite3.Connection) -> dict[str, str]:
    """Every registered speaker's id and name."""
    return {str(r[0]): str(r[1]) for r in conn.execute("SELECT id, name FROM devices")}


def active_device(conn: sqlite3.Connection) -> str | None:
    """The speaker that was active when the hub last said so."""
    row = conn.execute("SELECT value FROM hub_state WHERE key = 'active_device'").fetchone()
    return None if row is None else str(row[0])


def save_active_device(conn: sqlite3.Connection, device_id: str | None) -> None:
    if device_id is None:
        conn.execute("DELETE FROM hub_state WHERE key = 'active_device'")
    else:
        conn.execute(
            "INSERT INTO hub_state (key, value) VALUES ('active_device', ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (device_id,),
        )
