"""The Weekly Mix: per listener 30 tracks they have not played in 60 days, chosen by
the blend under the mix rules, written as their playlist "Weekly Mix"
(``playlists.generated = 'weekly_mix'``).  Regeneration replaces that playlist's
items in place (same id, version bumped), so a listener's own edits last until the
next mix; a listener who deleted it gets a new one."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from hub.catalog import library
from hub.recommend.arrays import POOL, Scoring
from hub.recommend.rank import DISCOVERY_DAYS, arrange, blend_rows, top

NAME = "Weekly Mix"
GENERATED = "weekly_mix"
SIZE = 30
BLOCK = 256  # listeners scored at once
WRITE_BATCH = 500  # listeners per transaction
DAY_MS = 86_400_000


def mixes(
    s: Scoring, agg: npt.NDArray[np.int64], now_ms: int, size: int = SIZE
) -> Iterator[tuple[int, list[str]]]:
    """``(user_id, track ids)`` for every listener the model knows."""
    model = s.model
    if model is None or not len(model.user_ids):
        return
    cols = np.searchsorted(s.cat.rowids, agg[:, 1])
    order = np.argsort(agg[:, 0], kind="stable")
    bounds = np.searchsorted(agg[order, 0], model.user_ids, side="left")
    ends = np.searchsorted(agg[order, 0], model.user_ids, side="right")
    since = now_ms - DISCOVERY_DAYS * DAY_MS
    norms = (s.cat.content * s.cat.content).sum(axis=1)[None, :]
    for start in range(0, len(model.user_ids), BLOCK):
        stop = min(start + BLOCK, len(model.user_ids))
        als = np.asarray(model.user_factors[start:stop]) @ s.items.T
        taste = np.asarray(model.taste[start:stop])
        content = 2 * taste @ s.cat.content.T - (taste * taste).sum(axis=1)[:, None] - norms
        scores = blend_rows(als, content, s.popularity)
        for j in range(stop - start):
            mine = order[bounds[start + j] : ends[start + j]]
            banned = cols[mine[agg[mine, 3] > 0]]
            recent = cols[mine[agg[mine, 4] >= since]]
            excluded = np.zeros(s.cat.size, dtype=bool)
            excluded[banned] = True
            excluded[recent] = True
            best = top(scores[j], excluded, size * POOL)
            yield int(model.user_ids[start + j]), arrange(s.candidates(best, scores[j]), limit=size)


def write(conn: sqlite3.Connection, batch: list[tuple[int, list[str]]], now_ms: int) -> None:
    """Replace (or create) each listener's Weekly Mix, in one transaction."""
    made = time.strftime("%Y-%m-%d", time.gmtime(now_ms / 1000))
    description = f"Made for you on {made}: tracks you have not played lately."
    existing = dict(
        conn.execute(
            "SELECT owner_id, id FROM playlists WHERE generated = ? AND owner_id IN"
            f" ({','.join('?' * len(batch))})",
            (GENERATED, *(u for u, _ in batch)),
        ).fetchall()
    )
    fresh = [(u, library.new_id()) for u, _ in batch if u not in existing]
    conn.executemany(
        "INSERT INTO playlists (id, owner_id, name, description, public, created_ms, generated)"
        " VALUES (?, ?, ?, ?, 0, ?, ?)",
        [(pid, u, NAME, description, now_ms, GENERATED) for u, pid in fresh],
    )
    existing.update(dict(fresh))
    ids = [(existing[u],) for u, _ in batch]
    conn.executemany("DELETE FROM playlist_items WHERE playlist_id = ?", ids)
    conn.executemany(
        "UPDATE playlists SET version = version + 1, description = ? WHERE id = ?",
        [(description, p) for (p,) in ids],
    )
    conn.executemany(
        "INSERT INTO playlist_items (playlist_id, position, track_id, added_ms)"
        " VALUES (?, ?, ?, ?)",
        [(existing[u], i, t, now_ms) for u, tracks in batch for i, t in enumerate(tracks)],
    )
