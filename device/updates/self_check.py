"""What "able to play" means for a release in trial, checked without making a sound.

Each check exercises a part a listener would miss, through the code that plays:

* ``decoder``: libvorbisfile loads and decodes a tiny Ogg Vorbis shipped with the
  release (``self_check.ogg``, 0.5 s of a 440 Hz tone) to exactly its length, and
  the audio is there (not silence, nothing non-finite);
* ``sink``: the configured output opens, as the engine opens it, and takes 50 ms of
  silence (skipped when the engine keeps time over silence: the clock engine, or a
  speaker not paired);
* ``cache``: the offline cache's index can be read (when the speaker keeps one);
* ``state``: the update state directory is writable (the verdict goes there).

The configuration itself was read and validated before any of this ran: a release
that cannot read it stops at start, which the guard counts.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from device.config import SpeakerConfig
from device.engine_factory import configured_sink, plays_through_sink

if TYPE_CHECKING:
    from offline_cache.store import OfflineStore

logger = logging.getLogger(__name__)

SAMPLE = "self_check.ogg"
SAMPLE_FRAMES = 11025  # 0.5 s at 22050 Hz, mono
SINK_SILENCE_S = 0.05
SINK_ATTEMPTS = 3  # a device busy for a moment (the old release letting go) is retried
SINK_RETRY_S = 1.0


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str = ""


def check_decoder(sample: bytes | None = None) -> CheckResult:
    from device.audio.decoder import DecodeFailedError, decode_segment

    try:
        data = sample if sample is not None else sample_bytes()
        pcm = decode_segment(data, SAMPLE_FRAMES, 1)
    except (DecodeFailedError, OSError) as exc:
        return CheckResult("decoder", False, str(exc))
    if pcm.shape != (SAMPLE_FRAMES, 1) or not np.isfinite(pcm).all():
        return CheckResult("decoder", False, f"decoded to {pcm.shape}, not the tone")
    peak = float(np.abs(pcm).max())
    if peak < 0.1:
        return CheckResult("decoder", False, f"decoded to near silence (peak {peak:.3f})")
    return CheckResult("decoder", True, f"{SAMPLE_FRAMES} frames, peak {peak:.2f}")


def sample_bytes() -> bytes:
    return resources.files("device.updates").joinpath(SAMPLE).read_bytes()


def check_sink(config: SpeakerConfig, sleep: Callable[[float], None] = time.sleep) -> CheckResult:
    from device.audio.sinks import SinkError

    if not plays_through_sink(config):
        return CheckResult("sink", True, "skipped: this engine keeps time over silence")
    error = ""
    for attempt in range(SINK_ATTEMPTS):
        if attempt:
            sleep(SINK_RETRY_S)
        try:
            sink = configured_sink(config, fast=True)
            try:
                frames = int(config.sample_rate * SINK_SILENCE_S)
                sink.write(np.zeros((frames, 2), np.int16))
            finally:
                sink.close()
            return CheckResult("sink", True, f"{config.sink} took {frames} frames of silence")
        except (SinkError, OSError) as exc:
            error = str(exc)
    return CheckResult("sink", False, f"{config.sink}: {error}")


def check_cache(store: OfflineStore | None) -> CheckResult:
    import sqlite3

    from offline_cache.store import StoreError

    if store is None:
        return CheckResult("cache", True, "skipped: this speaker keeps no offline cache")
    try:
        tracks = len(store.tracks())
        held = store.stream_bytes()
    except (sqlite3.Error, StoreError, OSError) as exc:
        return CheckResult("cache", False, str(exc))
    return CheckResult("cache", True, f"{tracks} tracks, {held} bytes streamed")


def check_state_dir(state_dir: Path) -> CheckResult:
    probe = state_dir / f".self-check.{os.getpid()}"
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        probe.write_text("ok\n")
        probe.unlink()
    except OSError as exc:
        return CheckResult("state", False, f"{state_dir}: {exc.strerror or exc}")
    return CheckResult("state", True, str(state_dir))


def run_checks(
    config: SpeakerConfig, store: OfflineStore | None, state_dir: Path
) -> list[CheckResult]:
    """Every check, in order, each whatever the others gave (for the log)."""
    results = [
        check_decoder(),
        check_sink(config),
        check_cache(store),
        check_state_dir(state_dir),
    ]
    for r in results:
        logger.info("self-check %s: %s (%s)", r.name, "ok" if r.ok else "FAILED", r.detail)
    return results


def failure_reason(results: list[CheckResult]) -> str | None:
    """``self-check failed: ...`` naming every failed check, or None when all passed."""
    failed = [f"{r.name}: {r.detail}" for r in results if not r.ok]
    return "self-check failed: " + "; ".join(failed)[:400] if failed else None
