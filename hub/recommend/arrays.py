"""A trained model lined up with today's catalog: what serving and the Weekly Mix
score with, one matrix-vector product per listener."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hub.recommend.catalog import CatalogArrays
from hub.recommend.model import Model, fold_cold
from hub.recommend.rank import Candidate, Weights, arrange, blend, top

DEFAULT_WEIGHTS = Weights()
POOL = 12  # candidates per wanted track handed to the rules


@dataclass(frozen=True, slots=True)
class Scoring:
    cat: CatalogArrays
    model: Model | None
    items: npt.NDArray[np.float32]  # catalog x factors (zeros without a model)
    popularity: npt.NDArray[np.float32]
    index: dict[str, int]

    @classmethod
    def build(cls, cat: CatalogArrays, model: Model | None) -> Scoring:
        index = cat.index_of()
        if model is None:
            items = np.zeros((cat.size, 1), dtype=np.float32)
            pop = cat.popularity
        else:
            rows = np.array([index.get(str(t), -1) for t in model.track_ids], dtype=np.int64)
            known = rows >= 0
            items = np.zeros((cat.size, model.item_factors.shape[1]), dtype=np.float32)
            items[rows[known]] = model.item_factors[known]
            warm = np.zeros(cat.size, dtype=bool)
            warm[rows[known]] = np.asarray(model.warm)[known]
            items = fold_cold(items, warm, cat)
            pop = np.zeros(cat.size, dtype=np.float32)
            pop[rows[known]] = model.popularity[known]
            pop = 0.7 * pop + 0.3 * cat.popularity
        return cls(cat, model, items, pop.astype(np.float32), index)

    def indices(self, ids: Collection[str]) -> npt.NDArray[np.int64]:
        return np.array([self.index[i] for i in ids if i in self.index], dtype=np.int64)

    def user_vectors(
        self, user_id: int | None
    ) -> tuple[npt.NDArray[np.float32] | None, npt.NDArray[np.float32] | None]:
        """The listener's factors and content taste, when the model knows them."""
        if self.model is None or user_id is None:
            return None, None
        row = self.model.user_row(user_id)
        if row is None:
            return None, None
        return np.asarray(self.model.user_factors[row]), np.asarray(self.model.taste[row])

    def scores(
        self,
        user_id: int | None,
        seeds: npt.NDArray[np.int64],
        weights: Weights = DEFAULT_WEIGHTS,
    ) -> npt.NDArray[np.float32]:
        """The blend over the whole catalog for a listener, pulled toward the seeds."""
        factors, taste = self.user_vectors(user_id)
        als = None if factors is None else self.items @ factors
        if len(seeds):
            seed_f = self.items[seeds].mean(axis=0)
            if np.any(seed_f):
                seed_als = self.items @ seed_f
                als = seed_als if als is None else 0.5 * _unit(als) + _unit(seed_als)
            taste = self.cat.content[seeds].mean(axis=0)
        content = None if taste is None else -np.linalg.norm(self.cat.content - taste, axis=1)
        return blend(als, content, self.popularity, weights)

    def pick(
        self,
        scores: npt.NDArray[np.float32],
        excluded: npt.NDArray[np.bool_],
        limit: int,
        *,
        banned: Collection[str] = (),
        recent: Collection[str] = (),
    ) -> list[str]:
        """The best ``limit`` under the rules (``rank.arrange``)."""
        best = top(scores, excluded, limit * POOL)
        return arrange(self.candidates(best, scores), limit=limit, banned=banned, recent=recent)

    def candidates(
        self, best: Sequence[int] | npt.NDArray[np.int64], scores: npt.NDArray[np.float32]
    ) -> list[Candidate]:
        cat = self.cat
        return [
            Candidate(
                str(cat.ids[i]),
                str(cat.artist_ids[cat.artist[i]]),
                cat.genres[cat.genre[i]],
                float(scores[i]),
            )
            for i in best
        ]


def _unit(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    sd = float(x.std())
    return (x - x.mean()) / sd if sd > 1e-12 else np.zeros_like(x)
