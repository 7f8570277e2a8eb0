"""One run: the catalog (cached), the index (built and timed), the queries (timed)."""

from __future__ import annotations

import random
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latency.common import Progress
from latency.stats import LatencyStats

from hub.catalog import search
from hub.context import hub_database
from hub.db import Database

from . import measure, queries
from .generate import Shape, cached_catalog, working_copy

TYPEAHEAD_P99_MS = 20.0
FULL_P99_MS = 50.0


@dataclass(frozen=True, slots=True)
class Options:
    tracks: int
    queries: int
    baseline_queries: int
    like_queries: int
    seed: int
    http: bool
    json_path: Path | None


def _sizes(conn: sqlite3.Connection) -> dict[str, int]:
    """Bytes of the whole file and of the search index's parts (``dbstat``)."""
    parts = {"fts": 0, "documents": 0, "vocabulary": 0}
    for name, size in conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
        if name == "search_terms":
            parts["vocabulary"] += size
        elif "_docs" in name:
            parts["documents"] += size
        elif name.startswith("search_"):
            parts["fts"] += size
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    return {"database": page * pages, **parts}


def _stats(samples: list[int]) -> dict[str, float]:
    s = LatencyStats.of(samples)
    return {"n": s.n, "p50": s.p50, "p90": s.p90, "p99": s.p99, "max": s.max, "mean": s.mean}


def run(opts: Options) -> dict[str, Any]:
    progress = Progress()
    shape = Shape(tracks=opts.tracks, seed=opts.seed)
    started = time.monotonic()
    cached, was_cached = cached_catalog(shape, progress.show)
    generation_s = time.monotonic() - started
    progress.finish(f"catalog: {cached.name} ({'cached' if was_cached else 'generated'})")
    out: dict[str, Any] = {
        "shape": {"tracks": shape.tracks, "artists": shape.artists, "albums": shape.albums},
        "seed": opts.seed,
        "catalog_cached": was_cached,
        "catalog_seconds": round(generation_s, 1),
    }
    with tempfile.TemporaryDirectory(prefix="legato-search-bench-") as tmp:
        db = hub_database(working_copy(cached, Path(tmp)))
        progress.finish("building the search index (hub.search.rebuild)")
        conn = db.connect()
        try:
            started = time.monotonic()
            search.rebuild(conn)
            out["index_build_seconds"] = round(time.monotonic() - started, 1)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            out["bytes"] = _sizes(conn)
            out["terms"] = conn.execute("SELECT count(*) FROM search_terms").fetchone()[0]
            rng = random.Random(opts.seed)
            typed = queries.typeahead(conn, rng, opts.queries)
            full = queries.full(conn, rng, opts.queries)
            typos = queries.typos(conn, rng, max(20, opts.queries // 10))
            words = [q for q in full if " " not in q and ":" not in q][: opts.like_queries]
        finally:
            conn.close()
        out["phases"] = _phases(db, Path(tmp), opts, typed, full, typos, words, progress)
    return out


def _phases(
    db: Database,
    data_dir: Path,
    opts: Options,
    typed: list[str],
    full: list[str],
    typos: list[str],
    words: list[str],
    progress: Progress,
) -> dict[str, Any]:
    measure.hub_search(db, "warm-up", typed[:50], 10, progress)
    phases: dict[str, Any] = {}
    samples = measure.hub_search(db, "typeahead", typed, 10, progress)
    phases["typeahead"] = {**_stats(samples), "target_p99_ms": TYPEAHEAD_P99_MS}
    k = opts.baseline_queries
    phases["typeahead_subset"] = _stats(samples[:k])
    samples = measure.hub_search(db, "full", full, 20, progress)
    phases["full"] = {**_stats(samples), "target_p99_ms": FULL_P99_MS}
    phases["full_subset"] = _stats(samples[:k])
    phases["typos"] = _stats(measure.hub_search(db, "typos", typos, 10, progress))
    if opts.http:
        http = measure.over_http(db, data_dir, "http", typed[: max(50, len(typed) // 10)], progress)
        phases["http_typeahead"] = _stats(http)
    phases["baseline_bm25_typeahead"] = _stats(
        measure.fts_bm25(db, "baseline bm25 typeahead", typed[:k], 10, progress)
    )
    phases["baseline_bm25_full"] = _stats(
        measure.fts_bm25(db, "baseline bm25 full", full[:k], 20, progress)
    )
    phases["baseline_like"] = _stats(measure.like_scan(db, "baseline LIKE", words, progress))
    phases["like_ours"] = _stats(
        measure.hub_search(db, "ours on LIKE's words", words, 20, progress)
    )
    return phases
