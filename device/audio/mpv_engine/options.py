"""What the mpv engine tells mpv: output options per sink, volume, playlist entry URLs and
the filter chain (mono widened, loudness gain, limiter).  Pure: values in, strings out."""

from __future__ import annotations

import math
import re
from typing import Any

from connect_protocol.media import Manifest
from device.audio import dsp

SCHEME = "legato"
LIMITER_CEILING_DBFS = -1.0
_URL = re.compile(rf"^{SCHEME}://(\d+)/(\d+)/(\d+)$")


def mpv_volume(percent: int) -> float:
    """mpv's ``volume`` for a percentage: mpv's gain is ``(volume/100)**3``."""
    return float(100.0 * dsp.volume_gain(percent) ** (1.0 / 3.0))


def output_options(sink: str, rate: int, fast: bool) -> dict[str, Any]:
    """mpv options for a sink spec (``alsa[:PCM]``, ``file:PATH``, ``null``)."""
    common: dict[str, Any] = {
        "audio_format": "s16",
        "audio_samplerate": rate,
        "audio_channels": "stereo",
    }
    if sink == "null":
        return {"ao": "null", "ao_null_untimed": fast, **common}
    if sink.startswith("file:") and len(sink) > len("file:"):
        # append: mpv reopens the file when the output is reinitialised, and
        # must not truncate what was written before (the engine truncates once)
        return {
            "ao": "pcm",
            "ao_pcm_file": sink[len("file:") :],
            "ao_pcm_waveheader": False,
            "ao_pcm_append": True,
            **common,
        }
    if sink == "alsa" or (sink.startswith("alsa:") and len(sink) > len("alsa:")):
        pcm = sink[len("alsa:") :] if sink.startswith("alsa:") else "default"
        return {"ao": "alsa", "audio_device": f"alsa/{pcm}", **common}
    raise ValueError(f"unknown audio sink {sink!r}; expected alsa[:PCM], file:PATH or null")


def entry_url(gen: int, n: int, serial: int) -> str:
    """The playlist entry of segment ``n`` of plan item ``gen`` (``serial`` keeps it unique)."""
    return f"{SCHEME}://{gen}/{n}/{serial}"


def parse_entry_url(url: str) -> tuple[int, int] | None:
    """(gen, segment) of an entry URL; ``None`` for anything else."""
    m = _URL.match(url)
    return (int(m.group(1)), int(m.group(2))) if m else None


def quoted(value: str) -> str:
    """mpv's length-prefixed quoting, so commas inside a per-file option survive."""
    return f"%{len(value.encode())}%{value}"


def audio_filters(manifest: Manifest, normalisation: str, target_lufs: float) -> str:
    """Mono widened at full level, loudness gain, and a limiter when the gain
    would push the track's true peak over the ceiling ("" when none is needed)."""
    parts = []
    if any(r.channels == 1 for r in manifest.renditions):
        parts.append("pan=stereo|FL=FL+FC|FR=FR+FC")
    if normalisation != "off":
        loudness = manifest.loudness
        gain_db = dsp.normalisation_gain_db(loudness, normalisation, target_lufs)
        if abs(gain_db) >= 0.01:
            parts.append(f"volume={gain_db:.2f}dB")
        peak = loudness.track_peak_dbtp if normalisation == "track" else loudness.album_peak_dbtp
        if math.isfinite(peak) and peak + gain_db > LIMITER_CEILING_DBFS:
            limit = dsp.db_to_gain(LIMITER_CEILING_DBFS)
            parts.append(f"alimiter=limit={limit:.6f}:level=0:latency=1:attack=5:release=80")
    return f"lavfi=[{','.join(parts)}]" if parts else ""
