"""Searching one kind of item: FTS5 candidates in popularity order, re-ranked by relevance.

FTS5 returns matches in rowid order, and a document's rowid puts the most popular
items first (see :mod:`hub.catalog.search.kinds`), so ``MATCH ... LIMIT n`` reads only the
first n matches however common the words are.  Matches are taken in windows of
:data:`WINDOW` (in popularity order); each window is ordered by
:func:`hub.catalog.search.ranking.rank`, and pages are cut from the windows in turn.  Page
boundaries therefore never reorder results: following ``next`` returns every match
once.  Like Spotify, at most :data:`MAX_RESULTS` matches are reachable, and the total
is counted up to that cap, which keeps a count of "the" as cheap as one of "zyx".
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from hub.catalog.search.kinds import ALBUM, KINDS, PLAYLIST, TRACK, Kind, popularity
from hub.catalog.search.query import ParsedQuery, match_expression, parse
from hub.catalog.search.ranking import Candidate, Relevance, rank
from hub.catalog.search.vocabulary import resolve

WINDOW = 50
MAX_RESULTS = 1000


@dataclass(frozen=True, slots=True)
class Page:
    ids: tuple[str, ...]
    total: int


def _filters(kind: Kind, market: str | None, user_id: int | None) -> tuple[str, str, list[object]]:
    """Joins, conditions and parameters that keep to what the caller may see: what is
    sold in ``market``, and public playlists or the caller's own."""
    item = (
        f" JOIN {kind.docs} AS d ON d.doc = {kind.fts}.rowid"
        f" JOIN {kind.table} AS item ON item.id = d.id"
    )
    sold = "({col} = '' OR instr(' ' || {col} || ' ', ?) > 0)"
    code = f" {market.upper()} " if market else ""
    if kind is TRACK and market:
        condition = (
            f" AND {sold.format(col='item.markets')}"
            f" AND (al.markets IS NULL OR {sold.format(col='al.markets')})"
        )
        return item + " LEFT JOIN albums AS al ON al.id = item.album_id", condition, [code, code]
    if kind is ALBUM and market:
        return item, f" AND {sold.format(col='item.markets')}", [code]
    if kind is PLAYLIST:
        return item, " AND (item.public = 1 OR item.owner_id = ?)", [user_id]
    return "", "", []


def _allowed(kind: Kind, query: ParsedQuery) -> list[list[int]]:
    """For each term, the indexes of the columns it may match."""
    text = [kind.columns.index(c) for c in kind.text_columns]
    return [
        text if t.field is None else [kind.columns.index(kind.field_columns[t.field])]
        for t in query.terms
    ]


def search(
    conn: sqlite3.Connection,
    kind: Kind,
    query: ParsedQuery,
    *,
    limit: int,
    offset: int,
    market: str | None = None,
    user_id: int | None = None,
) -> Page:
    """Ids of one page of ``kind`` matching ``query``, best first, and the capped total."""
    expression = match_expression(query, kind.text_columns, kind.field_columns, kind.year_column)
    if expression is None:
        return Page((), 0)
    offset = max(0, offset)
    limit = max(0, min(limit, MAX_RESULTS - offset))
    joins, conditions, params = _filters(kind, market, user_id)
    fts = kind.fts
    # One pass finds the matches (up to the cap) in index order: their count is the
    # total, and the windows a page needs are cut from them.
    scan = f"SELECT {fts}.rowid FROM {fts}{joins} WHERE {fts} MATCH ?{conditions} LIMIT ?"
    docs = [r[0] for r in conn.execute(scan, (expression, *params, MAX_RESULTS))]
    relevance = Relevance(query.terms, _allowed(kind, query), kind.weights)
    first = offset // WINDOW
    ranked: list[Candidate] = []
    for window in range(first, (offset + limit - 1) // WINDOW + 1 if limit else first):
        ranked += _ranked_window(conn, kind, relevance, docs[window * WINDOW :][:WINDOW])
    start = offset - first * WINDOW
    return Page(tuple(c.id for c in ranked[start : start + limit]), len(docs))


def _ranked_window(
    conn: sqlite3.Connection, kind: Kind, relevance: Relevance, docs: list[int]
) -> list[Candidate]:
    """The window's documents, best first."""
    if not docs:
        return []
    columns = ", ".join(kind.columns)
    marks = ", ".join("?" * len(docs))
    rows = conn.execute(
        f"SELECT doc, id, {columns} FROM {kind.docs} WHERE doc IN ({marks})", docs
    ).fetchall()
    candidates = [Candidate(r[0], r[1], popularity(r[0]), tuple(r[2:])) for r in rows]
    return rank([(c, relevance(c.texts)) for c in candidates])


def find(
    conn: sqlite3.Connection,
    q: str,
    kinds: Sequence[str],
    *,
    limit: int,
    offset: int,
    market: str | None = None,
    user_id: int | None = None,
) -> dict[str, Page]:
    """Parse ``q``, resolve its words against the index once, and search each kind."""
    query = parse(q)
    if query.empty:
        return {k: Page((), 0) for k in kinds}
    query = resolve(conn, query)
    return {
        k: search(conn, KINDS[k], query, limit=limit, offset=offset, market=market, user_id=user_id)
        for k in kinds
    }
