"""What each listener chose about their listening (``listener_settings``): for now,
whether autoplay goes on with recommended tracks when what they played runs out.

A listener without a row has the defaults (autoplay on, as Spotify's is), so a new
account needs no setup and changing a default later changes it for everyone who
never chose.
"""

from __future__ import annotations

import sqlite3

from hub.db import Database

#: Autoplay is on until a listener turns it off.
AUTOPLAY_DEFAULT = True


def autoplay(db: Database, user_id: int) -> bool:
    """Whether ``user_id``'s speakers go on with a radio when a context ends."""
    with db.reading() as conn:
        row = conn.execute(
            "SELECT autoplay FROM listener_settings WHERE user_id = ?", (user_id,)
        ).fetchone()
    return AUTOPLAY_DEFAULT if row is None else bool(row[0])


def set_autoplay(db: Database, user_id: int, on: bool) -> None:
    """Turn ``user_id``'s autoplay on or off (kept across restarts)."""
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO listener_settings (user_id, autoplay) VALUES (?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET autoplay = excluded.autoplay",
            (user_id, int(on)),
        )


def history_cleared_ms(conn: sqlite3.Connection, user_id: int) -> int | None:
    """When ``user_id`` last cleared their listening history (None: never)."""
    row = conn.execute(
        "SELECT history_cleared_ms FROM listener_settings WHERE user_id = ?", (user_id,)
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])
