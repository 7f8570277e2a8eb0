"""One run: generate the history, evaluate the models, train under load, time serving."""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hub.recommend.jobs import CHECK_S

from . import hubproc, load, measure
from .history import DAY_MS, History, Shape, generate

OUT = Path(__file__).resolve().parent.parent / "out"
COLD_DAYS = 28


@dataclass(frozen=True, slots=True)
class Options:
    listeners: int
    tracks: int
    plays: int
    tastes: int
    seed: int
    k: int
    data: Path | None  # keep the generated hub data here (else a temporary directory)
    generate_only: bool
    control_requests: int
    control_interval_ms: float
    recommendation_requests: int
    train_timeout_s: float
    evaluate_timeout_s: float


def progress(text: str) -> None:
    """One line on stderr, rewritten in place on a terminal."""
    if sys.stderr.isatty():
        print(f"\r{text:<100}", end="", file=sys.stderr, flush=True)
    else:
        print(text, file=sys.stderr, flush=True)


def _history_figures(history: History) -> dict[str, Any]:
    """What was planted, so the report says what the models had to find."""
    shape, plays, cat = history.shape, history.plays, history.catalog
    release = cat.track_release_ms
    cold_from = shape.end_ms - COLD_DAYS * DAY_MS
    cold = release >= cold_from
    late = plays.started_ms >= cold_from
    noise = plays.noise
    return {
        "listeners": shape.listeners,
        "tracks": shape.tracks,
        "plays": int(plays.user.size),
        "tastes": shape.tastes,
        "artists": shape.artists,
        "albums": shape.albums,
        "noise_share": round(float(noise.mean()), 3),
        "skip_rate_noise": round(float(plays.skipped[noise].mean()), 3),
        "skip_rate_in_taste": round(float(plays.skipped[~noise].mean()), 3),
        "cold_tracks": int(cold.sum()),
        "cold_tracks_share_of_last_weeks_plays": round(
            float(cold[plays.track[late]].mean()) if late.any() else 0.0, 3
        ),
    }


def _generate(opts: Options, data: Path) -> dict[str, Any]:
    shape = Shape(
        listeners=opts.listeners,
        tracks=opts.tracks,
        plays=opts.plays,
        tastes=opts.tastes,
        seed=opts.seed,
        end_ms=int(time.time() * 1000) - 60_000,
    )
    started = time.monotonic()
    history = generate(shape)
    generated_s = time.monotonic() - started
    progress(f"generated {shape.plays:,} plays in {generated_s:.1f} s; loading into {data}")
    loaded = load.write(history, data, progress)
    return {
        **_history_figures(history),
        "generate_seconds": round(generated_s, 1),
        "load_seconds": loaded["load_seconds"],
        "seconds": round(time.monotonic() - started, 1),
    }


def _command(cmd: hubproc.Command) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ok": cmd.returncode == 0 and cmd.answer is not None,
        "seconds": cmd.seconds,
        "peak_tree_rss_mib": cmd.peak_tree_rss_mib,
        "timed_out": cmd.timed_out,
        "answer": cmd.answer,
    }
    if cmd.timed_out:
        out["error"] = f"still running after {cmd.seconds:.0f} s: stopped"
    elif not out["ok"]:
        out["error"] = f"exit {cmd.returncode}: {cmd.stderr_tail.strip()[-600:]}"
    return out


def _seeds(data: Path, account: str, listeners: int, rng: np.random.Generator) -> dict[str, Any]:
    """Seed tracks: the real account's played tracks; (listener, favourite) pairs."""
    conn = sqlite3.connect(data / "hub.db")
    try:
        uid = conn.execute("SELECT id FROM users WHERE name = ?", (account,)).fetchone()[0]
        mine = [
            r[0]
            for r in conn.execute(
                "SELECT track_id FROM plays WHERE user_id = ? AND track_id IS NOT NULL"
                " GROUP BY track_id ORDER BY count(*) DESC LIMIT 200",
                (uid,),
            )
        ]
        pairs: list[tuple[int, str]] = []
        for other in rng.choice(listeners, size=min(listeners, 200), replace=False).tolist():
            row = conn.execute(
                "SELECT track_id FROM plays WHERE user_id = ? AND track_id IS NOT NULL"
                " ORDER BY played_ms DESC LIMIT 1",
                (uid + other,),
            ).fetchone()
            if row is not None:
                pairs.append((uid + other, row[0]))
    finally:
        conn.close()
    return {"account_seeds": mine, "pairs": pairs}


