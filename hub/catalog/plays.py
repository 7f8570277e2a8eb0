"""Listening history (``plays``): one row per track a listener started on a speaker,
and the rows imported from other services (:mod:`hub.listening`).

Written by the fleet recorder when a speaker reports a track started (:data:`INSERT`)
and completed when it reports the track finished or skipped (:data:`COMPLETE`); read
by ``/v1/me/player/recently-played`` and the dashboard's charts, which count only
rows matched to a catalog track (an imported row may wait for its album).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

#: (user id, started ms, context uri, device id, track id): the track's names kept with
#: it; nothing is written for an unknown track.
INSERT = (
    "INSERT INTO plays (user_id, track_id, played_ms, context_uri, device_id, source,"
    " artist_name, track_name, album_name, isrc)"
    " SELECT ?, id, ?, ?, ?, 'speaker', artist, name, album, isrc FROM tracks WHERE id = ?"
)
#: How long after it started a play can still be completed by its speaker's report.
OPEN_PLAY_MS = 24 * 3600 * 1000
#: Completes the newest open play of ``track`` on ``device`` (``since``, the earliest
#: start, bounds the search to the last day through the ``plays_time`` index) with
#: ``ms_played`` and how it ended: ``skip`` 1 or 0 (finished); a skip by someone other
#: than the play's listener (``by``, who asked for what replaced it) leaves both unknown.
COMPLETE = (
    "UPDATE plays SET ms_played = :ms_played,"
    " skipped = CASE WHEN :skip AND user_id IS NOT :by THEN NULL ELSE :skip END,"
    " finished = CASE WHEN :skip AND user_id IS NOT :by THEN NULL ELSE 1 - :skip END"
    " WHERE id = ("
    "SELECT id FROM plays WHERE played_ms >= :since AND device_id = :device"
    " AND track_id = :track AND ms_played IS NULL AND source = 'speaker'"
    " ORDER BY played_ms DESC, id DESC LIMIT 1)"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Play:
    track_id: str
    played_ms: int
    context_uri: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TopTrack:
    track_id: str
    name: str
    artist: str
    plays: int


def recent(
    conn: sqlite3.Connection,
    user_id: int,
    limit: int,
    *,
    after_ms: int | None = None,
    before_ms: int | None = None,
) -> list[Play]:
    """A listener's plays, newest first: the ``limit`` right after ``after_ms``, else the
    ``limit`` right before ``before_ms`` (now when None)."""
    if after_ms is not None:
        rows = conn.execute(
            "SELECT * FROM (SELECT track_id, played_ms, context_uri FROM plays"
            " WHERE user_id = ? AND played_ms > ? AND track_id IS NOT NULL"
            " ORDER BY played_ms LIMIT ?)"
            " ORDER BY played_ms DESC",
            (user_id, after_ms, limit),
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT track_id, played_ms, context_uri FROM plays WHERE user_id = ?"
            " AND played_ms < ? AND track_id IS NOT NULL ORDER BY played_ms DESC LIMIT ?",
            (user_id, before_ms if before_ms is not None else 2**62, limit),
        ).fetchall()
    return [Play(**dict(r)) for r in rows]


def counts_per_bucket(
    conn: sqlite3.Connection, start_ms: int, width_ms: int, end_ms: int
) -> list[tuple[int, int]]:
    """(bucket number, plays) for the buckets of ``width_ms`` from ``start_ms`` that had
    any; SQL groups, so a year of plays never crosses into Python row by row."""
    rows = conn.execute(
        "SELECT (played_ms - ?) / ? AS bucket, COUNT(*) FROM plays"
        " WHERE played_ms >= ? AND played_ms < ? AND track_id IS NOT NULL GROUP BY bucket",
        (start_ms, width_ms, start_ms, end_ms),
    )
    return [(int(r[0]), int(r[1])) for r in rows]


def most_played(conn: sqlite3.Connection, since_ms: int, limit: int = 10) -> list[TopTrack]:
    """The most played tracks since ``since_ms``, by everyone."""
    rows = conn.execute(
        "SELECT p.track_id, t.name, t.artist, COUNT(*) AS plays"
        " FROM plays p JOIN tracks t ON t.id = p.track_id"
        " WHERE p.played_ms >= ? GROUP BY p.track_id ORDER BY plays DESC, name LIMIT ?",
        (since_ms, limit),
    )
    return [TopTrack(**dict(r)) for r in rows]
