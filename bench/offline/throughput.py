"""Decrypt-and-read throughput: ``OfflineStore.get_segment`` against reading the plain file.

The same very_high segments (``--minutes`` of audio, the library in album order, again
from the start if it is shorter), read both ways in every pass, alternating per segment
which way goes first.  Three kinds of pass, each against its own plain baseline:

- (a) **hot**, bytes only: the files' pages are in the page cache (a warm-up pass read
  them all); ``get_segment`` (index lookup, licence check, blob read, AES-256-GCM open)
  against ``open(path, "rb").read()`` of the plain ``.ogg``;
- (b) **cold**: each file's pages are dropped (``posix_fadvise(..., POSIX_FADV_DONTNEED)``,
  on the blob and on the plain file) just before it is read, untimed: what a speaker
  whose cache is far bigger than its RAM sees;
- (c) **as the engine reads a segment**, hot: bytes whose integrity is proven, ready
  for the decoder.  A plain file proves nothing by itself, so the engine runs
  ``connect_protocol.ogg.check_segment`` (page CRCs, length) on it; a sealed blob is
  proven by its AES-GCM tag (its pages were checked once, before it was sealed), so
  ``CachedMedia`` hands it over as ``Authenticated`` and the engine skips the page
  check (``device.audio.source.needs_page_check``).  The issue's 10 % target is
  judged on this one.

Each kind runs ``--rounds`` passes, interleaved (a, b, c, a, b, c...); the figure is the
median pass.  The warm-up pass also checks that ``get_segment`` gives back exactly the
plain file's bytes.  Also measured on hot passes, to show where the cache path's time
goes: the blob's read alone and the AES-GCM open alone.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

from connect_protocol.ogg import check_segment
from device.audio.source import Authenticated, needs_page_check
from offline_cache import sealing
from offline_cache.store import OFFLINE

from . import pages
from .cache import ACCOUNT, Offline, Segment
from .common import QUALITY, BenchError, Options, Progress

KINDS = ("hot", "cold", "check")
LABELS = {
    "hot": "(a) hot page cache, bytes only",
    "cold": "(b) cold: pages evicted before each read",
    "check": "(c) as the engine reads: verified bytes (plain: + page check; cache: GCM tag)",
}


def plan(offline: Offline, minutes: float | None) -> list[Segment]:
    """The segments a pass reads: ``minutes`` of audio, the library over and over."""
    if minutes is None:
        return list(offline.segments)
    out: list[Segment] = []
    seconds = 0.0
    while seconds < minutes * 60:
        seg = offline.segments[len(out) % len(offline.segments)]
        out.append(seg)
        seconds += seg.seconds
    return out


def _read_plain(seg: Segment) -> bytes:
    with open(seg.plain, "rb") as f:
        return f.read()


def _pass(
    kind: str, segs: list[Segment], first: int, read_cache: Callable[[Segment], bytes]
) -> tuple[int, int]:
    """One pass of ``kind``: (plain ns, cache ns)."""
    totals = [0, 0]
    cold, check = kind == "cold", kind == "check"
    clock = time.perf_counter_ns
    for i, seg in enumerate(segs):
        for way in (0, 1) if (i + first) % 2 == 0 else (1, 0):
            if cold:
                pages.evict(seg.plain if way == 0 else seg.blob)
            t0 = clock()
            data = _read_plain(seg) if way == 0 else read_cache(seg)
            if check and needs_page_check(data):  # the engine's rule, as in native.py
                check_segment(data, seg.frames, seg.rendition)
            totals[way] += clock() - t0
    return totals[0], totals[1]


def _parts(offline: Offline, segs: list[Segment]) -> tuple[int, int]:
    """Hot: (ns reading the blobs alone, ns of AES-GCM opening them alone)."""
    store = offline.store
    key_of = {
        t: store._content_key(t, OFFLINE, ACCOUNT)  # the bench only times the cipher with it
        for t in {s.track_id for s in segs}
    }
    read_ns = open_ns = 0
    clock = time.perf_counter_ns
    for seg in segs:
        t0 = clock()
        with open(seg.blob, "rb") as f:
            blob = f.read()
        t1 = clock()
        sealing.open_segment(key_of[seg.track_id], seg.track_id, QUALITY.label, seg.n, blob)
        t2 = clock()
        read_ns, open_ns = read_ns + t1 - t0, open_ns + t2 - t1
    return read_ns, open_ns


def measure(offline: Offline, opts: Options, progress: Progress) -> dict[str, Any]:
    store = offline.store
    segs = plan(offline, opts.minutes)
    audio_s = sum(s.seconds for s in segs)
    nbytes = sum(s.plain.stat().st_size for s in segs)

    def read_cache(seg: Segment) -> bytes:
        data = store.get_segment(seg.track_id, QUALITY.label, seg.n)
        if data is None:
            raise BenchError(f"segment {seg.n} of {seg.track_id} is not in the store")
        return Authenticated(data)  # what CachedMedia hands the engine

    for seg in segs:  # warm-up: every page resident, and the bytes are the same
        if read_cache(seg) != _read_plain(seg):
            raise BenchError(f"get_segment gave other bytes for segment {seg.n} of {seg.track_id}")

    # the cold passes' eviction must take (it would not on tmpfs, for one)
    files = sorted({s.plain for s in segs} | {s.blob for s in segs})
    for path in files:
        pages.evict(path)
    resident_after_evict = pages.resident_fraction(files)
    for seg in segs:
        read_cache(seg)
        _read_plain(seg)

    runs: dict[str, list[tuple[int, int]]] = {k: [] for k in KINDS}
    parts: list[tuple[int, int]] = []
    for r in range(opts.rounds):
        for kind in KINDS:
            gc.collect()
            runs[kind].append(_pass(kind, segs, r, read_cache))
            progress.show(f"throughput: round {r + 1}/{opts.rounds}, {kind} pass")
        parts.append(_parts(offline, segs))
    progress.finish(
        f"throughput: {opts.rounds} rounds x {len(KINDS)} passes of {audio_s / 60:.1f} min"
    )

    out: dict[str, Any] = {
        "segments": len(segs),
        "distinct_segments": len({(s.track_id, s.n) for s in segs}),
        "audio_s": round(audio_s, 1),
        "plain_bytes": nbytes,
        "rounds": opts.rounds,
        "resident_after_evict": round(resident_after_evict, 4),
        "kinds": {},
    }
    for kind in KINDS:
        plain = statistics.median(p for p, _ in runs[kind]) / 1e9
        cache = statistics.median(c for _, c in runs[kind]) / 1e9
        per_round = sorted(c / p - 1 for p, c in runs[kind])
        out["kinds"][kind] = {
            "label": LABELS[kind],
            "plain_s": round(plain, 6),
            "cache_s": round(cache, 6),
            "plain_rtf": round(audio_s / plain, 1),
            "cache_rtf": round(audio_s / cache, 1),
            "plain_mb_s": round(nbytes / plain / 1e6, 1),
            "cache_mb_s": round(nbytes / cache / 1e6, 1),
            "overhead": round(cache / plain - 1, 4),
            "overhead_rounds_min_max": [round(per_round[0], 4), round(per_round[-1], 4)],
            "plain_us_per_segment": round(plain / len(segs) * 1e6, 1),
            "cache_us_per_segment": round(cache / len(segs) * 1e6, 1),
        }
    read_s = statistics.median(p for p, _ in parts) / 1e9
    open_s = statistics.median(o for _, o in parts) / 1e9
    hot = out["kinds"]["hot"]
    rest_us = hot["cache_us_per_segment"] - (read_s + open_s) / len(segs) * 1e6
    out["hot_cache_parts_us_per_segment"] = {
        "blob read": round(read_s / len(segs) * 1e6, 1),
        "AES-256-GCM open": round(open_s / len(segs) * 1e6, 1),
        "the rest (index lookup, licence check, paths, buffers)": round(rest_us, 1),
    }
    out["check_us_per_segment"] = round(
        out["kinds"]["check"]["plain_us_per_segment"] - hot["plain_us_per_segment"], 1
    )
    return out