def _serve_phases(opts: Options, data: Path, seeds: dict[str, Any]) -> dict[str, Any]:
    """The hub running: control path idle, then while ``recommend train`` runs; then
    recommendation requests from the model just trained."""
    hub = hubproc.start_hub(data, data / "bench-hub.log")
    out: dict[str, Any] = {}
    try:
        token = hubproc.token(hub, load.ACCOUNT, load.ACCOUNT_PASSWORD)
        interval = opts.control_interval_ms / 1000
        progress(f"control path, idle: {opts.control_requests} requests")
        idle = measure.control_path(
            hub.base, token, count=opts.control_requests, interval_s=interval, max_s=120
        )
        progress("training (legato-hub recommend train) while the control path is measured")
        done = threading.Event()
        box: dict[str, measure.Samples] = {}
        count = int(opts.train_timeout_s / max(interval, 0.001)) + 1

        def load_loop() -> None:
            box["during"] = measure.control_path(
                hub.base,
                token,
                count=count,
                interval_s=interval,
                max_s=opts.train_timeout_s,
                stop=done,
            )

        loader = threading.Thread(target=load_loop, name="control-during-training")
        loader.start()
        try:
            train = hubproc.run_command(
                data, ["recommend", "train", "--json"], opts.train_timeout_s
            )
        finally:
            done.set()
            loader.join(opts.train_timeout_s + 30)
        out["train"] = _command(train)
        out["control_idle"] = {**idle.stats(), "errors": idle.errors, "first": idle.first_error}
        during = box.get("during", measure.Samples())
        out["control_training"] = {
            **during.stats(),
            "errors": during.errors,
            "first": during.first_error,
        }
        # the serving hub looks for a newer model every CHECK_S: let it load this one
        progress(f"waiting {CHECK_S + 5:.0f} s for the hub to load the new model")
        time.sleep(CHECK_S + 5)
        progress(f"recommendations over HTTP: {opts.recommendation_requests} requests")
        recs, answered = measure.recommendations(
            hub.base,
            token,
            seeds["account_seeds"] or [p[1] for p in seeds["pairs"]],
            count=opts.recommendation_requests,
            max_s=60,
        )
        out["http_recommendations"] = {
            **recs.stats(),
            "errors": recs.errors,
            "first": recs.first_error,
            "tracks": answered,
        }
    finally:
        hub.stop()
    return out


def run(opts: Options) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="legato-recommend-bench-") as tmp:
        data = opts.data if opts.data is not None else Path(tmp) / "hub-data"
        figures: dict[str, Any] = {"data": str(data) if opts.data else None, "k": opts.k}
        figures["history"] = _generate(opts, data)
        if opts.generate_only:
            return figures
        progress(f"evaluating (legato-hub recommend evaluate --k {opts.k})")
        evaluate = hubproc.run_command(
            data, ["recommend", "evaluate", "--k", str(opts.k), "--json"], opts.evaluate_timeout_s
        )
        figures["evaluate"] = _command(evaluate)
        seeds = _seeds(data, load.ACCOUNT, opts.listeners, np.random.default_rng(opts.seed))
        figures.update(_serve_phases(opts, data, seeds))
        progress("Recommender in process")
        timed = measure.in_process(
            data, seeds["pairs"], count=opts.recommendation_requests, max_s=60
        )
        for name, (samples, picked) in timed.items():
            figures[f"in_process_{name}"] = {**samples.stats(), "tracks": picked}
        return figures
