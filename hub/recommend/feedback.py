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

from hub.listening.top import EARLY_SKIP_MS
from hub.recommend import catalog

ALPHA = 4.0  # weight of the (log-scaled) complete plays
SKIP_PENALTY = 1.5  # what one early skip takes away
EARLY_MS = EARLY_SKIP_MS  # what top tracks leave out too
CHUNK = 100_000  # aggregated rows turned into an array at once

#: SQL (over ``plays p JOIN tracks t``): 1 for an early skip, else 0, never NULL (a
#: play with nothing known of how it ended, as every ListenBrainz row and a speaker's
#: play still open, is a plain play).
EARLY_SKIP = (
    "COALESCE(((p.skipped = 1 OR p.finished = 0) AND p.ms_played IS NOT NULL"
    f" AND (p.ms_played < {EARLY_MS} OR p.ms_played * 4 < t.duration_ms))"
    " OR (p.skipped = 1 AND p.ms_played IS NULL), 0)"
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
    matched track, from plays started before ``before_ms`` (all with None).  One scan
    of the table in its own order (``NOT INDEXED``: through an index every row would be
    a random read), each play's track found in a small temporary table (id, rowid,
    duration) rather than the wide ``tracks``, grouped in a temporary B-tree."""
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS recommend_durations"
        " (id TEXT PRIMARY KEY, r INTEGER NOT NULL, duration_ms INTEGER NOT NULL) WITHOUT ROWID"
    )
    conn.execute("DELETE FROM recommend_durations")
    conn.execute("INSERT INTO recommend_durations SELECT id, rowid, duration_ms FROM tracks")
    where = "p.track_id IS NOT NULL" + (" AND p.played_ms < ?" if before_ms is not None else "")
    cursor = conn.cursor()
    cursor.row_factory = None  # plain tuples: millions of rows
    rows = cursor.execute(
        f"SELECT p.user_id, t.r, SUM(NOT ({EARLY_SKIP})), SUM({EARLY_SKIP}),"
        " MAX(p.played_ms) FROM plays p NOT INDEXED"
        f" JOIN recommend_durations t ON t.id = p.track_id WHERE {where} GROUP BY p.user_id, t.r",
        () if before_ms is None else (before_ms,),
    )
    chunks = [np.zeros((0, 5), dtype=np.int64)]
    while batch := rows.fetchmany(CHUNK):  # a chunk of Python tuples at a time, not millions
        chunks.append(np.array(batch, dtype=np.int64).reshape(-1, 5))
    return np.concatenate(chunks)


def snapshot(
    conn: sqlite3.Connection, *, before_ms: int | None = None
) -> tuple[npt.NDArray[np.int64], catalog.CatalogArrays]:
    """The aggregated plays and the catalog as of one instant (one read transaction), so
    a track an ingest replaces meanwhile can never lend its plays to its neighbour."""
    conn.execute("BEGIN")
    try:
        agg = aggregate(conn, before_ms=before_ms)
        cat = catalog.load(conn)
    finally:
        conn.execute("COMMIT")
    return agg[np.isin(agg[:, 1], cat.rowids)], cat
