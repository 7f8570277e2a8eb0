"""A training run, in a process of its own: ``python -m hub.recommend.worker --data
DIR``.

It aggregates the plays, fits ALS, saves the model under ``models/``, writes every
listener's Weekly Mix, records a ``recommender_runs`` row, and prints its figures as
one JSON line on stdout (progress on stderr): ``train_seconds`` (reading the plays,
the fit, saving the model: what serving waits for) apart from ``mix_seconds``. The
hub's event loop only waits for the process to end; BLAS gets one thread (``implicit``
runs its own) so the process never takes more than its share of the machine.
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
from hub.recommend import feedback, model, weekly
from hub.recommend.arrays import Scoring

#: How much lower than the hub the training runs: on two cores it takes what the hub
#: leaves, so the control path stays quick while it trains.
NICENESS = 10


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
    stages = figures["stage_seconds"]
    figures["train_seconds"] = round(stages["read"] + stages["fit"] + stages["save"], 3)
    figures["mix_seconds"] = stages["mixes"]
    figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    with db.transaction() as conn:
        conn.execute(
            "UPDATE recommender_runs SET finished_ms = ?, model_path = ?, figures_json = ?"
            " WHERE id = ?",
            (int(time.time() * 1000), figures["model"], json.dumps(figures), run),
        )
    model.prune(data_dir / "models")
    return figures


def _train(
    db: Database, data_dir: Path, run: int, now: int, opts: model.TrainOptions
) -> dict[str, Any]:
    clock = time.perf_counter()
    stages: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal clock
        stages[name] = round(time.perf_counter() - clock, 3)
        clock = time.perf_counter()

    with db.reading() as conn:
        agg, cat = feedback.snapshot(conn)
        plays = conn.execute("SELECT COUNT(*) FROM plays WHERE track_id IS NOT NULL").fetchone()[0]
    lap("read")
    trained = model.train(
        agg, cat, now, opts, on_iteration=lambda i: _bar("training", i, opts.iterations)
    )
    lap("fit")
    rel = f"models/recommender-{run}"
    model.save(trained, data_dir / rel)
    lap("save")
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
    lap("mixes")
    return {
        "stage_seconds": stages,
        "listeners": users,
        "tracks": int(trained.warm.sum()),
        "plays": int(plays),
        "factors": trained.factors,
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
    p.add_argument("--factors", type=int, default=0)
    p.add_argument("--iterations", type=int, default=15)
    args = p.parse_args(argv)
    os.nice(NICENESS)  # the hub's requests and its speakers' commands come first
    db = Database(args.data / "hub.db", on_connect=(sql_functions.register,))
    opts = model.TrainOptions(factors=args.factors, iterations=args.iterations)
    figures = train_run(db, args.data, args.trigger, opts)
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
