"""Speakers' playback events kept in the database (``device_events``).

The relay holds only each speaker's last 50 events in memory; the dashboard's
charts (skips, underruns, errors per speaker) and a speaker's history need them
across restarts.  :class:`EventRecorder` turns each event into the statements to
write (the fleet recorder runs them on its writer thread), stamped with
the hub's clock (a speaker's clock may be wrong), and rows older than
``KEEP_MS`` are deleted every ``PRUNE_EVERY`` events so the table stays bounded.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from connect_protocol.messages import Event
from connect_protocol.uris import track_id_of
from hub.clock import now_ms

KEEP_MS = 90 * 24 * 60 * 60 * 1000
PRUNE_EVERY = 1000
MAX_MESSAGE = 500

INSERT = (
    "INSERT INTO device_events (device_id, kind, track_id, message, played_ms, ts_ms)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
PRUNE = "DELETE FROM device_events WHERE ts_ms < ?"

Writer = Callable[[str, tuple[object, ...]], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredEvent:
    device_id: str
    kind: str
    track_id: str
    message: str
    played_ms: int
    ts_ms: int
    track_name: str = ""  # the catalog's name, when ``recent`` looked it up


class EventRecorder:
    """Each event becomes one row, written by ``write`` (the fleet recorder's
    background writer), with an occasional prune in the same queue."""

    def __init__(self, write: Writer, *, clock: Callable[[], int] = now_ms) -> None:
        self.write, self.clock = write, clock
        self._since_prune = 0

    def __call__(self, device_id: str, event: Event) -> None:
        now = self.clock()
        row = (
            device_id,
            event.kind.value,
            track_id_of(event.track_uri)[:128] if event.track_uri else "",
            event.message[:MAX_MESSAGE],
            max(0, event.played_ms),
            now,
        )
        self.write(INSERT, row)
        if self._since_prune == 0:  # the first event after start, then every PRUNE_EVERY
            self.write(PRUNE, (now - KEEP_MS,))
        self._since_prune = (self._since_prune + 1) % PRUNE_EVERY


def recent(conn: sqlite3.Connection, device_id: str, limit: int = 50) -> list[StoredEvent]:
    """The device's latest events, newest first."""
    rows = conn.execute(
        "SELECT e.device_id, e.kind, e.track_id, e.message, e.played_ms, e.ts_ms,"
        " coalesce(t.name, '') AS track_name FROM device_events e"
        " LEFT JOIN tracks t ON t.id = e.track_id"
        " WHERE e.device_id = ? ORDER BY e.ts_ms DESC, e.id DESC LIMIT ?",
        (device_id, limit),
    )
    return [StoredEvent(**dict(r)) for r in rows]


def latest_by_kind(conn: sqlite3.Connection, kind: str) -> dict[str, StoredEvent]:
    """Each device's most recent event of ``kind`` (its last error, its last quality)."""
    rows = conn.execute(
        "SELECT device_id, kind, track_id, message, played_ms, ts_ms FROM device_events e"
        " WHERE kind = ? AND id = (SELECT m.id FROM device_events m WHERE m.kind = e.kind"
        " AND m.device_id = e.device_id ORDER BY m.ts_ms DESC, m.id DESC LIMIT 1)",
        (kind,),
    )
    return {r["device_id"]: StoredEvent(**dict(r)) for r in rows}


def event_counts(conn: sqlite3.Connection, since_ms: int) -> list[tuple[str, str, int]]:
    """(device id, kind, count) for every kind seen since ``since_ms``."""
    rows = conn.execute(
        "SELECT device_id, kind, COUNT(*) FROM device_events WHERE ts_ms >= ?"
        " GROUP BY device_id, kind",
        (since_ms,),
    )
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]
