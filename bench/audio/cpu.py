"""CPU: what it costs the engine to play ``--minutes`` of ``very_high`` audio, against oggdec.

The engine (``NativeEngine``, pinned to ``very_high``, loudness normalisation per track as
by default, volume 50 %) plays the demo tracks back to back, as a queue, into a
``NullSink(fast=True)``: as fast as it will go, so the figure is CPU per audio played,
not per second waited.  Twice: with segments fetched from the hub process over HTTPS
(``HubMedia`` with the hub's CA pinned, as a paired speaker does), and read from the
media store's files (so the decode and DSP cost shows apart from HTTP).  A third run
fetches over plain HTTP (the Web API port), to show what TLS adds.  CPU is this
process's (``time.process_time``) over the run, and also per engine thread (producer:
fetch, decode, resample, gain, limiter, int16; sink: volume and writes) from
``/proc/self/task``.  Nothing else runs in this process meanwhile; the hub's CPU
(serving the segments) is shown on its own.

The baseline, in the same run: ``oggdec -Q -R -o /dev/null`` (vorbis-tools, libvorbis)
decoding the same ``very_high`` segment files, in the same order, to 16-bit PCM; its CPU
is the child's user + system time (``getrusage(RUSAGE_CHILDREN)``).  ``-R`` (raw) is what
lets oggdec take many inputs with one ``-o``.  Also, to tell decode from the rest: the
engine's decoder alone (``device.audio.decoder.decode_segment``: libvorbisfile through
ctypes) on the same segments, from memory; and PyAV (libavcodec's Vorbis decoder, which
the engine used before and gave up for its 17 MiB of resident memory) on them too.

The engine's per-sample loops run in C (``device/audio/pcm_native.c``, built by ``make``);
another engine run reads the files with them in numpy instead, as a speaker built
without a C compiler would, to show what the C library is worth.

A further engine run reads the files with the engine's two threads confined to one CPU: the
difference from the unconfined run is what the threads lose handing the GIL to each other
across cores (not a target; it says where the time goes).

Every measurement is made ``REPEATS`` times, interleaved, and the least CPU of each is
reported (with all of them): on a shared machine, other work only ever adds CPU time
(cache and frequency effects, GIL hand-offs under contention), never removes it.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import os
import resource
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from connect_protocol.media import Quality
from device.audio import dsp, pcm_native
from device.audio.decoder import decode_segment
from device.audio.native import EngineOptions
from device.audio.sinks import NullSink
from device.audio.source import SegmentSource
from hub.media import store

from .common import BenchError, Options, Progress, proc_cpu_s
from .material import Track
from .player import Sequencer
from .rig import Rig
from .sources import StoreFiles

RATE = 44100
REPEATS = 3  # each figure is the least CPU of this many runs
QUALITY = Quality.VERY_HIGH
_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def thread_cpu_s(tid: int) -> float:
    """User + system CPU seconds of one thread of this process."""
    try:
        stat = Path(f"/proc/self/task/{tid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * _TICK_S


def playlist(tracks: tuple[Track, ...], minutes: float) -> list[Track]:
    """Whole tracks, the library over and over, until there are ``minutes`` of audio."""
    out: list[Track] = []
    total = 0.0
    for track in itertools.cycle(tracks):
        if out and total >= minutes * 60:
            return out
        out.append(track)
        total += track.duration_ms / 1000
    raise AssertionError("unreachable")


def segment_files(data: Path, plan: list[Track]) -> list[Path]:
    return [
        store.segment_path(data, t.id, QUALITY, n)
        for t in plan
        for n in range(len(t.manifest.rendition(QUALITY).segments))
    ]


def expected_frames(plan: list[Track]) -> int:
    return sum(dsp.resampled_length(t.manifest.frames, t.manifest.sample_rate, RATE) for t in plan)


async def engine_run(
    rig: Rig,
    label: str,
    plan: list[Track],
    source: SegmentSource,
    progress: Progress,
    *,
    one_cpu: bool = False,
    numpy_path: bool = False,
) -> dict[str, Any]:
    """Play ``plan`` through a fresh engine as fast as it goes; its CPU and the hub's.

    ``one_cpu`` confines the engine's threads to one CPU (they inherit the affinity this
    thread has when it starts them), so they never wait for the GIL on another core.
    ``numpy_path`` runs it without the C library (``pcm_native``), as a speaker built
    with no C compiler would.
    """
    if numpy_path:
        os.environ[pcm_native.DISABLE_ENV] = "0"
        try:
            return await engine_run(rig, label, plan, source, progress, one_cpu=one_cpu)
        finally:
            del os.environ[pcm_native.DISABLE_ENV]
    sink = NullSink(RATE, fast=True)
    affinity = os.sched_getaffinity(0)
    if one_cpu:
        os.sched_setaffinity(0, {min(affinity)})
    try:
        seq = Sequencer(
            [t.ref() for t in plan],
            source=source,
            sink=sink,
            options=EngineOptions(quality="very_high"),
        )
    finally:
        os.sched_setaffinity(0, affinity)
    seq.on_track = lambda i: progress.show(f"CPU, {label}: track {i}/{len(plan)}")
    audio_s = sum(t.duration_ms for t in plan) / 1000
    try:
        threads0 = {name: thread_cpu_s(tid) for name, tid in seq.threads.items()}
        hub0 = proc_cpu_s(rig.hub_pid)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        seq.start()
        try:
            await asyncio.wait_for(seq.done.wait(), 60 + audio_s)  # never slower than real time
        except TimeoutError:
            raise BenchError(f"CPU, {label}: {seq.index}/{len(plan)} tracks played") from None
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        hub = proc_cpu_s(rig.hub_pid) - hub0
        threads = {name: thread_cpu_s(tid) - threads0[name] for name, tid in seq.threads.items()}
    finally:
        await asyncio.to_thread(seq.close)
    progress.finish(f"CPU, {label}: {len(plan)} tracks in {wall:.1f} s")
    if seq.log.errors():
        raise BenchError(f"CPU, {label}: the engine reported {seq.log.errors()[0]}")
    if sink.frames_written != expected_frames(plan):
        raise BenchError(
            f"CPU, {label}: {sink.frames_written} frames written, {expected_frames(plan)} expected"
        )
    return {
        "cpu_s": round(cpu, 3),
        "threads_cpu_s": {k: round(v, 2) for k, v in threads.items()},
        "hub_cpu_s": round(hub, 2),
        "wall_s": round(wall, 2),
        "speed_x_realtime": round(audio_s / wall, 1),
        "frames_written": sink.frames_written,
        # the fast sink outruns the producer at every segment: each is an "underrun"
        "underruns": seq.log.underruns(),
    }


def oggdec(files: list[Path]) -> dict[str, Any]:
    exe = shutil.which("oggdec")
    if exe is None:
        raise BenchError("oggdec is not installed (vorbis-tools; make system-deps)")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([exe, "-Q", "-R", "-o", "/dev/null", *map(str, files)], check=True, timeout=600)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return {"cpu_s": round(cpu, 3), "wall_s": round(wall, 2)}


def decoder_only(plan: list[Track], blobs: list[bytes]) -> dict[str, Any]:
    """The engine's decoder on the same segments from memory: the floor under its figure."""
    shapes = [
        (seg.frames, t.manifest.rendition(QUALITY).channels)
        for t in plan
        for seg in t.manifest.rendition(QUALITY).segments
    ]
    cpu0 = time.process_time()
    for blob, (frames, channels) in zip(blobs, shapes, strict=True):
        decode_segment(blob, frames, channels)
    return {"cpu_s": round(time.process_time() - cpu0, 3)}


