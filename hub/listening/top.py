"""A listener's top tracks and artists over a time range, as Spotify's ``/me/top``.

:func:`rank` is the pure rule: every play that counts (not an early skip) adds a
weight a little higher the more recent it is; the highest totals first, ties broken
by name.  :func:`top_tracks` and :func:`top_artists` read the plays for it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

TimeRange = Literal["short_term", "medium_term", "long_term"]
DAY_MS = 86_400_000
#: How far back each range looks (None: all the history kept).
RANGE_DAYS: dict[str, int | None] = {"short_term": 28, "medium_term": 182, "long_term": None}
#: A skip before this much was played says "not this": it does not count.
EARLY_SKIP_MS = 30_000
#: A play today weighs 1 + RECENCY_BONUS; the bonus halves every RECENCY_HALF_LIFE_MS.
RECENCY_BONUS = 0.5
RECENCY_HALF_LIFE_MS = 30 * DAY_MS


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayFact:
    """One play of an item (a track, or one of its artists)."""

    item_id: str
    name: str
    played_ms: int
    ms_played: int | None
    skipped: bool | None


def counts(play: PlayFact) -> bool:
    """Whether a play says the listener likes it: anything but a skip under 30 s."""
    early = play.ms_played is not None and play.ms_played < EARLY_SKIP_MS
    return not (play.skipped and early)


def weight(play: PlayFact, now_ms: int) -> float:
    age_ms = max(0, now_ms - play.played_ms)
    decay: float = 0.5 ** (age_ms / RECENCY_HALF_LIFE_MS)
    return 1.0 + RECENCY_BONUS * decay


def rank(plays: Iterable[PlayFact], now_ms: int) -> list[str]:
    """Item ids, the most listened first (ties: by name, then id)."""
    totals: dict[str, float] = {}
    names: dict[str, str] = {}
    for play in plays:
        if counts(play):
            totals[play.item_id] = totals.get(play.item_id, 0.0) + weight(play, now_ms)
            names[play.item_id] = play.name
    return sorted(totals, key=lambda i: (-round(totals[i], 9), names[i].casefold(), i))


def since_ms(time_range: str, now_ms: int) -> int:
    days = RANGE_DAYS[time_range]
    return 0 if days is None else now_ms - days * DAY_MS


def _facts(rows: Iterable[sqlite3.Row]) -> list[PlayFact]:
    return [
        PlayFact(
            item_id=r["item_id"],
            name=r["name"],
            played_ms=r["played_ms"],
            ms_played=r["ms_played"],
            skipped=None if r["skipped"] is None else bool(r["skipped"]),
        )
        for r in rows
    ]


def top_tracks(conn: sqlite3.Connection, user_id: int, time_range: str, now_ms: int) -> list[str]:
    """The listener's track ids over ``time_range``, ranked (matched plays only)."""
    rows = conn.execute(
        "SELECT p.track_id AS item_id, t.name, p.played_ms, p.ms_played, p.skipped"
        " FROM plays p JOIN tracks t ON t.id = p.track_id"
        " WHERE p.user_id = ? AND p.played_ms >= ? AND p.played_ms <= ?",
        (user_id, since_ms(time_range, now_ms), now_ms),
    )
    return rank(_facts(rows), now_ms)


def top_artists(conn: sqlite3.Connection, user_id: int, time_range: str, now_ms: int) -> list[str]:
    """The listener's artist ids over ``time_range``, ranked: each play counts for every
    artist credited on its track."""
    rows = conn.execute(
        "SELECT a.id AS item_id, a.name, p.played_ms, p.ms_played, p.skipped"
        " FROM plays p JOIN track_artists c ON c.track_id = p.track_id"
        " JOIN artists a ON a.id = c.artist_id"
        " WHERE p.user_id = ? AND p.played_ms >= ? AND p.played_ms <= ?",
        (user_id, since_ms(time_range, now_ms), now_ms),
    )
    return rank(_facts(rows), now_ms)
