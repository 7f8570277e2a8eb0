"""Ingest memory benchmark: a worker's peak memory does not grow with the track's length.

Why this exists: ingest used to decode a whole track into one float array (1.3 GB
per hour of 44.1 kHz stereo), so a long file, or a tiny FLAC of hours of silence,
could take the hub's memory.  It now decodes and encodes a block at a time in
worker processes.  This generates tracks of two lengths (default 10 and 60
minutes of 44.1 kHz stereo FLAC) and encodes each in a real ingest worker
(``hub.ingest.processes``: spawned, under the default memory limit) doing what
``legato-hub ingest`` does per file (``encode_file``: check pass, loudness, the
four-quality ladder into a scratch store), and reports the worker's peak resident
memory (``VmHWM``).  The baseline, measured in the same run on the same files in
the same kind of worker, is the whole-array decode (``hub.ingest.decode.decode``)
that ingest did before any other step; and a worker at rest (imports only).

It prints each peak, the streamed/baseline ratio, and the peak added per hour of
audio from the shortest to the longest track (streamed and baseline).  It also
times the audio features ingest measures (``hub.ingest.features.FeatureMeter``):
a pass that decodes in blocks and feeds only the meter, less a pass that only
decodes, per minute of audio, beside the whole ingest's time per minute.

Run: ``make bench`` (10 and 60 minutes: about 4 minutes on 2 cores), or e.g.
``.venv/bin/python bench/ingest_memory.py --minutes 1 6``.  The exit status is
non-zero only if an ingest fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from hub.ingest.decode import PcmReader, decode
from hub.ingest.features import FeatureMeter
from hub.ingest.limits import DEFAULT_WORKER_MEMORY_BYTES, IngestLimits
from hub.ingest.model import Encoded
from hub.ingest.processes import Lost, WorkerPool
from hub.ingest.worker import encode_file

RATE = 44_100
UNLIMITED = 1 << 40  # the baseline decode would not fit the default limit at an hour


def write_track(path: Path, minutes: float) -> Path:
    """Chords of sines with a little noise, written ten seconds at a time."""
    rng = np.random.default_rng(7)
    chunk = RATE * 10
    with sf.SoundFile(path, "w", RATE, 2, format="FLAC", subtype="PCM_16") as out:
        for k in range(round(minutes * 6)):
            t = (np.arange(chunk) + k * chunk) / RATE
            root = 110.0 * 2.0 ** (((k * 5) % 24) / 12.0)
            wave = sum(0.12 * np.sin(2 * np.pi * root * r * t) for r in (1.0, 1.25, 1.5, 2.0))
            wave = wave + 0.003 * rng.standard_normal(chunk)
            out.write(np.stack([wave, np.roll(wave, 40)], axis=1).astype(np.float32))
    return path


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def measure(job: tuple[str, str, str]) -> dict[str, Any]:
    """In a worker: do one kind of work on one file, then report this process's peak."""
    kind, path, data_dir = job
    started = time.perf_counter()
    if kind == "stream":
        outcome = encode_file(Path(path), f"bench-{Path(path).stem}", Path(data_dir))
        if not isinstance(outcome, Encoded):
            raise RuntimeError(f"ingest failed: {outcome}")
    elif kind == "whole":
        decode(Path(path))
    elif kind in ("decode", "features"):
        with PcmReader(Path(path), limits=IngestLimits()) as reader:
            meter = FeatureMeter(reader.rate, reader.channels)
            for block in reader.blocks():
                if kind == "features":
                    meter.feed(block)
            meter.result()
    return {
        "hwm_mib": _status_kib("VmHWM") / 1024,
        "vm_peak_mib": _status_kib("VmPeak") / 1024,
        "seconds": time.perf_counter() - started,
    }


def in_worker(kind: str, path: Path, scratch: Path, memory_bytes: int) -> dict[str, Any]:
    with WorkerPool(1, memory_bytes=memory_bytes) as pool:  # a fresh worker each time
        [(_job, answer)] = pool.run(measure, [(kind, str(path), str(scratch))])
    if isinstance(answer, Lost):
        raise RuntimeError(f"{kind} on {path.name}: {answer.reason}")
    return answer


