"""Which catalog track a play names: ISRC first, else the folded primary artist and
title (:func:`hub.listening.names.match_key`), the album breaking ties.

:class:`CatalogIndex` is built once per import or re-match from the catalog (its one
query is :func:`load_index`); :func:`choose` is the pure decision.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from hub.listening.names import fold_name, match_key


@dataclass(frozen=True, slots=True)
class Candidate:
    track_id: str
    album: str  # folded


@dataclass(slots=True)
class CatalogIndex:
    by_isrc: dict[str, str] = field(default_factory=dict)
    #: match key → tracks with it, most popular first
    by_key: dict[str, list[Candidate]] = field(default_factory=dict)

    def add(self, track_id: str, keys: set[str], album: str, isrc: str | None) -> None:
        if isrc:
            self.by_isrc.setdefault(isrc.upper(), track_id)
        for key in keys:
            if key:
                self.by_key.setdefault(key, []).append(Candidate(track_id, fold_name(album)))


def choose(index: CatalogIndex, *, isrc: str | None, key: str, album: str) -> str | None:
    """The track a play names, or None: the ISRC's track, else the one with the play's
    key, preferring the play's album (the most popular otherwise)."""
    if isrc and (found := index.by_isrc.get(isrc.upper())) is not None:
        return found
    candidates = index.by_key.get(key) if key else None
    if not candidates:
        return None
    folded_album = fold_name(album)
    for candidate in candidates:
        if folded_album and candidate.album == folded_album:
            return candidate.track_id
    return candidates[0].track_id


def load_index(conn: sqlite3.Connection) -> CatalogIndex:
    """Every catalog track under its keys: its primary credited artist's and its display
    artist's (a credit such as "Simon & Garfunkel" is split in the credits)."""
    index = CatalogIndex()
    rows = conn.execute(
        "SELECT t.id, t.name, t.artist, t.album, t.isrc, a.name AS primary_artist"
        " FROM tracks t LEFT JOIN track_artists c ON c.track_id = t.id AND c.position = 0"
        " LEFT JOIN artists a ON a.id = c.artist_id ORDER BY t.popularity DESC, t.id"
    )
    for r in rows:
        keys = {match_key(r["artist"], r["name"])}
        if r["primary_artist"]:
            keys.add(match_key(r["primary_artist"], r["name"]))
        index.add(r["id"], keys, r["album"], r["isrc"])
    return index
