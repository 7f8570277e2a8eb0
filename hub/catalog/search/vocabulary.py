"""The index's vocabulary: completing the word being typed, and correcting small typos.

``search_terms`` holds every token the index has seen (filled from ``fts5vocab`` on a
rebuild, kept up to date by :mod:`hub.catalog.search.index`) with how many items use it.

Completion: a prefix of up to :data:`PREFIX_INDEXED` characters is left to FTS5, whose
prefix indexes (migration 4) stream its matches in rowid order.  A longer prefix
becomes an OR of its completions (up to :data:`MAX_COMPLETIONS`): without a prefix
index FTS5 merges the doclists of every completion in full before it returns a row
(1-2.5 ms for "lover" or "stran" at 1M tracks), while an OR of the same words streams
and stops at ``LIMIT`` (0.2 ms).

Typos: a word of 4 or more characters that matches nothing is replaced by the index's
words one edit away (insert, delete, substitute, or swap two neighbours): every such
variant is generated (a few hundred) and looked up in one statement, so the cost does
not grow with the vocabulary.  The word being typed is corrected as a prefix (some
index word starts with the variant).  Failing that, a word of 8 or more characters may
be two edits away: those are found by scanning the words that share its first two
characters and length (at most :data:`SCAN_LIMIT` of them).  The most used
corrections are matched instead of the word.
"""

from __future__ import annotations

import sqlite3
import string
from dataclasses import replace

from hub.catalog.search.query import ParsedQuery, Term

PREFIX_INDEXED = 4
MAX_COMPLETIONS = 48
MAX_CORRECTIONS = 5
SCAN_LIMIT = 4000
#: Longer "words" are pasted text, not typing: no correction.
MAX_WORD = 32
#: Letters tried for inserts and substitutions, besides the word's own.
ALPHABET = string.ascii_lowercase + string.digits
_TOP = "\U0010ffff"  # sorts after every character: "abc" <= t < "abc" + _TOP is a prefix range


def max_edits(word: str) -> int:
    """Edits tolerated in a word: none below 4 characters, 1 up to 7, then 2."""
    if len(word) < 4 or len(word) > MAX_WORD:
        return 0
    return 1 if len(word) < 8 else 2


def edits(word: str, alphabet: str = ALPHABET) -> set[str]:
    """Every string one edit from ``word`` (inserts and substitutions from ``alphabet``
    and the word's own characters)."""
    letters = "".join(sorted(set(alphabet) | set(word)))
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    out = {a + b[1:] for a, b in splits if b}
    out |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    out |= {a + c + b[1:] for a, b in splits if b for c in letters}
    out |= {a + c + b for a, b in splits for c in letters}
    out.discard(word)
    return out


def distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance, or ``limit + 1`` once it must exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] | None = None
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            best = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if before is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                best = min(best, before[j - 2] + 1)
            current[j] = best
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return min(previous[-1], limit + 1)


def prefix_distance(typed: str, word: str, limit: int) -> int:
    """How far ``typed`` is from the nearest prefix of ``word`` (capped like distance)."""
    shortest, longest = max(1, len(typed) - limit), min(len(word), len(typed) + limit)
    return min(
        (distance(typed, word[:n], limit) for n in range(shortest, longest + 1)),
        default=limit + 1,
    )


def completions(conn: sqlite3.Connection, prefix: str, most: int) -> list[str] | None:
    """The index's words starting with ``prefix``; None if there are more than ``most``."""
    words = [
        row[0]
        for row in conn.execute(
            "SELECT term FROM search_terms WHERE term >= ? AND term < ? LIMIT ?",
            (prefix, prefix + _TOP, most + 1),
        )
    ]
    return None if len(words) > most else words


def is_known(conn: sqlite3.Connection, word: str) -> bool:
    row = conn.execute("SELECT 1 FROM search_terms WHERE term = ?", (word,)).fetchone()
    return row is not None


def _values(count: int) -> str:
    return ", ".join(["(?)"] * count)


def _one_edit(conn: sqlite3.Connection, term: Term) -> list[tuple[int, str]]:
    """(docs, word) of index words one edit from ``term`` (for a prefix: that start so)."""
    variants = sorted(edits(term.text))
    if not term.prefix:
        sql = (
            f"WITH v(w) AS (VALUES {_values(len(variants))})"
            " SELECT t.docs, t.term FROM v JOIN search_terms t ON t.term = v.w"
        )
        return [(int(d), w) for d, w in conn.execute(sql, variants)]
    sql = (
        f"WITH v(p) AS (VALUES {_values(len(variants))}) SELECT p FROM v WHERE EXISTS"
        " (SELECT 1 FROM search_terms WHERE term >= p AND term < p || char(1114111))"
    )
    found: list[tuple[int, str]] = []
    for (prefix,) in conn.execute(sql, variants).fetchall():
        found += conn.execute(
            "SELECT docs, term FROM search_terms WHERE term >= ? AND term < ?"
            " ORDER BY docs DESC LIMIT ?",
            (prefix, prefix + _TOP, MAX_CORRECTIONS),
        ).fetchall()
    return found


def _two_edits(conn: sqlite3.Connection, term: Term) -> list[tuple[int, str]]:
    """(docs, word) of index words two edits from a long ``term``, sharing its start."""
    start = term.text[:2]
    high = 10**6 if term.prefix else len(term.text) + 2
    rows = conn.execute(
        "SELECT docs, term FROM search_terms WHERE term >= ? AND term < ?"
        " AND length(term) BETWEEN ? AND ? LIMIT ?",
        (start, start + _TOP, len(term.text) - 2, high, SCAN_LIMIT),
    )
    near = prefix_distance if term.prefix else distance
    return [(int(d), w) for d, w in rows if near(term.text, w, 2) <= 2]


def corrections(conn: sqlite3.Connection, term: Term) -> tuple[str, ...]:
    """The most used index words nearest to ``term``; empty if none is near enough."""
    limit = max_edits(term.text)
    if limit == 0:
        return ()
    found = _one_edit(conn, term)
    if not found and limit == 2:
        found = _two_edits(conn, term)
    best = sorted(set(found), key=lambda f: (-f[0], f[1]))
    return tuple(word for _, word in best[:MAX_CORRECTIONS])


def resolve(conn: sqlite3.Connection, query: ParsedQuery) -> ParsedQuery:
    """``query`` with each term's expansion: completions of a long prefix, corrections."""
    terms = []
    for term in query.terms:
        expansion: tuple[str, ...] | None = None
        if term.prefix:
            words = completions(conn, term.text, MAX_COMPLETIONS)
            if words == []:
                expansion = corrections(conn, term) or (term.text,)
            elif words is not None and len(term.text) > PREFIX_INDEXED:
                expansion = tuple(words)
        elif not is_known(conn, term.text):
            expansion = (term.text, *corrections(conn, term))
        terms.append(replace(term, expansion=expansion))
    return query.with_terms(terms)
