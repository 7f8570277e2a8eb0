"""``legato-hub recommend train|evaluate``: train the recommender now (in a worker
process, progress on stderr) or measure its models on the hub's own history."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from hub.errors import CliError
from hub.server import open_database


def cmd_recommend(args: argparse.Namespace, data: Path) -> int:
    open_database(data)  # migrated before the worker opens it
    if args.recommend_command == "train":
        return _train(args, data)
    return _evaluate(args, data)


def _train(args: argparse.Namespace, data: Path) -> int:
    from hub.recommend.jobs import train_now

    extra = ["--factors", str(args.factors), "--iterations", str(args.iterations)]
    try:
        figures = train_now(data, "cli", *extra)
    except RuntimeError as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        print(json.dumps(figures))
    else:
        print(
            f"trained in {figures['train_seconds']:.1f} s: {figures['listeners']} listeners,"
            f" {figures['tracks']} tracks, {figures['plays']} plays, {figures['factors']}"
            f" factors, {figures['iterations']} iterations, peak RSS"
            f" {figures['peak_rss_mib']:.0f} MiB; model {figures['model']};"
            f" {figures['weekly_mixes']} Weekly Mixes written in {figures['mix_seconds']:.1f} s"
        )
    return 0


def _evaluate(args: argparse.Namespace, data: Path) -> int:
    from hub.recommend.evaluate import evaluate

    result = evaluate(open_database(data), k=args.k, max_listeners=args.max_listeners)
    if args.json:
        print(json.dumps(result))
    else:
        print(table(result))
    return 0


def table(result: dict[str, Any]) -> str:
    k = result["k"]
    lines = [
        f"{result['listeners']} listeners, split at {result['split_ms']},"
        f" trained in {result['train_seconds']:.1f} s",
        f"{'model':<11}{'recall@' + str(k):>24}{'ndcg@' + str(k):>24}{'coverage':>10}{'gini':>7}",
    ]
    for name, m in result["models"].items():
        recall = f"{m['recall']:.3f} [{m['recall_ci'][0]:.3f}-{m['recall_ci'][1]:.3f}]"
        ndcg = f"{m['ndcg']:.3f} [{m['ndcg_ci'][0]:.3f}-{m['ndcg_ci'][1]:.3f}]"
        lines.append(
            f"{name:<11}{recall:>24}{ndcg:>24}{m['coverage']:>10.3f}{m['artist_gini']:>7.2f}"
        )
    return "\n".join(lines)


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    rec = sub.add_parser("recommend", help="train or evaluate the recommender")
    rec_sub = rec.add_subparsers(dest="recommend_command", required=True, metavar="ACTION")
    train = rec_sub.add_parser(
        "train",
        parents=[common],
        help="train now (a worker process) and write every listener's Weekly Mix",
    )
    train.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    train.add_argument(
        "--factors",
        type=int,
        default=0,
        help="ALS factors (default: 16 to 64, by the number of listeners)",
    )
    train.add_argument("--iterations", type=int, default=15, help="ALS iterations (default 15)")
    ev = rec_sub.add_parser(
        "evaluate",
        parents=[common],
        help="popularity, content, ALS and the blend (alone and under the mix rules) on a"
        " temporal split of the history",
    )
    ev.add_argument("--k", type=int, default=20, help="list length measured (default 20)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument(
        "--max-listeners",
        type=int,
        default=5000,
        help="evaluate a random sample of at most this many listeners (default 5000)",
    )
