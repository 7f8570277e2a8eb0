"""The printed report: figures, ratios and PASS/MISS per target (and the same as JSON)."""

from __future__ import annotations

import math
from typing import Any

MODELS = ("popularity", "content", "als", "blend", "blend_rules")
BLEND_OVER_POPULARITY = 2.0  # the blend's NDCG@k at least this many times popularity's
TRAIN_MAX_S = 120.0  # at full size: 100k listeners x 200k tracks x 10M plays
RECOMMEND_P99_MS = 10.0  # a recommendation from precomputed factors, in process


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def _num(x: Any, digits: int = 4) -> str:
    if not isinstance(x, int | float) or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}"


def _ci(pair: Any) -> str:
    if isinstance(pair, list) and len(pair) == 2:
        return f"[{_num(pair[0])}, {_num(pair[1])}]"
    return "-"


def targets(fig: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target's figure, threshold and verdict (None: not measured in this run)."""
    out: dict[str, dict[str, Any]] = {}
    models = ((fig.get("evaluate") or {}).get("answer") or {}).get("models") or {}
    blend = (models.get("blend") or {}).get("ndcg")
    pop = (models.get("popularity") or {}).get("ndcg")
    als = (models.get("als") or {}).get("ndcg")
    have = isinstance(blend, int | float) and isinstance(pop, int | float)
    ratio = blend / pop if have and pop else (math.inf if have else None)
    out["blend_vs_popularity_ndcg"] = {
        "value": ratio,
        "target": f">= {BLEND_OVER_POPULARITY}x",
        "verdict": _verdict(None if ratio is None else ratio >= BLEND_OVER_POPULARITY),
    }
    out["blend_vs_als_ndcg"] = {
        "value": None if blend is None or als is None else blend - als,
        "target": "blend >= als",
        "verdict": _verdict(None if blend is None or als is None else blend >= als),
    }
    train = fig.get("train") or {}
    answer = train.get("answer") or {}
    # what serving waits for (reading the plays, the fit, saving the model); the Weekly
    # Mixes written after it are reported beside it
    seconds = answer.get("train_seconds", train.get("seconds") if train.get("ok") else None)
    if train.get("timed_out"):  # stopped unfinished: at least this long, a miss
        seconds = train.get("seconds")
    out["train_seconds"] = {
        "value": seconds,
        "target": f"<= {TRAIN_MAX_S:.0f} s (at full size)",
        "verdict": _verdict(None if seconds is None else seconds <= TRAIN_MAX_S),
    }
    p99 = (fig.get("in_process_recommend") or {}).get("p99")
    verdict = None
    if isinstance(p99, float) and not math.isnan(p99):
        verdict = p99 <= RECOMMEND_P99_MS
    out["recommendation_p99_ms"] = {
        "value": p99,
        "target": f"<= {RECOMMEND_P99_MS:.0f} ms (Recommender.recommend, in process)",
        "verdict": _verdict(verdict),
    }
    return out


def _latency_line(label: str, s: dict[str, Any]) -> str:
    return (
        f"  {label:<34} n={s.get('n', 0):>6}  p50 {_num(s.get('p50'), 2):>8} ms"
        f"  p99 {_num(s.get('p99'), 2):>8} ms  errors {s.get('errors', 0)}"
    )


def _history(h: dict[str, Any]) -> list[str]:
    return [
        "Generated history",
        f"  {h['listeners']:,} listeners, {h['tracks']:,} tracks, {h['plays']:,} plays,"
        f" {h['tastes']} tastes ({h['artists']:,} artists, {h['albums']:,} albums)",
        f"  noise {h['noise_share']:.0%} of plays; skipped: noise {h['skip_rate_noise']:.0%},"
        f" in-taste {h['skip_rate_in_taste']:.0%}; cold tracks (last 28 days)"
        f" {h['cold_tracks']:,}, {h['cold_tracks_share_of_last_weeks_plays']:.0%} of those"
        " weeks' plays",
        f"  generated in {h['generate_seconds']} s, loaded in {h['load_seconds']} s"
        f" ({h['seconds']} s in all)",
    ]


def _models(fig: dict[str, Any]) -> list[str]:
    ev = fig.get("evaluate") or {}
    lines = [f"Offline evaluation (legato-hub recommend evaluate --k {fig.get('k')})"]
    answer = ev.get("answer")
    if not ev.get("ok") or not isinstance(answer, dict):
        return [*lines, f"  not measured: {ev.get('error', 'no answer')}"]
    k = answer.get("k")
    lines.append(
        f"  split at {answer.get('split_ms')}, {answer.get('listeners')} listeners held out,"
        f" training {answer.get('train_seconds')} s, the command {ev.get('seconds')} s"
    )
    lines.append(
        f"  {'model':<11} {'NDCG@' + str(k):>8} {'95% CI':>18} {'Recall@' + str(k):>10}"
        f" {'95% CI':>18} {'coverage':>9} {'artist Gini':>11}"
    )
    for name in MODELS:
        m = (answer.get("models") or {}).get(name) or {}
        lines.append(
            f"  {name:<11} {_num(m.get('ndcg')):>8} {_ci(m.get('ndcg_ci')):>18}"
            f" {_num(m.get('recall')):>10} {_ci(m.get('recall_ci')):>18}"
            f" {_num(m.get('coverage'), 3):>9} {_num(m.get('artist_gini'), 3):>11}"
        )
    return lines


def _serving(fig: dict[str, Any]) -> list[str]:
    idle = fig.get("control_idle") or {}
    during = fig.get("control_training") or {}
    train = fig.get("train") or {}
    answer = train.get("answer") or {}
    lines = ["Training (legato-hub recommend train) while the hub serves"]
    if not train.get("ok"):
        lines.append(f"  training failed or missing: {train.get('error', 'not run')}")
    else:
        lines.append(
            f"  {answer.get('seconds')} s by its own clock ({train.get('seconds')} s wall),"
            f" peak RSS {answer.get('peak_rss_mib')} MiB by its own count,"
            f" {train.get('peak_tree_rss_mib')} MiB process tree sampled;"
            f" {answer.get('factors')} factors, {answer.get('iterations')} iterations;"
            f" the model in {answer.get('train_seconds')} s (stages:"
            f" {answer.get('stage_seconds')}), then {answer.get('weekly_mixes')} Weekly Mixes"
            f" in {answer.get('mix_seconds')} s"
        )
    lines.append(_latency_line("control path, idle", idle))
    lines.append(_latency_line("control path, during training", during))
    for q in ("p50", "p99"):
        a, b = idle.get(q), during.get(q)
        if isinstance(a, float) and isinstance(b, float) and a > 0:
            lines.append(f"  {q} during / idle: {b / a:.2f}x")
    lines.append(
        "Recommendations from the trained model"
        if train.get("ok")
        else "Recommendations (training failed: from whatever model the hub had)"
    )
    http = fig.get("http_recommendations") or {}
    lines.append(_latency_line("GET /v1/recommendations", http))
    for name in ("recommend", "radio"):
        doc = fig.get(f"in_process_{name}") or {}
        lines.append(_latency_line(f"Recommender.{name}, in process", doc))
    return lines


def report(fig: dict[str, Any]) -> dict[str, Any]:
    """Print the report; the figures with the targets' verdicts added."""
    fig = {**fig, "targets": targets(fig)} if "evaluate" in fig else fig
    lines = _history(fig["history"])
    if "evaluate" in fig:
        lines += _models(fig) + _serving(fig) + ["Targets"]
        for name, t in fig["targets"].items():
            value = t["value"]
            shown = _num(value, 3) if isinstance(value, int | float) else "-"
            lines.append(f"  {t['verdict']:<5} {name:<26} {shown:>10}   ({t['target']})")
    print("\n".join(lines), flush=True)
    return fig
