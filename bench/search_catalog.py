"""Catalog search benchmark (issue 4): typeahead and full search on a 1M-track catalog.

Why this exists: the issue's targets are typeahead p99 <= 20 ms and full search
p99 <= 50 ms on a generated catalog of 1,000,000 tracks, with the database size
reported.  This generates that catalog (realistic names, Zipf-like popularity;
cached under ``bench/out/cache/search/``), builds the search index with the hub's
own ``hub.search.rebuild`` (timed), then times the hub's ``hub.search.find`` for
queries sampled from the catalog, as a user types them and as whole words and field
filters, and compares with baselines measured in the same run: textbook FTS5
(``ORDER BY bm25`` with an exact count) on the same index, and a ``LIKE`` scan.
It also times ``GET /v1/search`` over loopback HTTP, item objects included.

Run: ``make bench`` (full size: about 3 minutes the first time, then ~1.5 minutes),
or e.g. ``.venv/bin/python bench/search_catalog.py --tracks 100000 --queries 500``.
A missed target is reported, not fatal.  See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from search.report import machine, report
from search.run import Options, run


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(description="Catalog search benchmark with baselines.")
    p.add_argument("--tracks", type=int, default=1_000_000, help="catalog size (1,000,000)")
    p.add_argument(
        "--queries", type=int, default=2000, help="typeahead and full queries, each (2000)"
    )
    p.add_argument(
        "--baseline-queries",
        type=int,
        default=50,
        help="queries for each FTS5 bm25 baseline (50; slow by design)",
    )
    p.add_argument("--like-queries", type=int, default=20, help="LIKE baseline words (20)")
    p.add_argument("--seed", type=int, default=1, help="catalog and query sampling seed (1)")
    p.add_argument("--no-http", action="store_true", help="skip the HTTP phase")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    a = p.parse_args(argv)
    if a.tracks < 1000 or a.queries < 10 or a.baseline_queries < 1 or a.like_queries < 1:
        p.error("--tracks >= 1000, --queries >= 10, baseline and LIKE queries >= 1")
    return Options(
        tracks=a.tracks,
        queries=a.queries,
        baseline_queries=min(a.baseline_queries, a.queries),
        like_queries=a.like_queries,
        seed=a.seed,
        http=not a.no_http,
        json_path=a.json,
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    info = machine()
    figures = report({**run(opts), "machine": info})
    if opts.json_path is not None:
        opts.json_path.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"\nwrote {opts.json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
