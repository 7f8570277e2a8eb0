"""A training run, in a process of its own: ``python -m hub.recommend.worker --data DIR``.

It aggregates the plays, fits ALS, saves the model under ``models/``, writes every
listener's Weekly Mix, records a ``recommender_runs`` row, and prints its figures as
one JSON line on stdout (progress on stderr).  The hub's event loop only waits for the
process to end; BLAS gets one thread (``implicit`` runs its own) so the process never
takes more than its share of the machine.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from hub.catalog import sql_functions
from hub.db import Database
from hub.recommend import catalog, feedback, model, weekly
from hub.recommend.arrays import Scoring


def _bar(what: str, done: int, total: int) -> None:
    if total:
        filled = 30 * done // total
        sys.stderr.write(f"\r{what:<10} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def train_run(
    db: Database, data_dir: Path, trigger: str, opts: model.TrainOptions
) -> dict[str, Any]:
    """One run, recorded in ``recommender_runs`` whether it succeeds or not."""
    started = time.time()
    now = int(started * 1000)
    with db.transaction() as conn:
        run = conn.execute(
            "INSERT INTO recommender_runs (started_ms, trigger) VALUES (?, ?)", (now, trigger)
        ).lastrowid
    try:
        figures = _train(db, data_dir, run or 0, now, opts)
    except Exception as exc:
        with db.transaction() as conn:
            conn.execute(
                "UPDATE recommender_runs SET finished_ms = ?, error = ? WHERE id = ?",
                (int(time.time() * 1000), f"{type(exc).__name__}: {exc}", run),
            )
        raise
    figures["seconds"] = round(time.time() - started, 3)
    figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    with db.transaction() as conn:
        conn.execute(
            "UPDATE recommender_runs SET finished_ms = ?, model_path = ?, figures_json = ?"
            " WHERE id = ?",
            (int(time.time() * 1000), figures["model"], json.dumps(figures), run),
        )
    return figures


def _train(
    db: Database, data_dir: Path, run: int, now: int, opts: model.TrainOptions
) -> dict[str, Any]:
    with db.reading() as conn:
        agg = feedback.aggregate(conn)
        cat = catalog.load(conn)
        plays = conn.execute("SELECT COUNT(*) FROM plays WHERE track_id IS NOT NULL").fetchone()[0]
    trained = model.train(
        agg, cat, now, opts, on_iteration=lambda i: _bar("training", i, opts.iterations)
    )
    rel = f"models/recommender-{run}"
    model.save(trained, data_dir / rel)
    scoring = Scoring.build(cat, trained)
    users = len(trained.user_ids)
    written = 0
    batch: list[tuple[int, list[str]]] = []
    for mix in weekly.mixes(scoring, agg, now):
        batch.append(mix)
        if len(batch) >= weekly.WRITE_BATCH:
            written += _write(db, batch, now)
            _bar("mixes", written, users)
    written += _write(db, batch, now)
    _bar("mixes", written, users)
    return {
        "listeners": users,
        "tracks": int(trained.warm.sum()),
        "plays": int(plays),
        "factors": opts.factors,
        "iterations": opts.iterations,
        "weekly_mixes": written,
        "model": rel,
    }


def _write(db: Database, batch: list[tuple[int, list[str]]], now: int) -> int:
    if not batch:
        return 0
    with db.transaction() as conn:
        weekly.write(conn, batch, now)
    n = len(batch)
    batch.clear()
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hub.recommend.worker")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--trigger", default="cli")
    p.add_argument("--factors", type=int, default=64)
    p.add_argument("--iterations", type=int, default=15)
    args = p.parse_args(argv)
    db = Database(args.data / "hub.db", on_connect=(sql_functions.register,))
    opts = model.TrainOptions(factors=args.factors, iterations=args.iterations)
    figures = train_run(db, args.data, args.trigger, opts)
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
