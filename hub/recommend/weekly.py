"""The Weekly Mix: per listener 30 tracks they have not played in 60 days (and
preferably never), chosen by the blend under the mix rules, written as their playlist "Weekly Mix"
(``playlists.generated = 'weekly_mix'``).  Regeneration replaces that playlist's
items in place (same id, version bumped), so a listener's own edits last until the
next mix; a listener who deleted it gets a new one."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
from scipy import sparse

from hub.catalog import library
from hub.recommend.arrays import POOL, Scoring
from hub.recommend.rank import DISCOVERY_DAYS, Weights, arrange

NAME = "Weekly Mix"
GENERATED = "weekly_mix"
SIZE = 30
BLOCK = 512  # listeners scored at once (native top-k: no listeners x tracks matrix)
WRITE_BATCH = 500  # listeners per transaction
DAY_MS = 86_400_000


def mixes(
    s: Scoring, agg: npt.NDArray[np.int64], now_ms: int, size: int = SIZE
) -> Iterator[tuple[int, list[str]]]:
    """``(user_id, track ids)`` for every listener the model knows, a block at a time.

    The blend is one dot product over augmented vectors (the factors, the content
    vector, its squared length and popularity on the tracks' side; the listener's
    factors, taste and weights scaled by their score spreads on the other), so the
    best candidates come from ``implicit``'s native top-k with everything the listener
    has played filtered out; the rules then pick the mix among them.  Only when that
    leaves the mix short do tracks they played before the last 60 days (and never
    skipped early) fill it, after the unheard ones."""
    from implicit.cpu.topk import topk  # type: ignore[import-untyped]

    model = s.model
    if model is None or not len(model.user_ids):
        return
    order = np.argsort(agg[:, 0], kind="stable")
    plays = agg[order]
    cols = np.searchsorted(s.cat.rowids, plays[:, 1])
    since = now_ms - DISCOVERY_DAYS * DAY_MS
    items = _augmented_items(s)
    sample = np.linspace(0, s.cat.size - 1, min(s.cat.size, 4096)).astype(np.int64)
    for start in range(0, len(model.user_ids), BLOCK):
        users = np.asarray(model.user_ids[start : start + BLOCK])
        lo, hi = np.searchsorted(plays[:, 0], [users[0], users[-1] + 1])
        rows = np.searchsorted(users, plays[lo:hi, 0])
        mine = cols[lo:hi]
        heard = sparse.csr_matrix(
            (np.ones(hi - lo, dtype=np.float32), (rows, mine)), shape=(len(users), s.cat.size)
        )
        # may fill a short mix: played before the last 60 days, never skipped early
        old = (plays[lo:hi, 3] == 0) & (plays[lo:hi, 4] < since)
        query = _queries(s, start, start + len(users), sample)
        k = min(size * POOL, s.cat.size)
        ids, scores = topk(items, query, k, filter_query_items=heard, num_threads=0)
        starts = np.searchsorted(rows, np.arange(len(users) + 1))
        for j, user in enumerate(users.tolist()):
            keep = ids[j] >= 0
            found = s.candidates(ids[j][keep], scores[j][keep])
            mix = arrange(found, limit=size)
            if len(mix) < size:  # the listener has heard most of what fits: top it up
                span = slice(starts[j], starts[j + 1])
                again = mine[span][old[span]]
                below = min((c.score for c in found), default=0.0) - 1.0
                fill = s.candidates(again, below - 1e-3 * np.arange(len(again), dtype=np.float32))
                mix = arrange([*found, *fill], limit=size)
            yield int(user), mix


def _augmented_items(s: Scoring) -> npt.NDArray[np.float32]:
    pop = s.pop_standard
    return np.ascontiguousarray(
        np.hstack([s.items, s.cat.content, -s.content_norms[:, None], pop[:, None]]),
        dtype=np.float32,
    )


def _queries(
    s: Scoring, start: int, stop: int, sample: npt.NDArray[np.int64]
) -> npt.NDArray[np.float32]:
    """Each listener's side of the blend's dot product (see :func:`mixes`)."""
    assert s.model is not None
    w = Weights()
    factors = np.asarray(s.model.user_factors[start:stop], dtype=np.float32)
    taste = np.asarray(s.model.taste[start:stop], dtype=np.float32)
    als_sd = (factors @ s.items[sample].T).std(axis=1)
    content = 2 * taste @ s.cat.content[sample].T - s.content_norms[sample][None, :]
    content_sd = content.std(axis=1)
    a = np.where(als_sd > 1e-12, w.als / np.maximum(als_sd, 1e-12), 0.0)[:, None]
    c = np.where(content_sd > 1e-12, w.content / np.maximum(content_sd, 1e-12), 0.0)[:, None]
    ones = np.ones((stop - start, 1), dtype=np.float32)
    return np.hstack([a * factors, 2 * c * taste, c * ones, w.popularity * ones]).astype(np.float32)


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
