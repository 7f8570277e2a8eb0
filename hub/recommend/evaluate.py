"""``legato-hub recommend evaluate``: the models measured on the hub's own history.

A temporal split: T is the instant before which about 85 % of the matched plays
started; every model is trained on plays before T only. A listener's held-out set is
the distinct tracks they played completely after T and had not played before T (a
discovery evaluation), and no model may recommend a track that listener played before
T. "ALS" is the collaborative filter alone (a track nobody played before T has no
factors of its own, so it cannot rank); the blend adds the artist factors of such cold
tracks, content similarity and popularity; "blend_rules" is the blend under the mix
rules, as the Weekly Mix has it. Recall@k (hits over min(k, held-out)) and
NDCG@k per listener, averaged, with 95 % bootstrap intervals over listeners; catalog
coverage (distinct recommended tracks over the catalog) and artist concentration (Gini
of recommendations per catalog artist).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit runs its own threads

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from hub.db import Database
from hub.recommend import catalog, feedback, model
from hub.recommend.arrays import POOL, Scoring
from hub.recommend.rank import arrange, blend_rows, standard_rows, top

#: ``blend`` is the blend's ranking; ``blend_rules`` the same under the mix rules (two
#: per artist never in a row, a spread of genres): the Weekly Mix as a listener gets it.
MODELS = ("popularity", "content", "als", "blend", "blend_rules")
HELD_SHARE = 0.15
BOOTSTRAP = 1000
BLOCK = 256

COMPLETE = (
    f"NOT ({feedback.EARLY_SKIP}) AND (p.finished = 1"
    " OR (p.finished IS NULL AND COALESCE(p.skipped, 0) = 0))"
)


@dataclass(frozen=True, slots=True)
class Split:
    split_ms: int
    train: npt.NDArray[np.int64]  # feedback.aggregate rows before the split
    held: dict[int, set[int]]  # user id -> catalog indices
    cat: catalog.CatalogArrays


def recall_ndcg(recs: list[int], held: set[int], k: int) -> tuple[float, float]:
    hits = [1.0 if r in held else 0.0 for r in recs[:k]]
    recall = sum(hits) / min(k, len(held))
    dcg = sum(h / np.log2(i + 2) for i, h in enumerate(hits))
    ideal = sum(1.0 / np.log2(i + 2) for i in range(min(k, len(held))))
    return recall, dcg / ideal


def bootstrap_ci(values: npt.NDArray[np.float64], seed: int = 0) -> list[float]:
    if not len(values):
        return [0.0, 0.0]
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (BOOTSTRAP, len(values)))].mean(axis=1)
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def gini(counts: npt.NDArray[np.float64] | npt.NDArray[np.int64]) -> float:
    """0: every artist recommended equally often; near 1: one artist takes everything."""
    x = np.sort(counts.astype(np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return 0.0
    return float((2 * np.arange(1, n + 1) @ x) / (n * total) - (n + 1) / n)


def split(db: Database, share: float = HELD_SHARE) -> Split:
    with db.reading() as conn:
        n = conn.execute("SELECT COUNT(*) FROM plays WHERE track_id IS NOT NULL").fetchone()[0]
        if n < 2:
            raise ValueError("not enough matched plays to evaluate (import or play some first)")
        t = conn.execute(
            "SELECT played_ms FROM plays WHERE track_id IS NOT NULL ORDER BY played_ms"
            " LIMIT 1 OFFSET ?",
            (int(n * (1 - share)),),
        ).fetchone()[0]
        train, cat = feedback.snapshot(conn, before_ms=t)
        after = conn.execute(
            "SELECT DISTINCT p.user_id, t.rowid FROM plays p JOIN tracks t ON t.id = p.track_id"
            f" WHERE p.played_ms >= ? AND {COMPLETE}",
            (t,),
        ).fetchall()
    before = {(int(u), int(r)) for u, r, *_ in train}
    held: dict[int, set[int]] = {}
    for u, r in after:
        at = int(np.searchsorted(cat.rowids, r))
        if (u, r) not in before and at < cat.size and cat.rowids[at] == r:
            held.setdefault(u, set()).add(at)
    return Split(int(t), train, held, cat)


def _scores(s: Scoring, users: npt.NDArray[np.int64]) -> dict[str, npt.NDArray[np.float32]]:
    """Every model's scores for a block of listeners (rows) over the catalog."""
    assert s.model is not None
    rows = np.array([s.model.user_row(int(u)) for u in users], dtype=object)
    f = np.zeros((len(users), s.items.shape[1]), dtype=np.float32)
    taste = np.zeros((len(users), s.cat.content.shape[1]), dtype=np.float32)
    for j, r in enumerate(rows):
        if r is not None:
            f[j], taste[j] = s.model.user_factors[r], s.model.taste[r]
    als = f @ s.items.T
    alone = np.where(s.warm[None, :], als, -np.inf).astype(np.float32)  # ALS alone: no cold
    norms = (s.cat.content * s.cat.content).sum(axis=1)[None, :]
    content = 2 * taste @ s.cat.content.T - (taste * taste).sum(axis=1)[:, None] - norms
    pop = np.asarray(s.model.popularity, dtype=np.float32)
    return {
        "popularity": np.broadcast_to(pop, als.shape),
        "content": standard_rows(content),
        "als": alone,
        "blend": (mixed := blend_rows(als, content, pop)),
        "blend_rules": mixed,
    }


