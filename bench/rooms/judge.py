"""The phases judged from what the DACs recorded (``sync_analysis`` does the finding)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import sync_analysis as sa
from numpy.typing import NDArray

from tests.virtual_dac import STRIDE_FRAMES, Recording, read_recording

from .common import JOIN_TOLERANCE_MS, RATE, SETTLE_S

MAX_GAP = 3 * STRIDE_FRAMES


def locate_all(dac_dir: Path, names: list[str], ref: NDArray[np.float32]) -> dict[str, Any]:
    """Every member's windows found in the reference, with its recording."""
    reference = sa.Reference(ref)
    out: dict[str, Any] = {}
    for name in names:
        rec = read_recording(dac_dir, name)
        out[name] = (rec, sa.locate_member(name, rec, reference))
    return out


def _underruns(rec: Recording, t_from: float, t_to: float) -> int:
    t = rec.play_ns(rec.underrun_k)
    return int(np.count_nonzero((t >= t_from) & (t < t_to)))


def _fmt(x: float) -> float | None:
    return None if not math.isfinite(x) else round(x, 4)


def stretch(found: dict[str, Any], names: list[str], t_from: float, t_to: float) -> dict[str, Any]:
    """Skew, drift and each member's corrections over one stretch of steady play."""
    locs = [found[n][1] for n in names]
    s = sa.skew(locs, RATE, t_from, t_to, max_gap=MAX_GAP)
    members = {}
    for name, loc in zip(names, locs, strict=True):
        rec: Recording = found[name][0]
        c = sa.corrections(loc, MAX_GAP, t_from=t_from, t_to=t_to)
        in_range = (loc.t_ns >= t_from) & (loc.t_ns < t_to)
        members[name] = {
            "ppm": rec.ppm,
            "windows": int(np.count_nonzero(in_range)),
            "corr_min": _fmt(float(loc.corr[in_range].min())) if in_range.any() else None,
            "max_rate_pct": _fmt(c.max_rate * 100),
            "max_step_frames": _fmt(c.max_step_frames),
            "jumps": c.jumps,
            "net_frames": _fmt(c.net_frames),
            "underruns": _underruns(rec, t_from, t_to),
        }
    mean_signed = [
        _fmt(float(np.nanmean(s.signed_ms[:, j]))) if s.t_ns.size else None
        for j in range(len(names))
    ]
    return {
        "seconds": round((t_to - t_from) / 1e9, 1),
        "skew_ms": {k: _fmt(v) for k, v in s.stats.items()},
        "drift_ms_per_min": [_fmt(d) for d in s.drift_ms_per_min],
        "trend_ms": _fmt(s.trend_ms),
        "all_heard_pct": _fmt(s.coverage * 100),
        "mean_offset_ms": mean_signed,
        "members": members,
    }


def judge_baseline(found: dict[str, Any], ev: dict[str, Any]) -> dict[str, Any]:
    t_from = ev["t_acked"] + SETTLE_S * 1e9
    return stretch(found, ev["members"], t_from, ev["t_end"])


def judge_group(found: dict[str, Any], ev: dict[str, Any], t_to: float) -> dict[str, Any]:
    t_from = ev["t_cmd"] + SETTLE_S * 1e9
    return stretch(found, ev["members"], t_from, t_to)


def judge_join(found: dict[str, Any], ev: dict[str, Any]) -> dict[str, Any]:
    joiner = found[ev["joiner"]][1]
    others = [found[n][1] for n in ev["members"]]
    took = sa.time_to_sync(joiner, others, RATE, ev["t_cmd"], ev["t_end"], JOIN_TOLERANCE_MS)
    out: dict[str, Any] = {"joiner": ev["joiner"], "seconds_to_1ms": _fmt(took) if took else None}
    if took is not None:
        after = ev["t_cmd"] + took * 1e9 + 1e9
        if ev["t_end"] - after > 2e9:
            out["after"] = stretch(found, [*ev["members"], ev["joiner"]], after, ev["t_end"])
    return out
