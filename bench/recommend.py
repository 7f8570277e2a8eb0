"""Recommender benchmark: quality and speed on a history with planted taste structure.

Why this exists: the recommender's targets (the blend >= 2x time-aware popularity in
NDCG@20 and >= ALS alone; training <= 2 min on 2 cores for 100k listeners x 200k
tracks x 10M plays while the hub keeps answering; a recommendation p99 <= 10 ms from
precomputed factors) mean nothing on a history with nothing to find.  This writes a
year of listening with planted tastes into a fresh hub data directory, then runs the
hub's own commands on it: ``legato-hub recommend evaluate --json`` (offline quality),
``python -m hub serve`` with the control path timed idle and while
``legato-hub recommend train --json`` runs as its own process, then recommendation
requests over HTTP and ``Recommender`` calls in process.

Run: ``make bench`` (full size), or e.g.
``.venv/bin/python bench/recommend.py --listeners 2000 --tracks 5000 --plays 100000``.
A missed target is reported, not fatal; a command that fails is (exit status 1).
See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from recommendations.history import TASTE_NAMES
from recommendations.report import report
from recommendations.run import Options, run


def parse_args(argv: list[str] | None = None) -> tuple[Options, Path | None]:
    p = argparse.ArgumentParser(description="Recommender benchmark on a planted history.")
    p.add_argument("--listeners", type=int, default=100_000, help="listeners (100,000)")
    p.add_argument("--tracks", type=int, default=200_000, help="catalog tracks (200,000)")
    p.add_argument("--plays", type=int, default=10_000_000, help="plays (10,000,000)")
    p.add_argument("--tastes", type=int, default=50, help="planted tastes (genres) (50)")
    p.add_argument("--seed", type=int, default=1, help="generator seed (1)")
    p.add_argument("--k", type=int, default=20, help="cut-off of NDCG@k and Recall@k (20)")
    p.add_argument(
        "--data", type=Path, help="generate into this new directory and keep it (default: temp)"
    )
    p.add_argument(
        "--generate-only", action="store_true", help="write the history (and planted.json), stop"
    )
    p.add_argument("--control-requests", type=int, default=600, help="idle control requests")
    p.add_argument(
        "--control-interval-ms", type=float, default=50.0, help="pace of control requests (50)"
    )
    p.add_argument(
        "--recommendation-requests", type=int, default=1000, help="timed recommendations (1000)"
    )
    p.add_argument("--train-timeout", type=float, default=900.0, help="seconds (900)")
    p.add_argument("--evaluate-timeout", type=float, default=1800.0, help="seconds (1800)")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    a = p.parse_args(argv)
    if a.listeners < 10 or a.tracks < 100 or a.plays < 5 * a.listeners:
        p.error("--listeners >= 10, --tracks >= 100, --plays >= 5 x listeners")
    if not 3 <= a.tastes <= len(TASTE_NAMES) or a.tracks < 10 * a.tastes:
        p.error(f"--tastes from 3 to {len(TASTE_NAMES)}, with >= 10 tracks each")
    if a.data is not None and (a.data / "hub.db").exists():
        p.error(f"{a.data} already holds a hub.db: give a new directory")
    opts = Options(
        listeners=a.listeners,
        tracks=a.tracks,
        plays=a.plays,
        tastes=a.tastes,
        seed=a.seed,
        k=a.k,
        data=a.data,
        generate_only=a.generate_only,
        control_requests=max(10, a.control_requests),
        control_interval_ms=max(0.0, a.control_interval_ms),
        recommendation_requests=max(10, a.recommendation_requests),
        train_timeout_s=a.train_timeout,
        evaluate_timeout_s=a.evaluate_timeout,
    )
    return opts, a.json


def _failed(figures: dict[str, object]) -> list[str]:
    out = []
    for part in ("evaluate", "train"):
        doc = figures.get(part)
        if isinstance(doc, dict) and not doc.get("ok"):
            out.append(f"{part}: {doc.get('error')}")
    return out


def main(argv: list[str] | None = None) -> int:
    opts, json_path = parse_args(argv)
    figures = report(run(opts))
    if json_path is not None:
        json_path.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"\nwrote {json_path}")
    failures = _failed(figures)
    for line in failures:
        print(f"bench/recommend.py: {line}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
