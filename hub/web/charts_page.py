"""The charts page's content: the fleet's stats (hub.fleet.stats) drawn as SVG (hub.web.charts)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from hub.catalog import plays
from hub.fleet import events, registry, stats
from hub.web import charts
from hub.web.charts import Bar, Series

TOP = 10
DAYS = 30


@dataclass(frozen=True, slots=True, kw_only=True)
class ChartsView:
    per_hour: str
    per_day: str
    top_tracks: str
    trouble: str
    plays_24h: int
    plays_30d: int
    skip_rate: float | None
    skipped: int
    finished: int


def _local(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000)


def hour_bars(counts: list[int], window: stats.Window) -> list[Bar]:
    bars = []
    for i, (start, n) in enumerate(zip(window.starts(), counts, strict=True)):
        t = _local(start)
        label = t.strftime("%H:%M") if i % 6 == 0 else ""
        until = _local(start + window.width_ms)
        bars.append(Bar(label, n, f"{t:%H:00} to {until:%H:00}: {n} plays"))
    return bars


def day_bars(counts: list[int], window: stats.Window) -> list[Bar]:
    bars = []
    last = window.count - 1
    for i, (start, n) in enumerate(zip(window.starts(), counts, strict=True)):
        t = _local(start)
        label = f"{t:%b} {t.day}" if (last - i) % 7 == 0 else ""
        bars.append(Bar(label, n, f"{t:%a} {t.day} {t:%b}: {n} plays"))
    return bars


def build(conn: sqlite3.Connection, now_ms: int) -> ChartsView:
    hours = stats.hours_window(now_ms)
    days = stats.days_window(now_ms, DAYS, utc_offset_ms=stats.utc_offset_ms(now_ms))
    per_hour = stats.plays_per_bucket(conn, hours)
    per_day = stats.plays_per_bucket(conn, days)
    top = plays.most_played(conn, days.start_ms, TOP)
    counts = events.event_counts(conn, days.start_ms)
    trouble = stats.trouble_by_speaker(counts, registry.device_names(conn))
    skipped = sum(n for _, kind, n in counts if kind == "skipped")
    finished = sum(n for _, kind, n in counts if kind == "finished")
    return ChartsView(
        per_hour=charts.column_chart(
            hour_bars(per_hour, hours), label="Plays per hour, last 24 hours"
        ),
        per_day=charts.column_chart(
            day_bars(per_day, days), label=f"Plays per day, last {DAYS} days"
        ),
        top_tracks=charts.hbar_chart(
            [t.name for t in top],
            [Series("plays", [t.plays for t in top])],
            label=f"Top tracks, last {DAYS} days",
            empty="No plays yet",
        ),
        trouble=charts.hbar_chart(
            [s.name for s in trouble],
            [
                Series("underruns", [s.underruns for s in trouble]),
                Series("errors", [s.errors for s in trouble]),
                Series("skips", [s.skips for s in trouble]),
            ],
            label=f"Underruns, errors and skips per speaker, last {DAYS} days",
            empty="No underruns, errors or skips",
        ),
        plays_24h=sum(per_hour),
        plays_30d=sum(per_day),
        skip_rate=stats.skip_rate(skipped, finished),
        skipped=skipped,
        finished=finished,
    )