def run(minutes: list[float], workdir: Path) -> dict[str, Any]:
    rest = in_worker("idle", Path("-"), workdir, DEFAULT_WORKER_MEMORY_BYTES)
    rows = []
    for length in minutes:
        path = write_track(workdir / f"{length:g}min.flac", length)
        limits = IngestLimits()
        stream = in_worker("stream", path, workdir / "store", limits.worker_memory_bytes)
        whole = in_worker("whole", path, workdir / "store", UNLIMITED)
        decoded = in_worker("decode", path, workdir, limits.worker_memory_bytes)
        featured = in_worker("features", path, workdir, limits.worker_memory_bytes)
        features_s = max(featured["seconds"] - decoded["seconds"], 0.0)
        rows.append(
            {
                "minutes": length,
                "file_mb": path.stat().st_size / 1e6,
                "streamed": stream,
                "whole_array_decode": whole,
                "speed_x_real_time": length * 60 / stream["seconds"],
                "features_s_per_min": features_s / length,
                "ingest_s_per_min": stream["seconds"] / length,
            }
        )
        path.unlink()
    return {"worker_at_rest": rest, "tracks": rows}


def report(figures: dict[str, Any]) -> dict[str, Any]:
    rows = figures["tracks"]
    print(f"\ningest worker peak memory (VmHWM, MiB), {RATE / 1000:g} kHz stereo FLAC")
    print(f"{'track':>8} {'file':>8} {'streamed':>9} {'baseline':>9} {'ratio':>6} {'speed':>8}")
    print(f"{'':>8} {'':>8} {'ingest':>9} {'decode':>9} {'':>6} {'(ingest)':>8}")
    for row in rows:
        ours, base = row["streamed"]["hwm_mib"], row["whole_array_decode"]["hwm_mib"]
        print(
            f"{row['minutes']:>5g} min {row['file_mb']:>5.0f} MB {ours:>9.1f} {base:>9.1f}"
            f" {ours / base:>6.2f} {row['speed_x_real_time']:>7.1f}x"
        )
    print(f"worker at rest (imports only): {figures['worker_at_rest']['hwm_mib']:.1f} MiB")
    for row in rows:
        features, ingest = row["features_s_per_min"], row["ingest_s_per_min"]
        print(
            f"audio features, {row['minutes']:g} min track: {features:.2f} s per minute of audio"
            f" (beyond decoding), the whole ingest {ingest:.2f} s: {100 * features / ingest:.1f} %"
        )
    first, last = rows[0], rows[-1]
    hours = float(last["minutes"] - first["minutes"]) / 60

    def per_hour(kind: str) -> float:
        return (float(last[kind]["hwm_mib"]) - float(first[kind]["hwm_mib"])) / hours

    ours, base = per_hour("streamed"), per_hour("whole_array_decode")
    print(
        f"peak added per hour of audio ({first['minutes']:g} to {last['minutes']:g} min):"
        f" streamed {ours:.1f} MiB/h, baseline {base:.0f} MiB/h"
    )
    return {**figures, "streamed_mib_per_hour": ours, "baseline_mib_per_hour": base}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Ingest worker memory against track length.")
    p.add_argument(
        "--minutes",
        type=float,
        nargs="+",
        default=[10.0, 60.0],
        help="track lengths to ingest, shortest first (10 60)",
    )
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    if len(args.minutes) < 2 or sorted(args.minutes) != args.minutes or args.minutes[0] <= 0:
        p.error("--minutes: two or more lengths, shortest first")
    with tempfile.TemporaryDirectory(prefix="legato-ingest-bench-") as tmp:
        figures = run(args.minutes, Path(tmp))
    figures = report(
        {
            **figures,
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "load_1min_at_start": round(os.getloadavg()[0], 2),
            },
        }
    )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
