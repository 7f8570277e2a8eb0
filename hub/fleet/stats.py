"""What the dashboard's charts count: plays over time, skips, trouble per speaker.

The stores group in SQL (:mod:`hub.catalog.plays`, :mod:`hub.fleet.events`); the
shaping around them is pure and takes ``now_ms`` and the window as values,
so it is tested with synthetic timestamps and no clock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from hub.catalog import plays

HOUR_MS = 60 * 60 * 1000
DAY_MS = 24 * HOUR_MS
TROUBLE_KINDS = ("underrun", "error", "skipped")


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """``count`` buckets of ``width_ms`` starting at ``start_ms`` (the last one holds now)."""

    start_ms: int
    width_ms: int
    count: int

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.width_ms * self.count

    def starts(self) -> list[int]:
        return [self.start_ms + i * self.width_ms for i in range(self.count)]


def hours_window(now_ms: int, hours: int = 24) -> Window:
    """The last ``hours`` whole hours, the current (partial) hour last."""
    current = now_ms - now_ms % HOUR_MS
    return Window(start_ms=current - (hours - 1) * HOUR_MS, width_ms=HOUR_MS, count=hours)


def days_window(now_ms: int, days: int = 30, *, utc_offset_ms: int = 0) -> Window:
    """The last ``days`` days, cut at the hub's local midnight, today last."""
    local = now_ms + utc_offset_ms
    midnight = local - local % DAY_MS - utc_offset_ms
    return Window(start_ms=midnight - (days - 1) * DAY_MS, width_ms=DAY_MS, count=days)


def histogram(timestamps: Iterable[int], window: Window) -> list[int]:
    """Counts per bucket; timestamps outside the window are left out."""
    counts = [0] * window.count
    for ts in timestamps:
        if window.start_ms <= ts < window.end_ms:
            counts[(ts - window.start_ms) // window.width_ms] += 1
    return counts


def fill(pairs: Iterable[tuple[int, int]], count: int) -> list[int]:
    """(bucket index, count) pairs from SQL -> one count per bucket, zeros between."""
    counts = [0] * count
    for index, n in pairs:
        if 0 <= index < count:
            counts[index] += n
    return counts


def skip_rate(skipped: int, finished: int) -> float | None:
    """Share of tracks that ended by a skip rather than playing out; None with neither."""
    ended = skipped + finished
    return None if ended <= 0 else skipped / ended


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeakerTrouble:
    device_id: str
    name: str
    underruns: int = 0
    errors: int = 0
    skips: int = 0


def trouble_by_speaker(
    rows: Iterable[tuple[str, str, int]], names: dict[str, str]
) -> list[SpeakerTrouble]:
    """(device id, kind, count) rows -> one entry per speaker, most trouble first."""
    found: dict[str, dict[str, int]] = {}
    for device_id, kind, n in rows:
        if kind in TROUBLE_KINDS:
            found.setdefault(device_id, {})[kind] = found.get(device_id, {}).get(kind, 0) + n
    out = [
        SpeakerTrouble(
            device_id=d,
            name=names.get(d, d),
            underruns=k.get("underrun", 0),
            errors=k.get("error", 0),
            skips=k.get("skipped", 0),
        )
        for d, k in found.items()
    ]
    return sorted(out, key=lambda s: (-(s.underruns + s.errors), s.name))


# --- from the store ------------------------------------------------------------------


def plays_per_bucket(conn: sqlite3.Connection, window: Window) -> list[int]:
    """Plays in each of the window's buckets (zero where there were none)."""
    counts = plays.counts_per_bucket(conn, window.start_ms, window.width_ms, window.end_ms)
    return fill(counts, window.count)


def utc_offset_ms(now_ms: int) -> int:
    """The hub's local time zone's offset at ``now_ms`` (for days cut at local midnight)."""
    offset = datetime.fromtimestamp(now_ms / 1000).astimezone().utcoffset()
    return 0 if offset is None else int(offset.total_seconds() * 1000)
