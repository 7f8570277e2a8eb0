"""Ranking for a person, as plain functions over values.

``blend`` mixes the model's scores (ALS, the artist factors of cold tracks, content
similarity to the listener's taste or the seeds, a little popularity) into one;
``arrange`` turns the best of them into a list under the rules listeners ask for:
nothing they skipped early, nothing from ``recent`` (a discovery list leaves out what
they played in the last 60 days), at most ``per_artist`` tracks of an artist and never
two of the same artist in a row, and no genre over half the list while another genre
can take the place.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DISCOVERY_DAYS = 60
PER_ARTIST = 2
GENRE_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class Weights:
    als: float = 1.0
    content: float = 0.35
    popularity: float = 0.1


@dataclass(frozen=True, slots=True)
class Candidate:
    id: str
    artist: str
    genre: str  # "" = unknown: never counted against the spread
    score: float


def standard(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Zero mean, unit spread (all zeros when the scores do not vary)."""
    sd = float(x.std()) if x.size else 0.0
    return ((x - x.mean()) / sd).astype(np.float32) if sd > 1e-12 else np.zeros_like(x)


def blend(
    als: npt.NDArray[np.float32] | None,
    content: npt.NDArray[np.float32] | None,
    popularity: npt.NDArray[np.float32],
    weights: Weights = Weights(),
) -> npt.NDArray[np.float32]:
    """One score per track; a missing part (no factors, no taste) weighs nothing."""
    score = weights.popularity * standard(popularity)
    if als is not None:
        score = score + weights.als * standard(als)
    if content is not None:
        score = score + weights.content * standard(content)
    return score


def top(
    scores: npt.NDArray[np.float32], excluded: npt.NDArray[np.bool_], n: int
) -> npt.NDArray[np.int64]:
    """Indices of the ``n`` best scores, best first, never an excluded one."""
    masked = np.where(excluded, -np.inf, scores)
    allowed = int((~excluded).sum())
    n = min(n, allowed)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-masked, n - 1)[:n]
    return part[np.argsort(-masked[part], kind="stable")].astype(np.int64)


def arrange(
    candidates: Sequence[Candidate],
    *,
    limit: int,
    banned: Collection[str] = frozenset(),
    recent: Collection[str] = frozenset(),
    per_artist: int = PER_ARTIST,
    genre_share: float = GENRE_SHARE,
) -> list[str]:
    """Best first under the rules; shorter than ``limit`` when the rules leave too few."""
    seen: set[str] = set()
    pool: list[Candidate] = []
    for c in sorted(candidates, key=lambda c: (-c.score, c.id)):
        if c.id not in seen and c.id not in banned and c.id not in recent:
            seen.add(c.id)
            pool.append(c)
    cap = max(1, int(limit * genre_share))
    artists: Counter[str] = Counter()
    genres: Counter[str] = Counter()
    out: list[str] = []
    last = None
    while len(out) < limit and pool:
        fits = [c for c in pool if artists[c.artist] < per_artist and c.artist != last]
        if not fits:
            break
        spread = [c for c in fits if not c.genre or genres[c.genre] < cap]
        pick = (spread or fits)[0]
        pool.remove(pick)
        out.append(pick.id)
        artists[pick.artist] += 1
        if pick.genre:
            genres[pick.genre] += 1
        last = pick.artist
    return out


def standard_rows(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """:func:`standard` along each row of a listeners x tracks block."""
    sd = x.std(axis=1, keepdims=True)
    return np.where(sd > 1e-12, (x - x.mean(axis=1, keepdims=True)) / np.maximum(sd, 1e-12), 0.0)


def blend_rows(
    als: npt.NDArray[np.float32] | None,
    content: npt.NDArray[np.float32] | None,
    popularity: npt.NDArray[np.float32],
    weights: Weights = Weights(),
) -> npt.NDArray[np.float32]:
    """:func:`blend` for a block of listeners at once (rows: listeners)."""
    score = weights.popularity * standard(popularity)[np.newaxis, :]
    if als is not None:
        score = score + weights.als * standard_rows(als)
    if content is not None:
        score = score + weights.content * standard_rows(content)
    return np.asarray(score, dtype=np.float32)
