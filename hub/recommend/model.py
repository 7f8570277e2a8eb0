"""The trained model: ALS factors over the listener x track confidence matrix, with
cold tracks (no plays yet) given their artist's folded factors, and a decayed
popularity; saved as a directory of ``.npy`` arrays (renamed into place, so a reader
never sees half a model) and loaded memory-mapped."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import sparse

from hub.recommend.catalog import CatalogArrays
from hub.recommend.feedback import confidences

COLD_SHRINK = 0.8  # a cold track's artist factors count a little less than its own would
HALF_LIFE_MS = 14 * 86_400_000  # time-aware popularity halves every two weeks
ARRAYS = (
    "user_ids",
    "user_factors",
    "track_ids",
    "item_factors",
    "warm",
    "popularity",
    "taste",
    "banned_indptr",
    "banned_tracks",
    "trained_ms",
)


@dataclass(frozen=True, slots=True)
class Model:
    user_ids: npt.NDArray[np.int64]  # sorted
    user_factors: npt.NDArray[np.float32]
    track_ids: npt.NDArray[np.str_]
    item_factors: npt.NDArray[np.float32]  # warm: ALS; cold: the artist's, shrunk
    warm: npt.NDArray[np.bool_]
    popularity: npt.NDArray[np.float32]  # decayed plays, 0..1
    taste: npt.NDArray[np.float32]  # per listener, mean content vector of what they like
    #: per listener (CSR over ``user_ids``), the tracks (indices into ``track_ids``) they
    #: skipped early up to ``trained_ms``: a request then reads only later plays
    banned_indptr: npt.NDArray[np.int64]
    banned_tracks: npt.NDArray[np.int32]
    trained_ms: npt.NDArray[np.int64]  # one value: the plays read ended here

    def banned(self, row: int) -> npt.NDArray[np.str_]:
        """Track ids listener ``row`` had skipped early when the model was trained."""
        span = self.banned_tracks[int(self.banned_indptr[row]) : int(self.banned_indptr[row + 1])]
        return np.asarray(self.track_ids[np.asarray(span)])

    def user_row(self, user_id: int) -> int | None:
        i = int(np.searchsorted(self.user_ids, user_id))
        return i if i < len(self.user_ids) and self.user_ids[i] == user_id else None

    @property
    def factors(self) -> int:
        return int(self.user_factors.shape[1]) if self.user_factors.ndim == 2 else 0


@dataclass(frozen=True, slots=True)
class TrainOptions:
    factors: int = 0  # 0: by the number of listeners (see ``auto_factors``)
    iterations: int = 15
    regularization: float = 1.0
    seed: int = 0


def auto_factors(listeners: int) -> int:
    """Few listeners support few factors (more only learn their noise): 16 up to about
    200 listeners, growing to 64 from about 800."""
    return min(64, max(16, listeners // 12))


def matrix(
    agg: npt.NDArray[np.int64], cat: CatalogArrays
) -> tuple[npt.NDArray[np.int64], sparse.csr_matrix]:
    """Listener ids and the listener x catalog-track confidence matrix (CSR)."""
    users, uidx = np.unique(agg[:, 0], return_inverse=True)
    cols = np.searchsorted(cat.rowids, agg[:, 1])
    conf = confidences(agg[:, 2].astype(np.float64), agg[:, 3].astype(np.float64))
    keep = conf != 0
    m = sparse.csr_matrix(
        (conf[keep], (uidx[keep], cols[keep])), shape=(len(users), cat.size), dtype=np.float32
    )
    return users, m


def decayed_popularity(
    agg: npt.NDArray[np.int64], cat: CatalogArrays, now_ms: int
) -> npt.NDArray[np.float32]:
    cols = np.searchsorted(cat.rowids, agg[:, 1])
    age = np.maximum(now_ms - agg[:, 4], 0).astype(np.float64)
    weight = agg[:, 2] * np.exp2(-age / HALF_LIFE_MS)
    pop = np.bincount(cols, weights=weight, minlength=cat.size)
    top = pop.max() if pop.size else 0.0
    return (pop / top if top > 0 else pop).astype(np.float32)


def tastes(m: sparse.csr_matrix, cat: CatalogArrays) -> npt.NDArray[np.float32]:
    """Each listener's mean content vector over the tracks they like (positive rows)."""
    liked = m.multiply(m > 0).tocsr()
    weights = liked.multiply(cat.has_content[np.newaxis, :].astype(np.float32)).tocsr()
    sums = np.asarray(weights.sum(axis=1)).ravel()
    out = weights @ cat.content
    result: npt.NDArray[np.float32] = (out / np.maximum(sums, 1e-9)[:, None]).astype(np.float32)
    return result


