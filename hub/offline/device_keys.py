"""Speakers' offline keys (``device_keys``): the X25519 key licences are sealed to and
the Ed25519 key that signs their syncs, registered once per pairing."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SpeakerKeys:
    x25519: str  # raw public key, base64url
    ed25519: str


def keys_of(conn: sqlite3.Connection, device_id: str) -> SpeakerKeys | None:
    row = conn.execute(
        "SELECT x25519, ed25519 FROM device_keys WHERE device_id = ?", (device_id,)
    ).fetchone()
    return None if row is None else SpeakerKeys(row["x25519"], row["ed25519"])


def register(conn: sqlite3.Connection, device_id: str, keys: SpeakerKeys, now_ms: int) -> None:
    conn.execute(
        "INSERT INTO device_keys (device_id, x25519, ed25519, registered_ms) VALUES (?, ?, ?, ?)",
        (device_id, keys.x25519, keys.ed25519, now_ms),
    )
