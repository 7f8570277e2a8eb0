"""The report: the machine, the table of latencies, the other checks, and the JSON figures."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import math
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from .commands import ROUNDS
from .common import Options
from .rig import LABELS
from .stats import LatencyStats

TARGET_P99_MS = 30.0
TARGET_SPEAKERS = 1000


def machine() -> dict[str, Any]:
    """What the figures were measured on (read before the run starts)."""
    try:
        mosquitto = subprocess.run(
            ["mosquitto", "-h"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        mosquitto = "mosquitto (version unknown)"
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "broker": mosquitto,
        "load_1min_at_start": round(os.getloadavg()[0], 2),
    }


def _cpu_line(label: str, cpu: dict[str, float], commands: int) -> str:
    parts = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items() if k != "wall")
    per = ""
    if commands:
        per_cmd = {k: v / commands * 1e3 for k, v in cpu.items() if k != "wall"}
        per = "; per command (ms): " + ", ".join(
            f"{k.split()[0]} {v:.2f}" for k, v in per_cmd.items()
        )
    return f"  {label}: {parts} CPU-s in {cpu['wall']:.1f} s wall{per}"


#: The figures with a row per transport: (key in a transport's results, what it is).
ROWS = (
    ("raw", "raw MQTT: cmd -> state (no hub)"),
    ("hub", "hub: WS command -> state push"),
    ("hub_result", "hub: WS command -> result"),
    ("hub_concurrent", "hub, {k} in flight: -> state push"),
    ("hub_concurrent_result", "hub, {k} in flight: -> result"),
)


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(b) else math.nan


def _row(label: str, transport: str, s: LatencyStats) -> str:
    return (
        f"  {label:<36} {transport:<9} {s.n:>6} {s.p50:>8.2f} {s.p90:>8.2f} {s.p99:>8.2f} "
        f"{s.max:>8.2f}"
    )


def _ratio_row(tls: LatencyStats, plain: LatencyStats) -> str:
    cells = " ".join(
        f"{'x' + format(_ratio(getattr(tls, k), getattr(plain, k)), '.2f'):>8}"
        for k in ("p50", "p90", "p99", "max")
    )
    return f"  {'':<36} {'TLS/plain':<9} {'':>6} {cells}"


def report(opts: Options, res: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """Print the report and return the same figures as plain data for --json.

    The target is judged on TLS, what the product ships, when it was measured.
    """
    info["load_1min_at_end"] = round(os.getloadavg()[0], 2)
    transports = [t for t in opts.transports if t in res]
    both = len(transports) == 2
    judged = "tls" if "tls" in transports else transports[0]
    print()
    _print_setup(opts, info)
    print()
    print(
        f"  {'latency, ms':<36} {'transport':<9} {'n':>6} {'p50':>8} {'p90':>8} {'p99':>8} "
        f"{'max':>8}"
    )
    for key, label in ROWS:
        if key not in res[judged]:
            continue
        for t in transports:
            print(_row(label.format(k=opts.concurrency), LABELS[t], res[t][key]))
        if both:
            print(_ratio_row(res["tls"][key], res["plain"][key]))
    print()
    overhead = {
        t: {
            "p50": round(_ratio(res[t]["hub"].p50, res[t]["raw"].p50), 2),
            "p99": round(_ratio(res[t]["hub"].p99, res[t]["raw"].p99), 2),
        }
        for t in transports
    }
    print(
        "  hub overhead vs raw MQTT on the same transport: "
        + "; ".join(
            f"{LABELS[t]} p50 x{overhead[t]['p50']:.1f}, p99 x{overhead[t]['p99']:.1f}"
            for t in transports
        )
    )
    if "hub_concurrent_throughput_per_s" in res[judged]:
        print(
            f"  throughput with {opts.concurrency} in flight: "
            + ", ".join(
                f"{LABELS[t]} {res[t]['hub_concurrent_throughput_per_s']:.0f}" for t in transports
            )
            + " commands/s"
        )
    hub: LatencyStats = res[judged]["hub"]
    passed = hub.p99 <= TARGET_P99_MS
    scale_note = (
        ""
        if opts.speakers >= TARGET_SPEAKERS
        else f" (the target is stated for {TARGET_SPEAKERS} speakers; this run has {opts.speakers})"
    )
    beside = (
        f"; plain MQTT {res['plain']['hub'].p99:.2f} ms, TLS/plain "
        f"x{_ratio(hub.p99, res['plain']['hub'].p99):.2f}"
        if both
        else ""
    )
    print(
        f"  target p99 <= {TARGET_P99_MS:g} ms (command -> state push, one at a time, "
        f"{LABELS[judged]}{' as shipped' if judged == 'tls' else ', NOT as shipped'}): "
        f"{'PASS' if passed else 'MISS'} at p99 {hub.p99:.2f} ms{beside}{scale_note}"
    )
    for t in transports:
        print()
        print(f"  {LABELS[t]}:")
        _print_checks(opts, res[t])
    if res["failures"]:
        print()
    for failure in res["failures"]:
        print(f"  FAILED: {failure}")
    figures: dict[str, Any] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": info,
        "options": {
            k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(opts).items()
        },
        "failures": res["failures"],
    }
    for t in transports:
        figures[t] = {k: _plain(v) for k, v in res[t].items()} | {"ratio_hub_over_raw": overhead[t]}
    if both:
        figures["ratio_tls_over_plain"] = {
            key: {
                p: round(_ratio(getattr(res["tls"][key], p), getattr(res["plain"][key], p)), 2)
                for p in ("p50", "p90", "p99")
            }
            for key, _ in ROWS
            if key in res["tls"]
        }
    figures["target"] = {
        "p99_ms": TARGET_P99_MS,
        "at_speakers": TARGET_SPEAKERS,
        "judged_on": judged,
        "measured_p99_ms": round(hub.p99, 3),
        "pass": passed,
    }
    return figures


def _plain(value: Any) -> Any:
    if isinstance(value, LatencyStats):
        return {k: round(v, 3) for k, v in dataclasses.asdict(value).items()}
    return value


def _print_setup(opts: Options, info: dict[str, Any]) -> None:
    print(
        f"Legato control-path latency — {opts.speakers} speakers, {opts.commands} commands "
        f"({opts.order}), {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
    )
    print(
        f"machine: {info['cpus']} CPUs ({info['cpu_model'] or 'unknown model'}), Linux "
        f"{info['kernel']}, Python {info['python']}, {info['broker']}"
    )
    systems = len(opts.transports)
    print(
        f"  note: per transport a hub, a Mosquitto and {opts.workers} speaker worker "
        f"process(es); {'both systems' if systems == 2 else 'they'} and this client all share "
        f"these {info['cpus']} CPUs on loopback; 1-min load average "
        f"{info['load_1min_at_start']:.2f} before the run, {info['load_1min_at_end']:.2f} after "
        "(anything else running skews the figures)"
    )
    print(
        "  MQTT (hub <-> Mosquitto <-> speakers and the raw probe): "
        + " and ".join(_TRANSPORT_NOTES[t] for t in opts.transports)
        + (
            f"; the transports take turns, {ROUNDS} rounds per measured phase"
            if systems == 2
            else ""
        )
        + "; the listener's WebSocket is the plain Web API port in both"
    )
    print(
        f"  speakers: {opts.workers} spawned worker(s), each driving its paho clients from one "
        "asyncio loop (paho external-loop API, no thread per client); WebSocket compression "
        f"{'on (permessage-deflate, as browsers)' if opts.compression else 'off'}"
    )
    print(
        "  TCP_NODELAY: on everywhere, as shipped (the hub's MQTT client and Mosquitto's config "
        "set it; the virtual speakers and the raw probe set it the same way)"
    )


_TRANSPORT_NOTES = {
    "plain": "plain (mqtt://, in clear)",
    "tls": "TLS (mqtts://, TLS 1.2 listener with the hub's CA and certificate, clients pin the CA)",
}


def _print_checks(opts: Options, res: dict[str, Any]) -> None:
    onboarding = res["onboarding"]
    rss = res["rss"]
    print(
        f"    onboarding: all {opts.speakers} connected to the broker in "
        f"{onboarding['all_connected_to_broker_s']:.2f} s; "
        + (
            f"all online at the hub in {onboarding['all_online_at_hub_s']:.2f} s "
            if onboarding["all_online_at_hub_s"] is not None
            else f"ONLY {onboarding['online_at_hub']} EVER ONLINE AT THE HUB "
        )
        + (
            f"(as an open WebSocket shows; the hub pushed it "
            f"{onboarding['devices_messages_pushed']} full device lists)"
            if opts.watch == "ws"
            else "(polling GET /v1/me/player/devices, no session open)"
        )
    )
    print(
        f"    hub RSS: {rss['hub_before_speakers_mib']:.1f} MiB before speakers, "
        f"{rss['hub_after_onboarding_mib']:.1f} MiB after onboarding, "
        f"{rss['hub_end_mib']:.1f} MiB at the end; mosquitto {rss['mosquitto_end_mib']:.1f} MiB; "
        f"speaker workers {rss['speaker_workers_end_mib']:.1f} MiB together"
    )
    print("    CPU seconds by phase:")
    print("    " + _cpu_line("onboarding", onboarding["cpu_s"], 0))
    print("    " + _cpu_line("idle, all connected", res["idle_cpu_s_over_2s"], 0))
    print("    " + _cpu_line("raw MQTT baseline", res["raw_cpu_s"], opts.baseline_commands))
    print("    " + _cpu_line("through the hub", res["hub_cpu_s"], opts.commands))
    if "hub_concurrent_cpu_s" in res:
        print("    " + _cpu_line("hub, concurrent", res["hub_concurrent_cpu_s"], opts.commands))
    restart = res.get("restart")
    if restart is not None:
        print("  " + _restart_line(opts, restart))
    print(
        f"    speakers handled {res['speaker_commands_handled']} commands; hub log warnings: "
        f"{res['hub_log_warnings']}"
        + (
            f" (and {res['hub_log_expected_warnings']} expected: the broker is in clear)"
            if res["hub_log_expected_warnings"]
            else ""
        )
        + f"; Mosquitto 'outgoing messages are being dropped': "
        f"{res['broker_dropped_messages_warnings']}"
        + (
            f" (to {', '.join(res['broker_dropped_messages_to'])})"
            if res["broker_dropped_messages_to"]
            else ""
        )
    )
    for line in res["hub_log_sample"]:
        print(f"      {line[:160]}")


def _restart_line(opts: Options, restart: dict[str, Any]) -> str:
    if restart["online_after_s"] is not None:
        found = f"all {opts.speakers} online after {restart['online_after_s']:.2f} s"
    else:
        found = (
            f"INCOMPLETE: only {restart['online']}/{opts.speakers} online after "
            f"{restart['waited_s']:g} s more"
        )
    return (
        f"  hub restart with all speakers connected: healthy after "
        f"{restart['healthy_s']:.2f} s, {found}; "
        + (
            f"WRONG state for {restart['stale_states']} speakers, e.g. {restart['stale_sample'][0]}"
            if restart["stale_states"]
            else "every speaker's state up to date"
        )
    )
