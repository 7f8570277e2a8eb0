"""``Aligner``: how far a member's output is from the group's timeline, and what to do.

Called by the sink thread before each block it writes, with the error in
frames: ``error = (track frame about to be written) - (frame the anchor says
should be heard when it is)``.  Positive: this member is ahead.

- **Starting** (first audio after a load, seek, resume or rejoin) it aligns at
  once and exactly: silence for the frames it is early, or skips the audio it
  is late.  Nothing is heard yet, so nothing is heard jump.
- **Playing** it corrects continuously: a PI loop turns the error into a rate
  (frames per second to insert or remove, at most ``max_rate`` of the rate,
  0.5 %), carried out as single frames spread through the blocks, never two
  next to each other.  Only an error past ``hard_ms`` (an underrun, a stall)
  is re-aligned at once, as at a start.

Pure: values in, a ``Step`` out; ``apply_adjust`` does the frame surgery.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True, kw_only=True)
class AlignPolicy:
    hard_ms: float = 8.0  # past this while playing: re-align at once (a stall, not drift)
    max_rate: float = 0.005  # soft corrections: at most 0.5 % of the rate
    settle_s: float = 2.0  # the PI loop's time constant: an error halves in about this
    deadband_frames: float = 0.5  # below this the loop leaves the integrator alone
    learn_s: float = 3.0  # after a first start, fit the DAC's drift over this long, once

    @property
    def kp(self) -> float:
        return 1.0 / self.settle_s

    @property
    def ki(self) -> float:
        return self.kp * self.kp / 4.0  # critically damped


@dataclass(frozen=True, slots=True)
class Step:
    """What to do with the next block: at most one of ``silence``/``skip``, then
    ``adjust`` (frames to insert, +, or remove, -) spread through the block."""

    silence: int = 0
    skip: int = 0
    adjust: int = 0
    hard: bool = False  # a re-alignment at once (counted: it is not steady state)


class Aligner:
    """The per-member correction state: integrator and fractional frames owed."""

    def __init__(self, rate: int, policy: AlignPolicy | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.policy = policy or AlignPolicy()
        self.started = False
        self._integral = 0.0  # frames*s: the constant part of the drift, learned
        self._owed = 0.0  # fractional frames to insert (+) or remove (-) still due
        self.hard_corrections = 0
        self.frames_inserted = 0
        self.frames_removed = 0
        self.learned = False  # the drift was fitted (it belongs to the DAC: kept across starts)
        self._trace: list[tuple[float, float]] = []  # (time, error had nothing been corrected)
        self._elapsed = 0.0
        self._applied = 0  # frames inserted less frames removed since the trace began

    def restart(self) -> None:
        """A new start (load, seek, resume, new clock): align at once again; keep the learned
        drift, which belongs to the DAC's crystal and does not change with the music."""
        self.started = False
        self._owed = 0.0
        self._trace.clear()

    def step(self, error_frames: float, block_frames: int) -> Step:
        """The correction for the next block of ``block_frames`` frames."""
        p = self.policy
        if not math.isfinite(error_frames):
            raise ValueError("error must be finite")
        hard_frames = p.hard_ms * self.rate / 1000.0
        if not self.started or abs(error_frames) > hard_frames:
            hard = self.started
            self.started = True
            self._owed = 0.0
            self._trace.clear()
            whole = round(error_frames)
            if hard:
                self.hard_corrections += 1
            if whole > 0:
                return Step(silence=whole, hard=hard)
            if whole < 0:
                return Step(skip=-whole, hard=hard)
            return Step(hard=hard)
        dt = block_frames / self.rate
        self._learn(error_frames, dt)
        if abs(error_frames) > p.deadband_frames:
            self._integral += error_frames * dt
        limit = p.max_rate * self.rate  # frames per second
        # anti-windup: the integrator alone never asks for more than the limit
        self._integral = max(-limit / p.ki, min(limit / p.ki, self._integral))
        rate = p.kp * error_frames + p.ki * self._integral  # frames/s to insert (+)
        rate = max(-limit, min(limit, rate))
        self._owed += rate * dt
        cap = max(1, math.floor(block_frames * p.max_rate)) if block_frames else 0
        adjust = int(self._owed)  # toward zero: only whole frames
        adjust = max(-cap, min(cap, adjust))
        self._owed -= adjust
        self._applied += adjust
        if adjust > 0:
            self.frames_inserted += adjust
        elif adjust < 0:
            self.frames_removed -= adjust
        return Step(adjust=adjust)

    def _learn(self, error_frames: float, dt: float) -> None:
        """Once, ``learn_s`` after the first start: the slope of the error as it would have
        been uncorrected is the DAC's drift; start the integrator there, so a crystal
        hundreds of ppm off is followed in seconds instead of the PI loop's tens."""
        if self.learned:
            return
        if not self._trace:
            self._elapsed, self._applied = 0.0, 0
        self._elapsed += dt
        self._trace.append((self._elapsed, error_frames + self._applied))
        if self._elapsed < self.policy.learn_s or len(self._trace) < 8:
            return
        n = len(self._trace)
        mean_t = sum(t for t, _ in self._trace) / n
        mean_u = sum(u for _, u in self._trace) / n
        stt = sum((t - mean_t) ** 2 for t, _ in self._trace)
        slope = sum((t - mean_t) * (u - mean_u) for t, u in self._trace) / stt  # frames/s
        limit = self.policy.max_rate * self.rate
        self._integral = max(-limit, min(limit, slope)) / self.policy.ki
        self.learned = True
        self._trace.clear()

    @property
    def drift_ppm(self) -> float:
        """The learned constant correction, in ppm of the rate (the DAC's offset)."""
        return self.policy.ki * self._integral / self.rate * 1e6


def apply_adjust(pcm: NDArray[np.int16], adjust: int) -> NDArray[np.int16]:
    """``pcm`` (frames, 2) with ``adjust`` single frames inserted (+) or removed (-), spread
    evenly and never at the edges: an inserted frame is the mean of its neighbours, a
    removed pair of frames becomes their mean, so no sample steps further than the
    music already does."""
    frames = pcm.shape[0]
    if adjust == 0 or frames < 2:
        return pcm
    count = abs(adjust)
    # an insertion needs a frame either side; a removal, a kept frame between merged pairs
    if count >= (frames // 2 if adjust > 0 else frames // 3):
        raise ValueError(f"cannot adjust {count} frames in a block of {frames}")
    # positions strictly inside the block, evenly spread
    at = [(i + 1) * frames // (count + 1) for i in range(count)]
    work = pcm.astype(np.int32)
    pieces: list[NDArray[np.int32]] = []
    prev = 0
    for pos in at:
        if adjust > 0:  # a new frame between pos-1 and pos
            pieces.append(work[prev:pos])
            pieces.append(((work[pos - 1] + work[pos]) // 2)[None, :])
            prev = pos
        else:  # frames pos-1 and pos become their mean
            pieces.append(work[prev : pos - 1])
            pieces.append(((work[pos - 1] + work[pos]) // 2)[None, :])
            prev = pos + 1
    pieces.append(work[prev:])
    return np.concatenate(pieces).astype(np.int16)
