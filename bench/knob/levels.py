"""Pure: the tone's level per period of 64 frames, and where it leaves one level for another.

The speaker ramps a volume change over one block of 512 frames, so the first block with
the new gain is the one where the level leaves the old one: its level moves at once
and reaches the new one by the block's end.  A detent's change is found as the first
window, arriving after the detent was sent (and before the next one), whose level is
off the old level by a quarter of the step towards the new one, and which the level
then follows to within a quarter step of the new one within ``SETTLE_WINDOWS``.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from device.audio.dsp import volume_gain

from .tone import PERIOD_FRAMES

BYTES_PER_FRAME = 4  # S16LE stereo
WINDOW_BYTES = PERIOD_FRAMES * BYTES_PER_FRAME
SETTLE_WINDOWS = 24  # 3 blocks: the ramp's block, and margin for reads split mid-block
BEFORE_WINDOWS = 8  # the old level: the median of this many windows before the detent
SILENT_DB = -90.0


def window_levels_db(data: bytes) -> list[float]:
    """The left channel's RMS level (dBFS) of each whole window in ``data``."""
    n = len(data) // WINDOW_BYTES
    if n == 0:
        return []
    pcm = np.frombuffer(data[: n * WINDOW_BYTES], dtype="<i2").reshape(n, PERIOD_FRAMES, 2)
    left = pcm[:, :, 0].astype(np.float64) / 32768.0
    rms = np.sqrt(np.mean(left * left, axis=1))
    out: list[float] = np.maximum(20 * np.log10(np.maximum(rms, 1e-12)), SILENT_DB).tolist()
    return out


def step_db(old_percent: int, new_percent: int) -> float:
    """How far the level moves between two volumes (the speaker's software volume)."""
    return 20 * math.log10(volume_gain(new_percent) / volume_gain(old_percent))


@dataclass(frozen=True, slots=True)
class Found:
    """Where one volume change reached the sink."""

    at_ns: int  # arrival of the first window whose level left the old one
    old_db: float
    new_db: float  # the level settled at (median of the windows after the change)
    expected_db: float  # old_db + the step the two volumes make


def find_change(
    at_ns: Sequence[int],
    level_db: Sequence[float],
    sent_ns: int,
    until_ns: int,
    old_percent: int,
    new_percent: int,
) -> Found | None:
    """The change ``old_percent`` -> ``new_percent`` sent at ``sent_ns``, as the sink had it.

    ``at_ns`` (rising) and ``level_db`` are the windows as read; only windows that
    arrived after ``sent_ns`` and before ``until_ns`` (the next change) count.  None
    when the level never leaves the old one, or leaves it for a level it does not keep.
    """
    first = bisect_left(at_ns, sent_ns)
    if first < BEFORE_WINDOWS:
        return None
    old_db = float(np.median(level_db[first - BEFORE_WINDOWS : first]))
    step = step_db(old_percent, new_percent)
    quarter = abs(step) / 4
    direction = 1.0 if step > 0 else -1.0
    expected = old_db + step
    end = bisect_left(at_ns, until_ns)
    for i in range(first, end):
        if (level_db[i] - old_db) * direction < quarter:
            continue
        after = level_db[i + 1 : i + 1 + SETTLE_WINDOWS]
        if len(after) < SETTLE_WINDOWS:
            return None  # the run ended before the level could settle
        settled = float(np.median(after[-BEFORE_WINDOWS:]))  # the last block: settled
        if abs(settled - expected) > quarter:
            return None
        return Found(at_ns[i], old_db, settled, expected)
    return None
