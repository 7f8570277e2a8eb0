"""The report: the machine, the latency table with ratios to the baseline, PASS/MISS per
target, the spins' checks; and whether anything failed (the exit status)."""

from __future__ import annotations

import math
from typing import Any

from latency.report import machine as _machine

from .common import HUB_TARGET_P99_MS, SINK_TARGET_P99_MS, Options

COLUMNS = ("n", "p50", "p95", "p99", "max")


def machine() -> dict[str, Any]:
    """The control bench's description of the machine (cores, CPU, kernel, load)."""
    return _machine()


def _row(label: str, s: dict[str, float]) -> str:
    cells = [f"{int(s['n']):>5}"] + [f"{s[k]:>8.2f}" for k in COLUMNS[1:]]
    return f"  {label:<50}{''.join(cells)}"


def _ratio_row(label: str, a: dict[str, float], b: dict[str, float]) -> str:
    def r(k: str) -> str:
        return f"{a[k] / b[k]:>8.2f}" if b[k] and not math.isnan(b[k]) else f"{'-':>8}"

    return f"  {label:<50}{'':>5}" + "".join(r(k) for k in COLUMNS[1:])


def _verdict(got: float, target: float) -> str:
    return "PASS" if got <= target else "MISS"


def _busy(busy: dict[str, Any] | None) -> str:
    if not busy or busy.get("pid") is None:
        return "no"
    share = busy.get("cpu_share")
    return "yes" if share is None else f"yes, the busy loop had {share:.0%} of a core"


def _latency(res: dict[str, Any], busy: str) -> list[str]:
    panel, local = res["panel"], res["local"]
    head = f"  {'ms':<50}{'n':>5}" + "".join(f"{k:>8}" for k in COLUMNS[1:])
    lines = [
        f"\nKnob detent latency ({res['detents']} per way, each alone, {res['gap_ms'][0]}-"
        f"{res['gap_ms'][1]} ms apart; one core busy: {busy})",
        head,
        _row("panel ENC frame -> sink, new gain", panel["sink_ms"]),
        _row("local WebSocket volume -> sink (baseline)", local["sink_ms"]),
        _ratio_row("panel / local", panel["sink_ms"], local["sink_ms"]),
        _row("panel ENC frame -> hub Connect WS state", panel["hub_ms"]),
        _row("local WebSocket volume -> hub state (baseline)", local["hub_ms"]),
        _ratio_row("panel / local", panel["hub_ms"], local["hub_ms"]),
        _row("raw pty: write -> plain reader (floor)", res["raw_pty"]["write_to_read_ms"]),
    ]
    step = res.get("level_step_error_db")
    if step:
        lines.append(
            f"  level after each change vs the gain's step: max error {step['max']} dB "
            f"over {step['n']} changes"
        )
    sink_p99, hub_p99 = panel["sink_ms"]["p99"], panel["hub_ms"]["p99"]
    lines += [
        f"  target: detent -> sink p99 <= {SINK_TARGET_P99_MS:g} ms: {sink_p99:.2f} ms "
        f"{_verdict(sink_p99, SINK_TARGET_P99_MS)}",
        f"  target: detent -> hub state p99 <= {HUB_TARGET_P99_MS:g} ms: {hub_p99:.2f} ms "
        f"{_verdict(hub_p99, HUB_TARGET_P99_MS)}",
    ]
    return lines


def _compact(diag: dict[str, Any]) -> str:
    """A device's diagnostics on one line: numbers as they are, a table of counts summed."""
    parts = []
    for key, value in diag.items():
        if isinstance(value, dict):
            numbers = [v for v in value.values() if isinstance(v, int | float)]
            parts.append(f"{key} {sum(numbers):g}")
        elif isinstance(value, bool | int | float):
            parts.append(f"{key} {value}")
    return ", ".join(parts)


def _spin(label: str, res: dict[str, Any]) -> list[str]:
    lines = [
        f"\nSpin through {label} (one core busy: {_busy(res.get('busy'))})",
        f"  {res['detents_sent']} detents in {res['spin_s']} s "
        f"({res['rate_per_s']}/s), legs {res['legs']}",
        f"  counted: {res['events_counted']} events, {res['detents_counted']} detents net "
        f"(sent {res['detents_sent']}, net {res['signed_sum_sent']})",
    ]
    for key in ("hub", "panel_vol", "indicator", "controller"):
        if key in res:
            j = res[key]
            lines.append(
                f"  {key}: {j['states']} states, turning points {j['turning_points']} "
                f"(expected {j['expected']})"
            )
    for name, diag in res.get("panel_device", {}).items():
        lines.append(f"  the speaker's {name} after the spin: {_compact(diag)}")
    if "gpio_counts" in res:
        lines.append(f"  GpioControls reported: {res['gpio_counts']}")
    if "edge_to_controller_ms" in res:
        s = res["edge_to_controller_ms"]
        lines.append(
            f"  last edge of a detent -> the controller applying it: p50 {s['p50']:.2f}, "
            f"p99 {s['p99']:.2f}, max {s['max']:.2f} ms"
        )
    lines.append(
        f"  every detent counted: {'yes' if res['every_detent_counted'] else 'NO'}; "
        f"none reversed: {'yes' if res['none_reversed'] else 'NO'} -> "
        f"{'PASS' if res['ok'] else 'FAIL'}"
    )
    return lines


def report(opts: Options, res: dict[str, Any], info: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Print the figures; the JSON document, and whether every check held."""
    lines = [
        f"\nmachine: {info['cpus']} CPUs ({info['cpu_model']}), Linux {info['kernel']}, "
        f"Python {info['python']}, load {info['load_1min_at_start']} at start",
        f"material: a {res['material']['tone_hz']:g} Hz tone, {res['material']['seconds']} s "
        "on repeat, sink at 44.1 kHz",
    ]
    ok = True
    if "latency" in res:
        lines += _latency(res["latency"], _busy(res.get("busy")))
    if "spin_panel" in res:
        lines += _spin(
            "the panel (speaker process)", {**res["spin_panel"], "busy": res.get("busy")}
        )
        ok &= bool(res["spin_panel"]["ok"])
    if "spin_gpio" in res:
        lines += _spin("GPIO (MockFactory, in process)", res["spin_gpio"])
        ok &= bool(res["spin_gpio"]["ok"])
    lines.append(f"\nwall time {res['wall_s']} s")
    print("\n".join(lines), flush=True)
    return {"machine": info, "options": _options(opts), **res, "ok": ok}, ok


def _options(opts: Options) -> dict[str, Any]:
    return {
        "detents": opts.detents,
        "gap_ms": list(opts.gap_ms),
        "spin_rate": opts.spin_rate,
        "spin_seconds": opts.spin_seconds,
        "track_seconds": opts.track_seconds,
        "busy": opts.busy,
        "seed": opts.seed,
        "only": list(opts.only),
    }
