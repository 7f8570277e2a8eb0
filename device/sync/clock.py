"""``ClockFilter``: a follower's estimate of the leader's clock, from NTP-style exchanges.

One exchange: the follower sends at its ``t1``, the leader receives at its
``t2`` and answers at ``t3``, the follower receives at ``t4``.  The offset
(leader minus follower) is ``((t2 - t1) + (t3 - t4)) / 2``, wrong by at most
half the round trip's asymmetry; the round trip's own delay
``(t4 - t1) - (t3 - t2)`` says how much to trust it.  Network jitter only ever
adds delay, so each way's least delay over a window of
recent exchanges is that way's floor: the offset is half the difference of
the two floors (``_floor_offset``), which does not care how differently the
two ways jitter.  The rate difference between the clocks comes from the
floors of the window's two halves, and is taken out before the minima; once
half a minute of exchanges is in, both come from a longer view instead: every
32 exchanges become one floor point, the rate is a straight line through up to
64 of them (minutes: its noise shrinks with the span), and the offset is the
mean of the latest four, brought to now.  Pure: the
caller supplies every timestamp.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Exchange:
    t1: int  # follower sent (follower clock, ns)
    t2: int  # leader received (leader clock)
    t3: int  # leader answered (leader clock)
    t4: int  # follower received (follower clock)

    @property
    def delay_ns(self) -> int:
        return (self.t4 - self.t1) - (self.t3 - self.t2)

    @property
    def offset_ns(self) -> float:
        return ((self.t2 - self.t1) + (self.t3 - self.t4)) / 2

    @property
    def local_ns(self) -> float:
        """When it was taken, on the follower's clock (the middle of the round trip)."""
        return (self.t1 + self.t4) / 2


@dataclass(frozen=True, slots=True)
class Estimate:
    offset_ns: float  # leader - follower at ``ref_ns``
    ref_ns: float  # follower clock
    skew: float  # d(offset)/d(follower time): the leader's clock rate minus ours
    samples: int

    def leader_ns(self, local_ns: int) -> int:
        """The leader's clock when ours reads ``local_ns``."""
        return round(local_ns + self.offset_ns + self.skew * (local_ns - self.ref_ns))


class ClockFilter:
    """Exchanges in, an ``Estimate`` out (``None`` until ``min_samples`` are in)."""

    def __init__(
        self,
        *,
        window: int = 256,
        min_samples: int = 4,
        min_span_ns: int = 6_000_000_000,
        max_delay_ns: int = 500_000_000,
        max_skew: float = 500e-6,
        block: int = 32,
        blocks: int = 64,
        long_span_ns: int = 30_000_000_000,
    ) -> None:
        self._window: deque[Exchange] = deque(maxlen=window)
        self.min_samples = min_samples
        self.min_span_ns = min_span_ns  # a rate needs seconds between the window's halves
        self.max_delay_ns = max_delay_ns
        self.max_skew = max_skew
        self.estimate: Estimate | None = None
        self.refused = 0
        #: each run of ``block`` exchanges reduced to its floor offset: (middle, offset)
        self.block = block
        self._blocks: deque[tuple[float, float]] = deque(maxlen=blocks)
        self._since_block = 0
        self.long_span_ns = long_span_ns

    def reset(self) -> None:
        """A new leader: its clock has nothing to do with the old one's."""
        self._window.clear()
        self._blocks.clear()
        self._since_block = 0
        self.estimate = None

    def add(self, ex: Exchange) -> Estimate | None:
        """Take one exchange (a nonsensical one is refused and counted); return the estimate."""
        if ex.t4 < ex.t1 or ex.t3 < ex.t2 or not 0 <= ex.delay_ns <= self.max_delay_ns:
            self.refused += 1
            return self.estimate
        self._window.append(ex)
        self._since_block += 1
        if len(self._window) >= self.min_samples:
            self.estimate = self._fit()
        if self._since_block >= self.block and len(self._window) >= self.block:
            self._close_block()
        return self.estimate

    def _close_block(self) -> None:
        """The latest ``block`` exchanges as one point: their floor offset, rate taken out."""
        self._since_block = 0
        recent = list(self._window)[-self.block :]
        skew = self.estimate.skew if self.estimate is not None else 0.0
        middle = _mean_local(recent)
        self._blocks.append((middle, _floor_offset(recent, skew, middle)))

    def _fit_long(self, ref: float) -> Estimate | None:
        """Over minutes of blocks: the rate by least squares through the blocks' floors
        (their noise shrinks with the span), the offset from the latest four; None while
        the blocks span less than ``long_span_ns``."""
        blocks = list(self._blocks)
        if len(blocks) < 4 or blocks[-1][0] - blocks[0][0] < self.long_span_ns:
            return None
        n = len(blocks)
        mean_x = sum(x for x, _ in blocks) / n
        mean_y = sum(y for _, y in blocks) / n
        sxx = sum((x - mean_x) ** 2 for x, _ in blocks)
        sxy = sum((x - mean_x) * (y - mean_y) for x, y in blocks)
        skew = max(-self.max_skew, min(self.max_skew, sxy / sxx))
        latest = blocks[-4:]
        offset = sum(y + skew * (ref - x) for x, y in latest) / len(latest)
        return Estimate(offset_ns=offset, ref_ns=ref, skew=skew, samples=n * self.block)

    def _fit(self) -> Estimate:
        """Each way's least delay over the window, with the rate taken out; the rate
        itself from the two halves of the window (until the long view takes over)."""
        window = list(self._window)
        ref = window[-1].local_ns
        long = self._fit_long(ref)
        if long is not None:
            return long
        half = len(window) // 2
        early, late = window[:half], window[half:]
        span = _mean_local(late) - _mean_local(early) if half else 0.0
        skew = 0.0
        if half >= self.min_samples and span >= self.min_span_ns:
            # twice: the first rate, taken out, moves each half's minima to where they
            # belong; more passes would let the minima chase the rate they assumed
            for _ in range(2):
                residual = _floor_offset(late, skew, ref) - _floor_offset(early, skew, ref)
                skew = max(-self.max_skew, min(self.max_skew, skew + residual / span))
        offset = _floor_offset(window, skew, ref)
        return Estimate(offset_ns=offset, ref_ns=ref, skew=skew, samples=len(window))


def _mean_local(exchanges: list[Exchange]) -> float:
    return sum(ex.local_ns for ex in exchanges) / len(exchanges)


def _floor_offset(exchanges: list[Exchange], skew: float, ref: float) -> float:
    """The offset at ``ref`` from each way's own least delay (rate ``skew`` taken out).

    Jitter only adds delay, so each way reaches its floor on its own, however the
    two ways' jitter differs; what is left is half the floors' difference, a
    constant asymmetry that no two-way scheme can see.
    """
    there = min(ex.t2 - ex.t1 - skew * (ex.local_ns - ref) for ex in exchanges)
    back = min(ex.t4 - ex.t3 + skew * (ex.local_ns - ref) for ex in exchanges)
    return (there - back) / 2