def fold_cold(
    items: npt.NDArray[np.float32], warm: npt.NDArray[np.bool_], cat: CatalogArrays
) -> npt.NDArray[np.float32]:
    """Cold tracks get the mean factors of their artist's warm tracks (zero if none)."""
    n_artists = len(cat.artist_ids)
    sums = np.zeros((n_artists, items.shape[1]), dtype=np.float64)
    np.add.at(sums, cat.artist[warm], items[warm])
    counts = np.bincount(cat.artist[warm], minlength=n_artists)
    artist = sums / np.maximum(counts, 1)[:, None]
    out = items.copy()
    out[~warm] = (COLD_SHRINK * artist[cat.artist[~warm]]).astype(np.float32)
    return out


def early_skips(
    agg: npt.NDArray[np.int64], users: npt.NDArray[np.int64], cat: CatalogArrays
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """Per listener in ``users`` (sorted), the catalog indices of the tracks they skipped
    early (``agg``'s fourth column), as CSR arrays."""
    skipped = agg[agg[:, 3] > 0]
    rows = np.searchsorted(users, skipped[:, 0])
    order = np.argsort(rows, kind="stable")
    cols = np.searchsorted(cat.rowids, skipped[order, 1]).astype(np.int32)
    indptr = np.searchsorted(rows[order], np.arange(len(users) + 1)).astype(np.int64)
    return indptr, cols


def train(
    agg: npt.NDArray[np.int64],
    cat: CatalogArrays,
    now_ms: int,
    opts: TrainOptions = TrainOptions(),
    on_iteration: Callable[[int], None] | None = None,
) -> Model:
    """Fit ALS (``implicit``) on the plays in ``agg`` (see ``feedback.aggregate``)."""
    from implicit.cpu.als import AlternatingLeastSquares  # type: ignore[import-untyped]

    users, m = matrix(agg, cat)
    warm = np.asarray((abs(m) > 0).sum(axis=0)).ravel() > 0
    f = opts.factors or auto_factors(len(users))
    if m.nnz:
        als = AlternatingLeastSquares(
            factors=f,
            regularization=opts.regularization,
            iterations=opts.iterations,
            random_state=opts.seed,
        )
        callback = (lambda it, _t, _l: on_iteration(it + 1)) if on_iteration else None
        als.fit(m, show_progress=False, callback=callback)
        user_f = np.asarray(als.user_factors, dtype=np.float32)
        item_f = np.asarray(als.item_factors, dtype=np.float32)
    else:
        user_f = np.zeros((0, f), dtype=np.float32)
        item_f = np.zeros((cat.size, f), dtype=np.float32)
    indptr, banned = early_skips(agg, users, cat)
    return Model(
        banned_indptr=indptr,
        banned_tracks=banned,
        trained_ms=np.array([now_ms], dtype=np.int64),
        user_ids=users.astype(np.int64),
        user_factors=user_f,
        track_ids=cat.ids,
        item_factors=fold_cold(item_f, warm, cat),
        warm=warm,
        popularity=decayed_popularity(agg, cat, now_ms),
        taste=tastes(m, cat),
    )


def save(model: Model, path: Path) -> None:
    """Write ``model`` as ``path/`` (a directory), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ARRAYS:
        np.save(tmp / f"{name}.npy", getattr(model, name))
    os.replace(tmp, path)


def load(path: Path) -> Model:
    return Model(**{n: np.load(path / f"{n}.npy", mmap_mode="r") for n in ARRAYS})


KEEP = 2  # models kept on disk: the newest, and the one a hub may still be serving
ABANDONED_S = 86_400.0  # a half-written model this old was left by a run that died


def prune(models_dir: Path, keep: int = KEEP) -> list[Path]:
    """Delete all but the ``keep`` newest models (by run number) and any half-written
    one; what was deleted.  A hub still reading a deleted model keeps its mapping."""
    runs = []
    for path in models_dir.glob("recommender-*"):
        number = path.name.removeprefix("recommender-").removesuffix(".tmp")
        if number.isdigit():
            runs.append((path.name.endswith(".tmp"), int(number), path))
    finished = sorted((n, p) for tmp, n, p in runs if not tmp)
    stale = time.time() - ABANDONED_S  # a run still writing its model is left alone
    half = [p for tmp, _, p in runs if tmp and p.stat().st_mtime < stale]
    gone = half + [p for _, p in finished[:-keep]]
    for path in gone:
        shutil.rmtree(path, ignore_errors=True)
    return gone
