"""The report: what was measured, the table with targets, and the JSON figures."""

from __future__ import annotations

import math
import os
import platform
import sqlite3
from typing import Any

ROWS = (
    # key, label, target key
    ("typeahead", "typeahead, limit 10", "target_p99_ms"),
    ("full", "full search, limit 20", "target_p99_ms"),
    ("typos", "one-typo words, limit 10", None),
    ("http_typeahead", "GET /v1/search typeahead (HTTP, objects)", None),
    ("baseline_bm25_typeahead", "baseline: FTS5 bm25 + count, typeahead", None),
    ("typeahead_subset", "  ours, same typeahead queries", None),
    ("baseline_bm25_full", "baseline: FTS5 bm25 + count, full", None),
    ("full_subset", "  ours, same full queries", None),
    ("baseline_like", "baseline: LIKE '%word%' on tracks.name", None),
    ("like_ours", "  ours, same words (3 types)", None),
)


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load_1min_at_start": round(os.getloadavg()[0], 2),
    }


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def _ratio(ours: dict[str, float], baseline: dict[str, float]) -> str:
    if not ours.get("n") or not baseline.get("n") or ours["p99"] <= 0:
        return "-"
    return f"{baseline['p99'] / ours['p99']:.0f}x"


def report(figures: dict[str, Any]) -> dict[str, Any]:
    """Print the table; returns the figures with PASS/MISS added."""
    shape, size = figures["shape"], figures["bytes"]
    print()
    print(
        f"Catalog search at {shape['tracks']:,} tracks, {shape['artists']:,} artists,"
        f" {shape['albums']:,} albums (seed {figures['seed']});"
        f" {figures['machine']['cpus']} CPUs, SQLite {figures['machine']['sqlite']},"
        f" Python {figures['machine']['python']}"
    )
    made = "cached" if figures["catalog_cached"] else "generated"
    print(f"  catalog: {made} in {figures['catalog_seconds']} s")
    print(f"  index build (hub.search.rebuild): {figures['index_build_seconds']} s")
    index = size["fts"] + size["documents"] + size["vocabulary"]
    print(
        f"  database: {_mb(size['database'])}; search index {_mb(index)} (FTS5 {_mb(size['fts'])},"
        f" documents {_mb(size['documents'])}, vocabulary {_mb(size['vocabulary'])},"
        f" {figures['terms']:,} terms)"
    )
    print()
    header = (
        f"  {'milliseconds per query':<44} {'n':>5} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>8}"
    )
    print(header + "  target         result")
    phases = figures["phases"]
    for key, label, target_key in ROWS:
        if key not in phases:
            continue
        s = phases[key]
        line = (
            f"  {label:<44} {s['n']:>5} {_ms(s['p50']):>7} {_ms(s['p90']):>7}"
            f" {_ms(s['p99']):>7} {_ms(s['max']):>8}"
        )
        if target_key:
            target = s[target_key]
            s["result"] = "PASS" if s["p99"] <= target else "MISS"
            line += f"  p99 <= {target:.0f} ms   {s['result']}"
        elif key.startswith("baseline"):
            ours = phases[
                {
                    "baseline_bm25_typeahead": "typeahead_subset",
                    "baseline_bm25_full": "full_subset",
                }.get(key, "like_ours")
            ]
            line += f"  p99 {_ratio(ours, s)} ours"
        print(line)
    print()
    print(
        "  Each query opens its own connection, as a request does, and searches tracks,"
        " artists\n  and albums (the LIKE baseline: tracks only). Baselines run on the first"
        " queries of\n  the same samples; their ratio is baseline p99 / ours on those queries."
    )
    return figures
