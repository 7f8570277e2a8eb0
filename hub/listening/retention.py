"""How long listening history is kept, and a listener's "clear my history".

Pruning deletes in bounded batches, each its own short transaction, so a hub with
years of history to drop never holds the write lock for long.
"""

from __future__ import annotations

from hub.db import Database

DAY_MS = 86_400_000
#: Three years.
DEFAULT_HISTORY_DAYS = 1095
BATCH_ROWS = 5000


def cutoff_ms(now_ms: int, days: int) -> int:
    """Plays that started before this instant are past keeping."""
    return now_ms - days * DAY_MS


def prune(db: Database, before_ms: int, *, batch: int = BATCH_ROWS) -> int:
    """Delete every play that started before ``before_ms``; how many went."""
    deleted = 0
    while True:
        with db.transaction() as conn:
            n = conn.execute(
                "DELETE FROM plays WHERE id IN"
                " (SELECT id FROM plays WHERE played_ms < ? ORDER BY played_ms LIMIT ?)",
                (before_ms, batch),
            ).rowcount
        deleted += n
        if n < batch:
            return deleted


def clear(db: Database, user_id: int, now_ms: int) -> int:
    """Delete all of one listener's plays (speaker and imported) and what was made from
    them (their generated playlists: the Weekly Mix), and note when, so the recommender
    stops using what it learnt of them until it trains again; how many plays went."""
    with db.transaction() as conn:
        gone = conn.execute("DELETE FROM plays WHERE user_id = ?", (user_id,)).rowcount
        conn.execute(
            "DELETE FROM playlists WHERE owner_id = ? AND generated IS NOT NULL", (user_id,)
        )
        conn.execute(
            "INSERT INTO listener_settings (user_id, history_cleared_ms) VALUES (?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET history_cleared_ms = excluded.history_cleared_ms",
            (user_id, now_ms),
        )
        return gone