def evaluate(db: Database, k: int = 20, max_listeners: int = 5000, seed: int = 0) -> dict[str, Any]:
    data = split(db)
    started = time.time()
    with threadpool_limits(1, user_api="blas"):  # numpy came first: the variable is too late
        trained = model.train(data.train, data.cat, data.split_ms)
    train_s = time.time() - started
    s = Scoring.build(data.cat, trained)
    users = np.array(sorted(data.held), dtype=np.int64)
    if len(users) > max_listeners:
        users = np.sort(np.random.default_rng(seed).choice(users, max_listeners, replace=False))
    cols = np.searchsorted(data.cat.rowids, data.train[:, 1])
    heard: dict[int, list[int]] = {}
    for u, c in zip(data.train[:, 0].tolist(), cols.tolist(), strict=True):
        heard.setdefault(u, []).append(c)
    metrics: dict[str, tuple[list[float], list[float], npt.NDArray[np.float64]]] = {
        m: ([], [], np.zeros(data.cat.size)) for m in MODELS
    }
    for start in range(0, len(users), BLOCK):
        block = users[start : start + BLOCK]
        scores = _scores(s, block)
        for j, u in enumerate(block.tolist()):
            excluded = np.zeros(data.cat.size, dtype=bool)
            excluded[heard.get(u, [])] = True
            for name in MODELS:
                recs = _recommend(s, name, scores[name][j], excluded, k)
                r, n = recall_ndcg(recs, data.held[u], k)
                metrics[name][0].append(r)
                metrics[name][1].append(n)
                metrics[name][2][recs] += 1
    return {
        "k": k,
        "split_ms": data.split_ms,
        "listeners": len(users),
        "models": {name: _summary(data.cat, *metrics[name]) for name in MODELS},
        "train_seconds": round(train_s, 3),
    }


def _recommend(
    s: Scoring, name: str, scores: npt.NDArray[np.float32], excluded: npt.NDArray[np.bool_], k: int
) -> list[int]:
    if name != "blend_rules":
        return [int(i) for i in top(scores, excluded, k)]
    best = top(scores, excluded, k * POOL)
    picked = arrange(s.candidates(best, scores[best]), limit=k)
    return [s.index[i] for i in picked]


def _summary(
    cat: catalog.CatalogArrays,
    recall: list[float],
    ndcg: list[float],
    counts: npt.NDArray[np.float64],
) -> dict[str, Any]:
    per_artist = np.bincount(cat.artist, weights=counts, minlength=len(cat.artist_ids))
    r, n = np.array(recall), np.array(ndcg)
    return {
        "recall": round(float(r.mean()) if len(r) else 0.0, 4),
        "recall_ci": bootstrap_ci(r),
        "ndcg": round(float(n.mean()) if len(n) else 0.0, 4),
        "ndcg_ci": bootstrap_ci(n, seed=1),
        "coverage": round(float((counts > 0).sum() / max(cat.size, 1)), 4),
        "artist_gini": round(gini(per_artist), 4),
    }
