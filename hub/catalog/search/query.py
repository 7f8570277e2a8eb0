"""Parsing a search box's text into terms, field filters and a year range (pure).

The grammar is the Spotify Web API's: words, ``"quoted words"``, and the filters
``artist:``, ``album:``, ``track:`` (a word or a quoted value) and ``year:1999`` or
``year:1990-1999``.  Anything else, including FTS5 operators, SQL and stray quotes, is
text: it is cut into tokens the way SQLite's ``unicode61`` tokenizer cuts it (runs of
letters, digits and marks), folded for case and diacritics, and each token is later
quoted by :func:`match_expression`, so user text never reaches FTS5 as syntax.

The last word typed is a prefix (typeahead: "beat" finds "Beatles") unless the text
ends in a space or the word was quoted.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

#: At most this many terms are kept: more cannot narrow a catalog further, and a
#: pasted 10 kB text must not become a 10 kB FTS5 expression.
MAX_TERMS = 16
MAX_QUERY_CHARS = 1000
YEAR_MIN, YEAR_MAX = 0, 9999
#: Starts every year token: a private-use character, which unicode61 keeps in a token
#: but nobody types, so "y" or "d" typed as a prefix never walks every year token.
YEAR_MARK = "\ue000"
#: What ``unicode61`` keeps in a token: letters, digits, private use; and with
#: ``remove_diacritics`` the combining diacritics it then drops (other marks separate).
_TOKEN_CATEGORIES = ("L", "N", "Co")
_DIACRITICS = range(0x300, 0x370)
_DIACRITIC = re.compile("[\u0300-\u036f]")
_ASCII_TOKEN = re.compile("[a-z0-9]+")
_TOKEN = re.compile(
    r"(?:[^\W_]|[\u0300-\u036f\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd])+"
)
#: Spotify's other filters: not indexed here, so their values are read as plain words.
UNSUPPORTED_FIELDS = frozenset({"genre", "isrc", "upc", "tag"})
_FIELDS = frozenset({"artist", "album", "track", "year"}) | UNSUPPORTED_FIELDS
_FIELD = re.compile(r"([A-Za-z]+):")
_YEAR = re.compile(r"(\d{1,4})(?:-(\d{1,4}))?")


class Field(StrEnum):
    TRACK = "track"
    ARTIST = "artist"
    ALBUM = "album"


@dataclass(frozen=True, slots=True, kw_only=True)
class Term:
    """One folded token as typed.

    ``expansion``, when set (see :mod:`hub.catalog.search.vocabulary`), is the exact index
    words the term stands for instead: the completions of a prefix, or a word and its
    typo corrections.
    """

    text: str
    prefix: bool = False
    field: Field | None = None
    expansion: tuple[str, ...] | None = None

    def matches(self, token: str) -> bool:
        """Whether an indexed token satisfies this term (ranking's view of FTS5's)."""
        if self.expansion is not None:
            return token in self.expansion
        return token == self.text or (self.prefix and token.startswith(self.text))


@dataclass(frozen=True, slots=True, kw_only=True)
class YearRange:
    first: int
    last: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedQuery:
    terms: tuple[Term, ...] = ()
    years: YearRange | None = None

    @property
    def empty(self) -> bool:
        return not self.terms and self.years is None

    def with_terms(self, terms: Sequence[Term]) -> ParsedQuery:
        return replace(self, terms=tuple(terms))


def is_token_char(char: str) -> bool:
    return ord(char) in _DIACRITICS or unicodedata.category(char).startswith(_TOKEN_CATEGORIES)


def fold(text: str) -> str:
    """Lower case without diacritics, as ``unicode61 remove_diacritics 2`` folds a token."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFD", text.lower())
    return unicodedata.normalize("NFC", _DIACRITIC.sub("", decomposed))


def tokens(text: str) -> list[str]:
    """The folded tokens of ``text`` (separators dropped), in order.

    Token characters are :func:`is_token_char`'s; the regular expression says the
    same (a word character but "_": a letter or a number) and runs in C, which
    matters when a rebuild tokenizes every name in the catalog.
    """
    if text.isascii():
        return _ASCII_TOKEN.findall(text.lower())
    return [t for t in map(fold, _TOKEN.findall(text)) if t]


def search_text(value: object) -> str:
    """A name as the index stores it: its folded tokens, one space apart.

    Documents hold this rather than the display name (which the catalog keeps), so
    the index's words are exactly the parser's, and ranking splits them for free.
    """
    return " ".join(tokens(str(value))) if value is not None else ""


