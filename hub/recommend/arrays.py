"""A trained model lined up with today's catalog: what serving and the Weekly Mix
score with, one matrix-vector product per listener."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hub.recommend.catalog import CatalogArrays
from hub.recommend.model import Model, fold_cold
from hub.recommend.rank import Candidate, Weights, arrange, blend, popularity_prior, top

DEFAULT_WEIGHTS = Weights()
POOL = 6  # candidates per wanted track handed to the rules


@dataclass(frozen=True, slots=True)
class Scoring:
    cat: CatalogArrays
    model: Model | None
    items: npt.NDArray[np.float32]  # catalog x factors (zeros without a model)
    popularity: npt.NDArray[np.float32]
    index: dict[str, int]
    content_norms: npt.NDArray[np.float32]  # squared length of each content vector
    labels: tuple[list[str], list[str], list[str]]  # per track: id, artist id, genre
    #: tracks with plays of their own (their factors are ALS's; the others' are folded
    #: from their artist's)
    warm: npt.NDArray[np.bool_]
    pop_standard: npt.NDArray[np.float32]  # ``rank.popularity_prior``, once per model

    @classmethod
    def build(cls, cat: CatalogArrays, model: Model | None) -> Scoring:
        index = cat.index_of()
        warm = np.zeros(cat.size, dtype=bool)
        if model is None:
            items = np.zeros((cat.size, 1), dtype=np.float32)
            pop = cat.popularity
        else:
            rows = np.array([index.get(str(t), -1) for t in model.track_ids], dtype=np.int64)
            known = rows >= 0
            items = np.zeros((cat.size, model.item_factors.shape[1]), dtype=np.float32)
            items[rows[known]] = model.item_factors[known]
            warm[rows[known]] = np.asarray(model.warm)[known]
            items = fold_cold(items, warm, cat)
            pop = np.zeros(cat.size, dtype=np.float32)
            pop[rows[known]] = model.popularity[known]
            pop = 0.7 * pop + 0.3 * cat.popularity
        norms = (cat.content * cat.content).sum(axis=1).astype(np.float32)
        labels = (
            cat.ids.tolist(),
            cat.artist_ids[cat.artist].tolist(),
            [cat.genres[g] for g in cat.genre.tolist()],
        )
        items = np.ascontiguousarray(items)
        pop = pop.astype(np.float32)
        return cls(cat, model, items, pop, index, norms, labels, warm, popularity_prior(pop))

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

    def known_skips(self, user_id: int) -> tuple[npt.NDArray[np.str_], int] | None:
        """The early skips the model holds for ``user_id`` and when it was trained (None
        without a model: then the whole history is read)."""
        if self.model is None:
            return None
        row = self.model.user_row(user_id)
        banned = self.model.banned(row) if row is not None else np.zeros(0, dtype=str)
        return banned, int(self.model.trained_ms[0])

    def scores(
        self,
        user_id: int | None,
        seeds: npt.NDArray[np.int64],
        weights: Weights = DEFAULT_WEIGHTS,
    ) -> npt.NDArray[np.float32]:
        """The blend over the whole catalog for a listener, pulled toward the seeds."""
        factors, taste = self.user_vectors(user_id)
        query = None if factors is None else _unit(factors)
        if len(seeds):
            seed_f = self.items[seeds].mean(axis=0)
            if np.any(seed_f):  # the seeds lead, the listener's own taste follows
                query = _unit(seed_f) if query is None else 0.5 * query + _unit(seed_f)
            taste = self.cat.content[seeds].mean(axis=0)
        als = None if query is None else self.items @ query.astype(np.float32)
        content = None
        if taste is not None:  # minus the squared distance, without a catalog-sized copy
            content = 2 * (self.cat.content @ taste.astype(np.float32)) - self.content_norms
        return blend(als, content, self.popularity, weights, popularity_standard=self.pop_standard)

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
        found = self.candidates(best, scores[best])
        return arrange(found, limit=limit, banned=banned, recent=recent)

    def candidates(
        self, best: Sequence[int] | npt.NDArray[np.int64], values: npt.NDArray[np.float32]
    ) -> list[Candidate]:
        """``Candidate``s of the tracks ``best`` with their scores ``values`` (aligned)."""
        ids, artists, genres = self.labels
        picked = np.asarray(best).tolist()
        return [
            Candidate(ids[i], artists[i], genres[i], v)
            for i, v in zip(picked, np.asarray(values).tolist(), strict=True)
        ]


def _unit(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norm = float(np.linalg.norm(x))
    return x / norm if norm > 1e-12 else np.zeros_like(x)
