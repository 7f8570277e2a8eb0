"""The report: the grouped figures beside the baseline's, each target met or missed."""

from __future__ import annotations

import math
from typing import Any

from latency.report import machine as _machine

from .common import (
    HEARD_TARGET_PCT,
    JOIN_TARGET_S,
    MAX_RATE_ADJUST,
    SKEW_AIM_P99_MS,
    SKEW_TARGET_P99_MS,
    TREND_TARGET_MS,
    Options,
)

Stretch = dict[str, Any] | None


def machine() -> dict[str, Any]:
    return _machine()


def _num(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _worst(stretch: Stretch, key: str) -> Any:
    if not stretch:
        return None
    vals = [m[key] for m in stretch["members"].values() if m[key] is not None]
    return max(vals, key=abs) if vals else None


def _total(stretch: Stretch, key: str) -> int | None:
    return sum(m[key] for m in stretch["members"].values()) if stretch else None


def _drift(stretch: Stretch) -> float | None:
    vals = [d for d in stretch["drift_ms_per_min"] if d is not None] if stretch else []
    return max(vals, key=abs) if vals else None


def _ratio(base: Any, grp: Any) -> str:
    if not (isinstance(base, float | int) and isinstance(grp, float | int) and grp and base):
        return "-"
    r = abs(base / grp)
    return f"{r:.0f}x" if r >= 10 else f"{r:.2f}"


def _line(label: str, base: Any, grp: Any, target: str, verdict: str, digits: int = 3) -> str:
    cells = f"{_num(base, digits):>10}{_num(grp, digits):>10}{_ratio(base, grp):>8}"
    return f"  {label:<40}{cells}  {target:<18}{verdict}"


def _verdict(ok: bool | None, aim: str = "") -> str:
    return "-" if ok is None else ("met" if ok else "MISSED") + aim


def _header(opts: Options, res: dict[str, Any], info: dict[str, Any]) -> None:
    busy = res.get("busy") or {}
    dac = res.get("dac_timing") or {}
    share = _num(busy.get("cpu_share"), 2)
    print()
    print(
        f"multiroom: {opts.members} members grouped"
        + (" + 1 late joiner" if res.get("join") else "")
    )
    print(
        f"  machine: {info.get('cpus')} cores, {info.get('cpu_model', '')}, "
        f"1-min load {info.get('load_1min_at_start', '')} at start"
    )
    print(f"  DAC crystals (ppm): {', '.join(f'{p:+g}' for p in opts.ppm[: opts.speakers])}")
    print(
        f"  sync datagrams through a relay: {opts.jitter_ms:g} ms mean one way, "
        f"{opts.jitter_ms / 2:g}..{opts.jitter_ms * 1.5:g} ms, jitter asymmetric"
    )
    print(f"  busy core: {'yes, ' + share + ' of a core' if busy.get('pid') else 'no'}")
    print(
        f"  DAC process: {dac.get('priority')}, tick late p99 "
        f"{_num(dac.get('tick_late_us_p99'), 0)} us, max {_num(dac.get('tick_late_us_max'), 0)} us"
        f", {dac.get('stalls_over_5ms', '-')} stalls > 5 ms"
    )
    if res.get("sync_config") is False:
        print("  NOTE: this speaker has no [sync] config: no relay between the members")


def _table(res: dict[str, Any]) -> list[bool]:
    """The figures' table; the verdicts judged."""
    base, grp, join = res.get("baseline"), res.get("group"), res.get("join")
    bs = base["skew_ms"] if base else {}
    gs = grp["skew_ms"] if grp else {}
    p99, trend = gs.get("p99"), grp.get("trend_ms") if grp else None
    took = join.get("seconds_to_1ms") if join else None
    jumps, rate, und = _total(grp, "jumps"), _worst(grp, "max_rate_pct"), _total(grp, "underruns")
    heard = grp.get("all_heard_pct") if grp else None
    ok = {
        "heard": None if heard is None else heard >= HEARD_TARGET_PCT,
        "p99": None if p99 is None else p99 <= SKEW_TARGET_P99_MS,
        "trend": None if trend is None else abs(trend) <= TREND_TARGET_MS,
        "join": None if join is None else (took is not None and took <= JOIN_TARGET_S),
        "jumps": None if jumps is None else jumps == 0,
        "rate": None if rate is None else rate <= MAX_RATE_ADJUST * 100 + 0.02,
    }
    aim = "" if p99 is None else (" (aim met)" if p99 <= SKEW_AIM_P99_MS else " (aim missed)")
    minutes = grp["seconds"] / 60 if grp else 0.0
    print()
    print(f"  {'':<40}{'baseline':>10}{'group':>10}{'ratio':>8}  {'target':<18}verdict")
    all_heard = base.get("all_heard_pct") if base else None
    target = f">= {HEARD_TARGET_PCT:g}"
    print(
        _line("all members heard (% of time)", all_heard, heard, target, _verdict(ok["heard"]), 1)
    )
    print(_line("skew p50 (ms)", bs.get("p50"), gs.get("p50"), "", ""))
    target = f"<= {SKEW_TARGET_P99_MS:g} (aim {SKEW_AIM_P99_MS:g})"
    print(_line("skew p99 (ms)", bs.get("p99"), p99, target, _verdict(ok["p99"], aim)))
    print(_line("skew max (ms)", bs.get("max"), gs.get("max"), "", ""))
    print(_line("drift (ms/min, worst member)", _drift(base), _drift(grp), "", "", 4))
    label = f"drift over the run (ms, {minutes:.1f} min)"
    print(_line(label, None, trend, f"<= {TREND_TARGET_MS:g}", _verdict(ok["trend"]), 4))
    target = f"<= {JOIN_TARGET_S:g}"
    print(_line("late joiner to within 1 ms (s)", None, took, target, _verdict(ok["join"]), 2))
    print(
        _line("jumps > 1 frame at once", _total(base, "jumps"), jumps, "0", _verdict(ok["jumps"]))
    )
    base_rate = _worst(base, "max_rate_pct")
    target = f"<= {MAX_RATE_ADJUST * 100:g}"
    print(_line("max rate adjustment (%)", base_rate, rate, target, _verdict(ok["rate"])))
    steps = (_worst(base, "max_step_frames"), _worst(grp, "max_step_frames"))
    print(_line("largest step between windows (frames)", *steps, "", "", 1))
    print(
        _line(
            "underruns (a DAC ran dry)",
            _total(base, "underruns"),
            und,
            "0",
            _verdict(und == 0 if und is not None else None),
        )
    )
    return [v for v in ok.values() if v is not None]


def _members(res: dict[str, Any]) -> None:
    grp, join = res.get("group"), res.get("join")
    if grp:
        print()
        print("  per member (group):")
        for name, m in grp["members"].items():
            print(
                f"    {name:<8}{m['ppm']:+7.1f} ppm  windows {m['windows']:>6}  "
                f"rate max {_num(m['max_rate_pct'])} %  net {_num(m['net_frames'], 1)} frames  "
                f"jumps {m['jumps']}  underruns {m['underruns']}  corr min {_num(m['corr_min'])}"
            )
        first = next(iter(grp["members"]))
        print(f"    mean offset from {first} (ms): {grp['mean_offset_ms']}")
    if join and join.get("after"):
        a = join["after"]["skew_ms"]
        print(
            f"  after the join, all members: skew p50 {_num(a.get('p50'))}, "
            f"p99 {_num(a.get('p99'))}, max {_num(a.get('max'))} ms"
        )


def report(opts: Options, res: dict[str, Any], info: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Print it all; the figures for ``--json`` (and True: missed targets are not fatal)."""
    _header(opts, res, info)
    verdicts = _table(res)
    _members(res)
    print()
    print(
        f"  targets: {sum(verdicts)} of {len(verdicts)} met" if verdicts else "  no target judged"
    )
    return {"options": _options(opts), "machine": info, **res}, True


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
