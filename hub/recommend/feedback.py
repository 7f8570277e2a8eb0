"""Implicit feedback: what a listener's plays say about a track, as one confidence.

A complete (or plain) play counts up, with repeats saturating (log-scaled: the tenth
listen says less than the second); an early skip (skipped or unfinished with under
30 s played or under a quarter of the track) counts down.  A track a listener skipped
early is never recommended to them again, whatever else they did with it.  Plays are
aggregated in SQL (one row per listener and track), never walked one by one.
"""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import numpy.typing as npt

ALPHA = 4.0  # weight of the (log-scaled) complete plays
SKIP_PENALTY = 1.5  # what one early skip takes away
EARLY_MS = 30_000

#: SQL (over ``plays p JOIN tracks t``) true for an early skip.
EARLY_SKIP = (
    f"((p.skipped = 1 OR p.finished = 0) AND p.ms_played IS NOT NULL"
    f" AND (p.ms_played < {EARLY_MS} OR p.ms_played * 4 < t.duration_ms))"
    " OR (p.skipped = 1 AND p.ms_played IS NULL)"
)


def confidence(plays: int, early_skips: int) -> float:
    """Confidence that a listener likes a track: ``plays`` complete (or plain) plays,
    ``early_skips`` early skips; negative when skips outweigh listens."""
    return ALPHA * math.log1p(plays) - SKIP_PENALTY * early_skips


def confidences(
    plays: npt.NDArray[np.float64], early_skips: npt.NDArray[np.float64]
) -> npt.NDArray[np.float32]:
    """:func:`confidence` over arrays."""
    return (ALPHA * np.log1p(plays) - SKIP_PENALTY * early_skips).astype(np.float32)


def aggregate(conn: sqlite3.Connection, *, before_ms: int | None = None) -> npt.NDArray[np.int64]:
    """``(user_id, track rowid, plays, early_skips, last_played_ms)`` per listener and
    matched track, from plays started before ``before_ms`` (all with None)."""
    where = "p.track_id IS NOT NULL" + (" AND p.played_ms < ?" if before_ms is not None else "")
    rows = conn.execute(
        f"SELECT p.user_id, t.rowid, SUM(NOT ({EARLY_SKIP})), SUM({EARLY_SKIP}),"
        f" MAX(p.played_ms) FROM plays p JOIN tracks t ON t.id = p.track_id WHERE {where}"
        " GROUP BY p.user_id, p.track_id",
        () if before_ms is None else (before_ms,),
    )
    out = np.array(rows.fetchall(), dtype=np.int64)
    return out.reshape(-1, 5)