def pyav_only(blobs: list[bytes]) -> dict[str, Any]:
    """libavcodec's Vorbis decoder (PyAV) on the same segments, for comparison."""
    import av

    cpu0 = time.process_time()
    for blob in blobs:
        with av.open(io.BytesIO(blob), mode="r", format="ogg") as container:
            for _frame in container.decode(audio=0):
                pass
    return {"cpu_s": round(time.process_time() - cpu0, 3)}


async def measure(rig: Rig, opts: Options, progress: Progress) -> dict[str, Any]:
    plan = playlist(rig.library.tracks, opts.minutes)
    files = segment_files(rig.data, plan)
    blobs = [f.read_bytes() for f in files]  # the decoders alone read from memory
    audio_s = sum(t.duration_ms for t in plan) / 1000
    cfg = rig.login("bench-cpu")
    manifests = {t.id: t.manifest for t in rig.library.tracks}
    runs: dict[str, list[dict[str, Any]]] = {
        "oggdec": [],
        "decoder": [],
        "pyav": [],
        "http": [],
        "http_plain": [],
        "local": [],
        "local_one_cpu": [],
        "local_numpy": [],
    }
    for k in range(REPEATS):  # interleaved, so a burst of load elsewhere hits all alike
        progress.show(f"CPU: oggdec on {len(files)} segments ({k + 1}/{REPEATS})", force=True)
        runs["oggdec"].append(await asyncio.to_thread(oggdec, files))
        runs["decoder"].append(await asyncio.to_thread(decoder_only, plan, blobs))
        runs["pyav"].append(await asyncio.to_thread(pyav_only, blobs))
        runs["http"].append(
            await engine_run(rig, f"HTTPS {k + 1}/{REPEATS}", plan, rig.media(cfg), progress)
        )
        plain = rig.media(cfg, tls=False)
        runs["http_plain"].append(
            await engine_run(rig, f"plain HTTP {k + 1}/{REPEATS}", plan, plain, progress)
        )
        local = StoreFiles(rig.data, manifests)
        runs["local"].append(
            await engine_run(rig, f"files {k + 1}/{REPEATS}", plan, local, progress)
        )
        if pcm_native.native() is not None:
            local = StoreFiles(rig.data, manifests)
            label = f"files, numpy path {k + 1}/{REPEATS}"
            runs["local_numpy"].append(
                await engine_run(rig, label, plan, local, progress, numpy_path=True)
            )
        if len(os.sched_getaffinity(0)) > 1:
            local = StoreFiles(rig.data, manifests)
            label = f"files, 1 CPU {k + 1}/{REPEATS}"
            runs["local_one_cpu"].append(
                await engine_run(rig, label, plan, local, progress, one_cpu=True)
            )
    best = {key: _best(values) for key, values in runs.items() if values}
    return {
        "audio_s": round(audio_s, 1),
        "tracks": len(plan),
        "segments": len(files),
        "repeats": REPEATS,
        "oggdec": best["oggdec"],
        "decoder_only": best["decoder"],
        "pyav_decode_only": best["pyav"],
        "engine_http": best["http"],
        "engine_http_plain": best["http_plain"],
        "engine_local": best["local"],
        "engine_local_one_cpu": best.get("local_one_cpu"),
        "engine_local_numpy": best.get("local_numpy"),
        "native_pcm": pcm_native.native() is not None,
        "ratio_http": round(best["http"]["cpu_s"] / best["oggdec"]["cpu_s"], 2),
        "ratio_http_plain": round(best["http_plain"]["cpu_s"] / best["oggdec"]["cpu_s"], 2),
        "ratio_local": round(best["local"]["cpu_s"] / best["oggdec"]["cpu_s"], 2),
    }


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the least CPU (the least disturbed), with every run's CPU beside it."""
    best = dict(min(runs, key=lambda r: float(r["cpu_s"])))
    best["all_cpu_s"] = [r["cpu_s"] for r in runs]
    return best
