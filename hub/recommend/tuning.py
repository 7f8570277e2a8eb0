"""``/v1/recommendations``' tunable attributes: ``min_X``/``max_X`` keep only tracks
within bounds, ``target_X`` pulls the ranking toward a value.  Parsed as values, then
one query over the catalog (never one per candidate)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field

from hub.errors import CatalogError

#: attribute -> (SQL column, the range a target's distance is measured over)
TUNABLE: dict[str, tuple[str, float]] = {
    "acousticness": ("f.acousticness", 1.0),
    "danceability": ("f.danceability", 1.0),
    "energy": ("f.energy", 1.0),
    "instrumentalness": ("f.instrumentalness", 1.0),
    "key": ("f.key", 11.0),
    "liveness": ("f.liveness", 1.0),
    "loudness": ("f.loudness", 60.0),
    "mode": ("f.mode", 1.0),
    "popularity": ("t.popularity", 100.0),
    "speechiness": ("f.speechiness", 1.0),
    "tempo": ("f.tempo", 150.0),
    "valence": ("f.valence", 1.0),
    "time_signature": ("f.time_signature", 4.0),
    "duration_ms": ("t.duration_ms", 600_000.0),
}
PULL = 1.5  # a target's weight against the blend's standardised scores


@dataclass(frozen=True, slots=True)
class Tuning:
    low: dict[str, float] = field(default_factory=dict)
    high: dict[str, float] = field(default_factory=dict)
    target: dict[str, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.low or self.high or self.target)


def parse(params: Mapping[str, str]) -> Tuning:
    """The ``min_``/``max_``/``target_`` parameters among ``params``; others ignored."""
    found: dict[str, dict[str, float]] = {"min": {}, "max": {}, "target": {}}
    for key, text in params.items():
        prefix, _, name = key.partition("_")
        if prefix in found and name:
            if name not in TUNABLE:
                raise CatalogError(f"Unknown tunable attribute {key!r}")
            try:
                found[prefix][name] = float(text)
            except ValueError:
                raise CatalogError(f"{key} must be a number") from None
    return Tuning(found["min"], found["max"], found["target"])


def apply(conn: sqlite3.Connection, tuning: Tuning) -> tuple[set[str] | None, dict[str, float]]:
    """Track ids within the bounds (None: no bounds), and each track's target pull."""
    names = sorted({*tuning.low, *tuning.high, *tuning.target})
    if not names:
        return None, {}
    where = [f"{TUNABLE[n][0]} >= ?" for n in tuning.low] + [
        f"{TUNABLE[n][0]} <= ?" for n in tuning.high
    ]
    cols = ", ".join(TUNABLE[n][0] for n in names)
    rows = conn.execute(
        f"SELECT t.id, {cols} FROM tracks t JOIN audio_features f ON f.track_id = t.id"
        + (f" WHERE {' AND '.join(where)}" if where else ""),
        (*tuning.low.values(), *tuning.high.values()),
    ).fetchall()
    pull: dict[str, float] = {}
    if tuning.target:
        at = {n: i + 1 for i, n in enumerate(names)}
        for r in rows:
            pull[r[0]] = -PULL * sum(
                abs(r[at[n]] - v) / TUNABLE[n][1] for n, v in tuning.target.items()
            )
    allowed = {r[0] for r in rows} if tuning.low or tuning.high else None
    return allowed, pull
