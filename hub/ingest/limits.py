"""What one file may cost an ingest: its duration and its worker's memory.

``IngestLimits`` travels with every file to its worker process.  A track longer
than ``max_duration_s`` fails as soon as its decoded frames pass the limit (the
container's own duration is not trusted); a worker's address space is limited to
``worker_memory_bytes`` (``RLIMIT_AS``), so a file that needs more fails alone.

The parsers take what an operator types (``3h``, ``90m``, ``1.5G``) and raise
``ValueError`` with the reason; the CLI turns that into a usage error.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

DEFAULT_MAX_DURATION_S = 3 * 3600.0
#: Sized for a Raspberry Pi: a streaming worker peaks near 200 MB resident, and
#: its imports (numpy, scipy, PyAV) map a few hundred MB more of address space.
DEFAULT_WORKER_MEMORY_BYTES = 1536 * 1024**2
MIN_WORKER_MEMORY_BYTES = 256 * 1024**2
DURATION_FLAG = "--max-duration"
MEMORY_FLAG = "--worker-memory"

_DURATION = re.compile(
    r"(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?"
)
_SIZE = re.compile(r"(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>[KMG])(?:i?B)?", re.IGNORECASE)
_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3}


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestLimits:
    max_duration_s: float = DEFAULT_MAX_DURATION_S
    worker_memory_bytes: int = DEFAULT_WORKER_MEMORY_BYTES

    def too_long(self) -> str:
        """Why a track over the duration limit failed, and how to change the limit."""
        return (
            f"longer than the {describe_duration(self.max_duration_s)} limit on a track"
            f" (change it with {DURATION_FLAG})"
        )

    def out_of_memory(self) -> str:
        """Why a file whose worker hit the memory limit failed."""
        return (
            f"the decoder ran out of memory (the worker's limit is"
            f" {describe_size(self.worker_memory_bytes)}; change it with {MEMORY_FLAG})"
        )


def parse_duration(text: str) -> float:
    """Seconds from ``3`` (hours), ``3h``, ``90m``, ``2h30m`` or ``5400s``."""
    cleaned = text.strip().lower().replace(" ", "")
    try:
        seconds = float(cleaned) * 3600.0
    except ValueError:
        match = _DURATION.fullmatch(cleaned)
        if not cleaned or match is None:
            raise ValueError(
                f"{text!r} is not a duration (hours, or e.g. 3h, 90m, 2h30m)"
            ) from None
        parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
        seconds = parts.get("h", 0.0) * 3600.0 + parts.get("m", 0.0) * 60.0 + parts.get("s", 0.0)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{text!r}: the duration must be more than zero")
    return seconds


def parse_size(text: str) -> int:
    """Bytes from ``1.5G``, ``800M`` or ``1536MiB`` (units of 1024)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a size (e.g. 1.5G or 800M)")
    size = int(float(match["n"]) * _UNITS[match["unit"].upper()])
    if size < MIN_WORKER_MEMORY_BYTES:
        raise ValueError(
            f"{text!r}: a worker needs at least {describe_size(MIN_WORKER_MEMORY_BYTES)}"
        )
    return size


def describe_duration(seconds: float) -> str:
    """``3 h``, ``1 h 30 min``, ``45 s``: whole seconds, largest units first."""
    whole = max(1, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v} {unit}" for v, unit in ((hours, "h"), (minutes, "min"), (secs, "s")) if v]
    return " ".join(parts)


def describe_size(size: int) -> str:
    """``1.5 GiB``, ``800 MiB``."""
    if size >= 1024**3:
        return f"{size / 1024**3:.3g} GiB"
    return f"{size / 1024**2:.4g} MiB"
