"""Ranking a window of matches: text relevance blended with popularity (pure).

Relevance is BM25's term-frequency and length part, per column with the kind's
weights, computed here from the documents' text rather than by FTS5's ``bm25()``:
that function first counts every row matching each phrase (for its IDF), which for
"c*" or "the" means reading a doclist of hundreds of thousands of rows on every
keystroke.  Within a window every candidate matches every term, so IDF would only
shift weight between terms; it is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hub.catalog.search.query import Term

RELEVANCE_WEIGHT = 0.6
POPULARITY_WEIGHT = 0.4
K1 = 1.2
B = 0.75
AVERAGE_TOKENS = 3.0  # a typical name's length in tokens, BM25's average document


@dataclass(frozen=True, slots=True)
class Candidate:
    doc: int
    id: str
    popularity: int
    texts: tuple[str, ...]  # the document's columns (folded tokens), in the kind's order


class Relevance:
    """BM25 without IDF, for one query on one kind: for each term and each column it may
    match (``allowed``), saturated term frequency over length-normalised column length,
    times the column's weight.  Built once per query, applied to each candidate."""

    def __init__(
        self, terms: Sequence[Term], allowed: Sequence[Sequence[int]], weights: Sequence[float]
    ) -> None:
        self.tests = [
            (_counter(term), [(column, weights[column]) for column in where])
            for term, where in zip(terms, allowed, strict=True)
        ]

    def __call__(self, texts: Sequence[str]) -> float:
        columns: dict[int, list[str]] = {}
        score = 0.0
        for count, where in self.tests:
            for column, weight in where:
                tokens = columns.get(column)
                if tokens is None:
                    tokens = columns[column] = texts[column].split()
                tf = count(tokens)
                if tf:
                    norm = 1 - B + B * len(tokens) / AVERAGE_TOKENS
                    score += weight * tf * (K1 + 1) / (tf + K1 * norm)
        return score


def _counter(term: Term) -> Callable[[list[str]], int]:
    """How many of a column's tokens satisfy ``term`` (as FTS5 matched them)."""
    if term.expansion is not None:
        words = frozenset(term.expansion)
        return lambda tokens: sum(1 for t in tokens if t in words)
    if term.prefix:
        text = term.text
        return lambda tokens: sum(1 for t in tokens if t.startswith(text))
    return lambda tokens: tokens.count(term.text)


def rank(scored: Sequence[tuple[Candidate, float]]) -> list[Candidate]:
    """Best first by ``0.6 * relevance / best relevance + 0.4 * popularity / 100``.

    Ties keep the index's order (more popular, then older, first).
    """
    best = max((r for _, r in scored), default=0.0)

    def score(item: tuple[Candidate, float]) -> float:
        candidate, r = item
        share = r / best if best > 0 else 1.0
        return RELEVANCE_WEIGHT * share + POPULARITY_WEIGHT * candidate.popularity / 100

    return [c for c, _ in sorted(scored, key=lambda item: (-score(item), item[0].doc))]
