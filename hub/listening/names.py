"""Names folded for matching a play to the catalog (pure).

The folding is search's (:func:`hub.catalog.search.query.search_text`: case,
diacritics, punctuation gone, tokens one space apart), plus guest credits dropped:
"feat." / "ft." / "featuring" and everything after it, bracketed or not, so
"Slow Burn (feat. Kito Mensah)" by "Aurora Vale ft. Kito Mensah" and "Slow Burn" by
"Aurora Vale" are one song.  Credits are cut on the folded tokens, so folding twice
gives what folding once gave.
"""

from __future__ import annotations

from hub.catalog.search.query import search_text

#: Words that start a guest credit (after folding: "feat." is "feat").
CREDIT_WORDS = frozenset({"feat", "ft", "featuring"})
#: Between the artist and the title in a match key: a character no name folds to.
KEY_SEPARATOR = "\x1f"


def fold_name(text: str) -> str:
    """``text`` as search folds it, without a guest credit (a name that starts with
    "feat" keeps it: the credit word must follow something)."""
    tokens = search_text(text).split(" ")
    for at, token in enumerate(tokens[1:], start=1):
        if token in CREDIT_WORDS:
            return " ".join(tokens[:at])
    return " ".join(tokens)


def match_key(artist: str, title: str) -> str:
    """The key a play and a catalog track share when they are the same song: the
    folded primary artist and the folded title; '' when either folds to nothing."""
    folded_artist, folded_title = fold_name(artist), fold_name(title)
    if not folded_artist or not folded_title:
        return ""
    return folded_artist + KEY_SEPARATOR + folded_title
