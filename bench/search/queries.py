"""Queries sampled from the catalog, shaped the way listeners search.

- typeahead: a name (track 60 %, artist 20 %, album 20 %) typed one character at a
  time, each prefix a query, up to 15 characters;
- full: one whole word of a name, two neighbouring words, or a field filter
  (``artist:"..."``, ``track:w artist:w``, ``w year:Y``, ``album:w year:Y1-Y2``);
- typos: a word of 5 or more letters from a name with one random edit.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator

from hub.catalog.search.query import tokens

MAX_TYPED = 15


def _random_row(conn: sqlite3.Connection, rng: random.Random, sql: str, table: str) -> sqlite3.Row:
    top = int(conn.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0])
    while True:
        row: sqlite3.Row | None = conn.execute(sql, (rng.randint(1, top),)).fetchone()
        if row is not None:
            return row


def _track(conn: sqlite3.Connection, rng: random.Random) -> sqlite3.Row:
    return _random_row(
        conn,
        rng,
        "SELECT t.name AS name, a.name AS artist, al.name AS album, al.release_year AS year"
        " FROM tracks t JOIN track_artists ta ON ta.track_id = t.id AND ta.position = 0"
        " JOIN artists a ON a.id = ta.artist_id JOIN albums al ON al.id = t.album_id"
        " WHERE t.rowid = ?",
        "tracks",
    )


def _name(conn: sqlite3.Connection, rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.6:
        return str(_track(conn, rng)["name"])
    table = "artists" if pick < 0.8 else "albums"
    return str(_random_row(conn, rng, f"SELECT name FROM {table} WHERE rowid = ?", table)[0])


def typeahead(conn: sqlite3.Connection, rng: random.Random, count: int) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        name = _name(conn, rng)
        out += [name[:n] for n in range(1, min(len(name), MAX_TYPED) + 1)]
    return out[:count]


def _words(text: str) -> list[str]:
    return [w for w in text.split() if tokens(w)]


def _full(conn: sqlite3.Connection, rng: random.Random) -> Iterator[str]:
    while True:
        track = _track(conn, rng)
        name, artist, album, year = (track[k] for k in ("name", "artist", "album", "year"))
        words, artist_words, album_words = _words(name), _words(artist), _words(album)
        if not (words and artist_words and album_words):
            continue
        yield rng.choice(words)
        start = rng.randrange(len(words))
        yield (
            " ".join(words[start : start + 2])
            if len(words) > 1
            else f"{words[0]} {artist_words[0]}"
        )
        shape = rng.randrange(4)
        if shape == 0:
            yield f'artist:"{artist}"'
        elif shape == 1:
            yield f"track:{rng.choice(words)} artist:{rng.choice(artist_words)}"
        elif shape == 2:
            yield f"{rng.choice(words)} year:{year}"
        else:
            yield f"album:{rng.choice(album_words)} year:{year - 5}-{year + 5}"


def full(conn: sqlite3.Connection, rng: random.Random, count: int) -> list[str]:
    stream = _full(conn, rng)
    return [next(stream) for _ in range(count)]


def _edit(word: str, rng: random.Random) -> str:
    at = rng.randrange(1, len(word))
    letter = rng.choice("aeioulnrst")
    match rng.randrange(4):
        case 0:
            return word[:at] + word[at + 1 :]
        case 1:
            return word[:at] + letter + word[at:]
        case 2:
            return word[:at] + letter + word[at + 1 :]
        case _:
            return word[: at - 1] + word[at] + word[at - 1] + word[at + 1 :]


def typos(conn: sqlite3.Connection, rng: random.Random, count: int) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        long_words = [w for w in tokens(_name(conn, rng)) if len(w) >= 5]
        if long_words:
            out.append(_edit(rng.choice(long_words), rng) + rng.choice(("", " ")))
    return out
