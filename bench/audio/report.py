"""The report: the machine, one table of figures against their baselines, the details."""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
from collections.abc import Callable
from typing import Any

from latency.report import machine as _machine

from .common import LatencyStats, Options

TTFA_P99_MS = 150.0
TTFA_VS_MPV = 0.5
CPU_VS_OGGDEC = 1.5
RSS_MIB = 64.0
UNDERRUNS = 0


def machine() -> dict[str, Any]:
    info = _machine()
    info.pop("broker", None)
    return info


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(b) else math.nan


def _line(
    figure: str, ours: str, baseline: str, ratio: float | str | None, target: str, result: str
) -> str:
    r = ratio if isinstance(ratio, str) else "" if ratio is None else f"x{ratio:.2f}"
    return f"  {figure:<44} {ours:>9}  {baseline:<22} {r:>6}  {target:<22} {result}"


def report(opts: Options, res: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """Print the report; return the figures (and each target's verdict) for --json."""
    info["load_1min_at_end"] = round(os.getloadavg()[0], 2)
    targets: dict[str, dict[str, Any]] = {}
    print()
    print(
        f"Legato audio engine — {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, "
        f"phases: {', '.join(opts.only)}"
    )
    print(
        f"machine: {info['cpus']} CPUs ({info['cpu_model'] or 'unknown model'}), Linux "
        f"{info['kernel']}, Python {info['python']}; 1-min load average "
        f"{info['load_1min_at_start']:.2f} before, {info['load_1min_at_end']:.2f} after"
    )
    print(
        "  note: the hub (its own process, embedded broker), the speakers and engines, mpv and "
        "oggdec all share these CPUs on loopback; anything else running skews the figures"
    )
    m = res["material"]
    print(
        f"  material: {m['tracks']} demo tracks, {m['seconds'] / 60:.1f} min, ingested by the "
        f"hub's pipeline ({'from the cache' if m['cached'] else 'this run'}: {m['cache_dir']})"
    )
    print()
    print(_line("figure", "engine", "baseline", "ratio", "target", "result"))
    if "ttfa" in res:
        _ttfa_rows(res["ttfa"], targets)
    if "cpu" in res:
        _cpu_rows(res["cpu"], targets)
    if "rss" in res:
        _rss_rows(res["rss"], targets)
    if "trace" in res:
        _trace_rows(res["trace"], targets)
    for name in ("ttfa", "cpu", "rss", "trace"):
        if name in res:
            print()
            DETAILS[name](res[name])
    return closing(opts, res, info, targets, _plain)


def closing(
    opts: Any,
    res: dict[str, Any],
    info: dict[str, Any],
    targets: dict[str, dict[str, Any]],
    plain: Callable[[Any], Any],
) -> dict[str, Any]:
    """Print how many targets were met; the whole run as JSON-ready values.

    Shared with the offline cache's bench (``opts`` is either bench's options dataclass).
    """
    print()
    missed = [k for k, v in targets.items() if not v["pass"]]
    print(
        f"  targets: {len(targets) - len(missed)}/{len(targets)} met"
        + (f"; missed: {', '.join(missed)}" if missed else "")
        + f"; whole run {res['wall_s']:.0f} s"
    )
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": info,
        "options": {
            k: str(v) if k == "json_path" else v for k, v in dataclasses.asdict(opts).items()
        },
        **{k: plain(v) for k, v in res.items()},
        "targets": targets,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, LatencyStats):
        return {k: round(v, 3) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# --- the table ---------------------------------------------------------------------------


def _ttfa_rows(t: dict[str, Any], targets: dict[str, dict[str, Any]]) -> None:
    series = t["series"]
    ours: LatencyStats = t["ours"]  # the TLS speaker's, as paired
    cold: LatencyStats = t["mpv_command"]
    warm: LatencyStats = t["mpv"]
    print(
        _line(
            "time to first audio p50, ms (TLS)",
            f"{ours.p50:.1f}",
            f"mpv {cold.p50:.1f}",
            _ratio(ours.p50, cold.p50),
            "",
            "",
        )
    )
    ok_abs = ours.p99 <= TTFA_P99_MS
    ratio = _ratio(ours.p99, cold.p99)
    ok_rel = ratio <= TTFA_VS_MPV
    print(
        _line(
            f"time to first audio p99, ms (TLS, {ours.n} plays)",
            f"{ours.p99:.1f}",
            f"mpv {cold.p99:.1f}",
            ratio,
            f"<= {TTFA_P99_MS:g} ms",
            _verdict(ok_abs),
        )
    )
    print(_line("", "", "", None, f"<= {TTFA_VS_MPV:g} x mpv p99", _verdict(ok_rel)))
    plain: LatencyStats = series["plain"]["total"]
    tls_new: LatencyStats = series["tls_new"]["total"]
    plain_new: LatencyStats = series["plain_new"]["total"]
    for figure, a, b, label in (
        ("  (reference: in clear, MQTT + HTTP)", ours, plain, "plain"),
        ("  (reference: new connection each play)", tls_new, plain_new, "plain, new"),
    ):
        print(_line(figure, f"{a.p99:.1f}", f"{label} {b.p99:.1f}", _ratio(a.p99, b.p99), "", ""))
    print(
        _line(
            "  (reference: libmpv already running)",
            f"{ours.p99:.1f}",
            f"loadfile {warm.p99:.1f}",
            _ratio(ours.p99, warm.p99),
            "",
            "",
        )
    )
    targets["ttfa_p99_ms"] = {
        "target": TTFA_P99_MS,
        "measured": round(ours.p99, 2),
        "speaker": series[t["target_series"]]["label"],
        "plain_p99_ms": round(plain.p99, 2),
        "tls_over_plain_p99": round(_ratio(ours.p99, plain.p99), 2),
        "pass": ok_abs,
    }
    targets["ttfa_p99_vs_mpv"] = {
        "target": TTFA_VS_MPV,
        "measured": round(ratio, 2),
        "mpv_p99_ms": round(cold.p99, 2),
        "baseline": "the mpv program, cold: process start -> first audio byte, plain HTTP",
        "libmpv_loadfile_p99_ms": round(warm.p99, 2),
        "pass": ok_rel,
    }


def _cpu_rows(c: dict[str, Any], targets: dict[str, dict[str, Any]]) -> None:
    minutes = c["audio_s"] / 60
    base = c["oggdec"]["cpu_s"]
    for key, how in (("http", "over HTTPS"), ("local", "from files")):
        run = c[f"engine_{key}"]
        ratio = c[f"ratio_{key}"]
        ok = ratio <= CPU_VS_OGGDEC
        print(
            _line(
                f"CPU s, {minutes:.1f} min very_high {how}",
                f"{run['cpu_s']:.2f}",
                f"oggdec {base:.2f}",
                ratio,
                f"<= {CPU_VS_OGGDEC:g} x oggdec",
                _verdict(ok),
            )
        )
        targets[f"cpu_{key}_vs_oggdec"] = {
            "target": CPU_VS_OGGDEC,
            "measured": ratio,
            "engine_cpu_s": run["cpu_s"],
            "oggdec_cpu_s": base,
            "pass": ok,
        }


def _rss_rows(r: dict[str, Any], targets: dict[str, dict[str, Any]]) -> None:
    native, clock = r["native"]["vm_hwm_mib"], r["clock"]["vm_hwm_mib"]
    ok = native <= RSS_MIB
    print(
        _line(
            "speaker process peak RSS (VmHWM), MiB",
            f"{native:.1f}",
            f"clock engine {clock:.1f}",
            _ratio(native, clock),
            f"<= {RSS_MIB:g} MiB",
            _verdict(ok),
        )
    )
    plain = r["native_plain"]["vm_hwm_mib"]
    print(
        _line(
            "  (reference: native, in clear)",
            f"{native:.1f}",
            f"in clear {plain:.1f}",
            _ratio(native, plain),
            "",
            "",
        )
    )
    targets["speaker_vm_hwm_mib"] = {
        "target": RSS_MIB,
        "measured": native,
        "clock_engine_mib": clock,
        "native_in_clear_mib": plain,
        "pass": ok,
    }


def _trace_rows(t: dict[str, Any], targets: dict[str, dict[str, Any]]) -> None:
    auto, normal = t["auto"], t["normal"]
    ok = auto["underruns"] <= UNDERRUNS
    print(
        _line(
            f"underruns, bandwidth trace x{t['scale']:g} (auto)",
            str(auto["underruns"]),
            f"pinned normal {normal['underruns']}",
            None,
            f"{UNDERRUNS}",
            _verdict(ok),
        )
    )
    targets["trace_underruns"] = {
        "target": UNDERRUNS,
        "measured": auto["underruns"],
        "pinned_normal": normal["underruns"],
        "pass": ok,
    }


# --- the details ----------------------------------------------------------------------


def _ttfa_details(t: dict[str, Any]) -> None:
    series = t["series"]
    print(
        f"  time to first audio, ms: {t['plays']} plays by each speaker after "
        f"{t['warmup_plays']} warm-up ones, over {t['distinct_tracks']} tracks, every one cold "
        "(manifest forgotten; segments are never cached by the speaker); first segment at "
        f"{'/'.join(t['first_segment_quality'])}; the speakers take turns, the first rotating"
    )
    print(f"    {'':<52} {'n':>4} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}")
    rows = [(f"ours, {s['label']}", s["total"]) for s in series.values()]
    rows += [
        ("mpv URL (cold): start -> first audio byte", t["mpv_command"]),
        ("libmpv (warm): loadfile -> playback-restart", t["mpv"]),
        ("mpv: GET manifest (listener's token)", t["mpv_manifest"]),
        ("libmpv: manifest + loadfile -> restart", t["mpv_with_manifest"]),
    ]
    for label, s in rows:
        print(f"    {label:<52} {s.n:>4} {s.p50:>7.2f} {s.p90:>7.2f} {s.p99:>7.2f} {s.max:>7.2f}")
    print(
        "    ours: PUT /v1/me/player/play -> first frame; TLS is what a paired speaker does "
        "(MQTT over TLS, HTTPS on the hub's speaker port, the hub's CA pinned: the targets' "
        "figure); plain is MQTT on the embedded broker's plain listener and HTTP on the "
        "Web API port; 'new' closes the speaker's HTTP connection before each play (the hub "
        "closes idle ones after 5 s), so the manifest fetch opens one (TCP + TLS handshake)"
    )
    names = list(series)
    print(f"    {'where the time goes, ms (p50 / p99)':<54}" + "".join(f"{n:>17}" for n in names))
    for step in next(iter(series.values()))["breakdown_p50_ms"]:
        cells = [
            f"{series[n]['breakdown_p50_ms'][step]:.2f} / {series[n]['breakdown_p99_ms'][step]:.2f}"
            for n in names
        ]
        print(f"      {step:<52}" + "".join(f"{c:>17}" for c in cells))
    slow = "; ".join(
        f"{x['total']:g} = {x['command']:g} + {x['manifest']:g} + {x['segment']:g} + {x['after']:g}"
        for x in series[t["target_series"]]["slowest_ms"]
    )
    print(f"    slowest TLS plays, ms (total = command + manifest + segment + the rest): {slow}")
    print(
        f"    ({t['mpv_command_version']}: --no-config --ao=pcm into a FIFO, a new process per "
        f"play; libmpv {t['mpv_version']}, ao=null, in this process; alternating with our plays; "
        "both fetch a listener's signed URL over plain HTTP on the Web API port, as before TLS)"
    )


def _cpu_details(c: dict[str, Any]) -> None:
    print(
        f"  CPU, s: {c['audio_s'] / 60:.1f} min of very_high audio ({c['tracks']} tracks, "
        f"{c['segments']} segments), normalisation on, NullSink(fast=True); the least of "
        f"{c['repeats']} interleaved runs each (all runs in brackets); per-sample loops "
        + (
            "in C (device/audio/libpcm_native.so)"
            if c.get("native_pcm")
            else "in numpy (C library not built)"
        )
    )

    def runs(r: dict[str, Any]) -> str:
        return "[" + ", ".join(f"{x:.2f}" for x in r["all_cpu_s"]) + "]"

    base, decode, pyav = c["oggdec"], c["decoder_only"], c["pyav_decode_only"]
    print(f"    oggdec -Q -R (libvorbis):             {base['cpu_s']:.2f} {runs(base)}")
    print(f"    decode_segment alone (libvorbisfile): {decode['cpu_s']:.2f} {runs(decode)}")
    print(f"    PyAV (libavcodec) decode alone:       {pyav['cpu_s']:.2f} {runs(pyav)}")
    for key, how in (
        ("http", "engine, HTTPS from the hub:"),
        ("http_plain", "engine, plain HTTP from the hub:"),
        ("local", "engine, store files:"),
        ("local_one_cpu", "engine, store files, 1 CPU:"),
        ("local_numpy", "engine, store files, numpy path:"),
    ):
        run = c.get(f"engine_{key}")
        if run is None:
            continue
        threads = ", ".join(f"{k} {v:.2f}" for k, v in run["threads_cpu_s"].items())
        print(
            f"    {how:<35} {run['cpu_s']:.2f} {runs(run)} = x{run['cpu_s'] / base['cpu_s']:.2f} "
            f"oggdec, in {run['wall_s']:.1f} s ({run['speed_x_realtime']:g}x real time; "
            f"threads: {threads}; "
            f"hub {run['hub_cpu_s']:.2f}; the fast sink ran dry {run['underruns']} times)"
        )


def _rss_details(r: dict[str, Any]) -> None:
    print(
        f"  memory, MiB: three speaker processes (python -m device --sink null) playing "
        f"{r['seconds']:g} s in real time across a track join; VmRSS sampled every 0.25 s; "
        "paired (MQTT over TLS, HTTPS, the hub's CA pinned) but the one 'in clear' "
        "(--hub the Web API port, --broker the embedded broker's plain listener)"
    )
    for kind, label in (
        ("native", "--engine native"),
        ("clock", "--engine clock"),
        ("native_plain", "native, in clear"),
    ):
        e = r[kind]
        s = e["rss_samples_mib"]
        print(
            f"    {label:<16} VmHWM {e['vm_hwm_mib']:.1f}; VmRSS "
            f"{e['vm_rss_idle_mib']:.1f} online before playing, {s['min']:.1f}-{s['max']:.1f} "
            f"while playing, {e['vm_rss_end_mib']:.1f} at the end (anon {e['rss_anon_mib']:.1f}, "
            f"file {e['rss_file_mib']:.1f}); joined the next track: {e['joined_next_track']}"
        )


def _trace_details(t: dict[str, Any]) -> None:
    phases = " -> ".join(
        f"{p['kbps']} kbit/s for {p['to_s'] - p['from_s']:g} s" for p in t["phases"]
    )
    print(f"  bandwidth trace: {phases} (both links at once)")
    for label in ("auto", "normal"):
        lane = t[label]
        by_q = ", ".join(f"{q} {s:g}" for q, s in lane["played_by_quality_s"].items() if s)
        print(
            f"    {label:<7} {lane['underruns']} underruns, {lane['stalled_s']:g} s stalled; "
            f"played {lane['played_s']:g} s: {by_q}; {lane['bytes_down'] / 1e6:.1f} MB down"
        )
        if lane["errors"]:
            print(f"      errors: {lane['errors']}")
    print(
        "    timeline: segments fetched (L/N/H/V = low/normal/high/very_high), then at the "
        "window's end the buffer ahead, the throughput the engine estimates, underruns so far"
    )
    print(f"      {'t, s':>11} {'link':>6}  {'auto':<34} {'normal (pinned)':<34}")
    for row in t["timeline"]:
        cells = []
        for label in ("auto", "normal"):
            cell = row[label]
            text = (
                f"{cell['fetched'] or '-':<9} {cell['buffer_s']:>5.1f}s {cell['estimate_kbps']:>5}k"
            )
            if cell["underruns_so_far"]:
                text += f" u{cell['underruns_so_far']}"
            cells.append(f"{text:<34}")
        span = f"{row['from_s']:g}-{row['to_s']:g}"
        print(f"      {span:>11} {row['link_kbps']:>5}k  {cells[0]} {cells[1]}")


DETAILS = {
    "ttfa": _ttfa_details,
    "cpu": _cpu_details,
    "rss": _rss_details,
    "trace": _trace_details,
}