def _years(value: str) -> YearRange | None:
    match = _YEAR.fullmatch(value)
    if match is None:
        return None
    first = int(match[1])
    last = int(match[2]) if match[2] else first
    return YearRange(first=min(first, last), last=max(first, last))


def _items(q: str) -> list[tuple[str | None, str, bool]]:
    """(field name or None, value, quoted) for each whitespace-separated item of ``q``."""
    items: list[tuple[str | None, str, bool]] = []
    pos, n = 0, len(q)
    while pos < n:
        if q[pos].isspace():
            pos += 1
            continue
        field: str | None = None
        match = _FIELD.match(q, pos)
        if match and match[1].lower() in _FIELDS:
            field = match[1].lower()
            pos = match.end()
        if pos < n and q[pos] == '"':
            end = q.find('"', pos + 1)
            end = n if end < 0 else end
            items.append((field, q[pos + 1 : end], True))
            pos = end + 1
        else:
            end = pos
            while end < n and not q[end].isspace():
                end += 1
            items.append((field, q[pos:end], False))
            pos = end
    return items


def parse(q: str) -> ParsedQuery:
    """The terms and filters of a search box's text; never raises."""
    terms: list[Term] = []
    years: YearRange | None = None
    q = q[:MAX_QUERY_CHARS]
    items = _items(q)
    typing = bool(q) and not q[-1].isspace()
    for index, (name, value, quoted) in enumerate(items):
        if name == "year":
            years = _years(value.strip()) or years  # an unreadable year filters nothing
            continue
        words = tokens(value)
        last_item = index == len(items) - 1 and typing and not quoted
        for position, word in enumerate(words):
            terms.append(
                Term(
                    text=word,
                    prefix=last_item and position == len(words) - 1,
                    field=None if name is None or name in UNSUPPORTED_FIELDS else Field(name),
                )
            )
    if len(terms) > MAX_TERMS:
        terms = [replace(t, prefix=False) for t in terms[:MAX_TERMS]]
    return ParsedQuery(terms=tuple(terms), years=years)


def year_tokens(year: int) -> str:
    """The tokens a year is indexed under: year, decade, century, millennium."""
    m = YEAR_MARK
    return f"{m}y{year} {m}d{year // 10} {m}c{year // 100} {m}k{year // 1000}"


def year_range_tokens(years: YearRange) -> list[str]:
    """The fewest indexed tokens that cover ``years`` (at most ~60 for any range)."""
    first, last = max(years.first, YEAR_MIN), min(years.last, YEAR_MAX)
    out: list[str] = []
    while first <= last:
        for size, mark in ((1000, "k"), (100, "c"), (10, "d"), (1, "y")):
            if first % size == 0 and first + size - 1 <= last:
                out.append(f"{YEAR_MARK}{mark}{first // size}")
                first += size
                break
    return out


def quote(token: str) -> str:
    """An FTS5 string: the only way user text enters an expression (a NUL would end
    SQLite's copy of the expression early, so none gets in)."""
    return '"' + token.replace("\x00", "").replace('"', '""') + '"'


def _phrase(term: Term) -> str:
    if term.expansion is not None:
        words = [quote(w) for w in term.expansion] or [quote(term.text)]
        return words[0] if len(words) == 1 else "(" + " OR ".join(words) + ")"
    return quote(term.text) + (" *" if term.prefix else "")


def match_expression(
    query: ParsedQuery,
    text_columns: Sequence[str],
    field_columns: Mapping[Field, str],
    year_column: str | None,
) -> str | None:
    """The FTS5 MATCH expression for one kind of item; None when nothing can match.

    Unfielded terms match any of ``text_columns``; a filter matches its own column,
    and a filter this kind has no column for (``track:`` on artists) matches nothing.
    """
    groups: dict[str, list[str]] = {}
    for term in query.terms:
        if term.field is None:
            columns = " ".join(text_columns)
        elif term.field in field_columns:
            columns = field_columns[term.field]
        else:
            return None
        groups.setdefault(columns, []).append(_phrase(term))
    parts = [f"{{{cols}}} : ({' AND '.join(phrases)})" for cols, phrases in groups.items()]
    if query.years is not None:
        covering = year_range_tokens(query.years)
        if year_column is None or not covering:
            return None
        parts.append(f"{{{year_column}}} : ({' OR '.join(quote(t) for t in covering)})")
    return " AND ".join(parts) or None
