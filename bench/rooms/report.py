"""The report: the grouped figures beside the baseline's, each target met or missed."""

from __future__ import annotations

import math
from typing import Any

from latency.report import machine as _machine

from .common import (
    JOIN_TARGET_S,
    MAX_RATE_ADJUST,
    SKEW_AIM_P99_MS,
    SKEW_TARGET_P99_MS,
    TREND_TARGET_MS,
    Options,
)


def machine() -> dict[str, Any]:
    return _machine()


def _num(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _worst(stretch: dict[str, Any] | None, key: str) -> Any:
    if not stretch:
        return None
    vals = [m[key] for m in stretch["members"].values() if m[key] is not None]
    return max(vals, key=abs) if vals else None


def _drift(stretch: dict[str, Any] | None) -> float | None:
    if not stretch:
        return None
    vals = [d for d in stretch["drift_ms_per_min"] if d is not None]
    return max(vals, key=abs) if vals else None


def _line(label: str, base: Any, grp: Any, target: str, verdict: str, digits: int = 3) -> str:
    ratio = "-"
    if isinstance(base, float | int) and isinstance(grp, float | int) and grp:
        ratio = f"{abs(base) / abs(grp):.0f}x" if abs(base / grp) >= 10 else f"{base / grp:.2f}"
    return f"  {label:<38}{_num(base, digits):>10}{_num(grp, digits):>10}{ratio:>8}  {target:<22}{verdict}"


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "MISSED")


def report(opts: Options, res: dict[str, Any], info: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    base = res.get("baseline")
    grp = res.get("group")
    join = res.get("join")
    busy = res.get("busy") or {}
    print()
    print(f"multiroom: {opts.members} members grouped" + (" + 1 late joiner" if join else ""))
    print(
        f"  machine: {info.get('cpus')} cores, {info.get('cpu_model', '')}, load {info.get('load_1min_at_start', '')}"
    )
    print(f"  DAC crystals (ppm): {', '.join(f'{p:+g}' for p in opts.ppm[: opts.speakers])}")
    print(
        f"  sync datagrams through a relay: {opts.jitter_ms:g} ms mean one way, +-{opts.jitter_ms / 2:g} ms jitter, asymmetric"
    )
    print(
        f"  busy core: {'yes, ' + _num(busy.get('cpu_share'), 2) + ' of a core' if busy.get('pid') else 'no'}"
    )
    dac = res.get("dac_timing") or {}
    print(
        f"  DAC process: {dac.get('priority')}, tick late p99 {_num(dac.get('tick_late_us_p99'), 0)} us, max {_num(dac.get('tick_late_us_max'), 0)} us"
    )
    if res.get("sync_config") is False:
        print("  NOTE: this speaker has no [sync] config: no relay between the members")
    print()
    print(f"  {'':<38}{'baseline':>10}{'group':>10}{'ratio':>8}  {'target':<22}verdict")
    gs = grp["skew_ms"] if grp else {}
    bs = base["skew_ms"] if base else {}
    p99 = gs.get("p99")
    ok_p99 = None if p99 is None else p99 <= SKEW_TARGET_P99_MS
    aim = "" if p99 is None else (" (aim met)" if p99 <= SKEW_AIM_P99_MS else " (aim missed)")
    print(_line("skew p50 (ms)", bs.get("p50"), gs.get("p50"), "", ""))
    print(
        _line(
            "skew p99 (ms)",
            bs.get("p99"),
            p99,
            f"<= {SKEW_TARGET_P99_MS:g}, aim {SKEW_AIM_P99_MS:g}",
            _verdict(ok_p99) + aim,
        )
    )
    print(_line("skew max (ms)", bs.get("max"), gs.get("max"), "", ""))
    drift_b, drift_g = _drift(base), _drift(grp)
    print(_line("drift (ms/min, worst member)", drift_b, drift_g, "", "", 4))
    trend = grp.get("trend_ms") if grp else None
    ok_trend = None if trend is None else abs(trend) <= TREND_TARGET_MS
    run_min = grp["seconds"] / 60 if grp else 0
    print(
        _line(
            f"drift over the run (ms, {run_min:.1f} min)",
            None,
            trend,
            f"<= {TREND_TARGET_MS:g} (no trend)",
            _verdict(ok_trend),
            4,
        )
    )
    took = join.get("seconds_to_1ms") if join else None
    ok_join = None if join is None else (took is not None and took <= JOIN_TARGET_S)
    print(
        _line(
            "late joiner to within 1 ms (s)",
            None,
            took,
            f"<= {JOIN_TARGET_S:g}",
            _verdict(ok_join),
            2,
        )
    )
    jumps = sum(m["jumps"] for m in grp["members"].values()) if grp else None
    print(
        _line(
            "jumps > 1 frame at once",
            None,
            jumps,
            "0",
            _verdict(None if jumps is None else jumps == 0),
            0,
        )
    )
    rate = _worst(grp, "max_rate_pct")
    ok_rate = None if rate is None else rate <= MAX_RATE_ADJUST * 100 + 0.02
    print(
        _line(
            "max rate adjustment (%)",
            _worst(base, "max_rate_pct"),
            rate,
            f"<= {MAX_RATE_ADJUST * 100:g}",
            _verdict(ok_rate),
        )
    )
    print(
        _line(
            "largest step between windows (frames)",
            _worst(base, "max_step_frames"),
            _worst(grp, "max_step_frames"),
            "",
            "",
            1,
        )
    )
    und_b = sum(m["underruns"] for m in base["members"].values()) if base else None
    und_g = sum(m["underruns"] for m in grp["members"].values()) if grp else None
    print(
        _line(
            "underruns (DAC ran dry)",
            und_b,
            und_g,
            "0",
            _verdict(None if und_g is None else und_g == 0),
            0,
        )
    )
    if grp:
        print()
        print("  per member (group):")
        for name, m in grp["members"].items():
            print(
                f"    {name:<8} {m['ppm']:+7.1f} ppm  windows {m['windows']:>6}  rate max {_num(m['max_rate_pct'])} %  net {_num(m['net_frames'], 1)} frames  jumps {m['jumps']}  underruns {m['underruns']}  corr min {_num(m['corr_min'])}"
            )
        print(f"    mean offset vs {next(iter(grp['members']))} (ms): {grp['mean_offset_ms']}")
    if join and join.get("after"):
        a = join["after"]["skew_ms"]
        print(
            f"  after the join, all members: skew p50 {_num(a.get('p50'))} p99 {_num(a.get('p99'))} max {_num(a.get('max'))} ms"
        )
    verdicts = [v for v in (ok_p99, ok_trend, ok_join, ok_rate) if v is not None]
    print()
    print(
        f"  targets: {sum(verdicts)} of {len(verdicts)} met"
        if verdicts
        else "  targets: none judged"
    )
    figures = {"options": _options(opts), "machine": info, **res}
    return figures, True


def _options(opts: Options) -> dict[str, Any]:
    return {
        "members": opts.members,
        "minutes": opts.minutes,
        "baseline_s": opts.baseline_s,
        "join_s": opts.join_s,
        "ppm": list(opts.ppm),
        "jitter_ms": opts.jitter_ms,
        "busy": opts.busy,
        "track_seconds": opts.track_seconds,
        "only": list(opts.only),
    }
