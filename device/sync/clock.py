"""``ClockFilter``: a follower's estimate of the leader's clock, from NTP-style exchanges.

One exchange: the follower sends at its ``t1``, the leader receives at its
``t2`` and answers at ``t3``, the follower receives at ``t4``.  The offset
(leader minus follower) is ``((t2 - t1) + (t3 - t4)) / 2``, wrong by at most
half the round trip's asymmetry; the round trip's own delay
``(t4 - t1) - (t3 - t2)`` says how much to trust it.  Network jitter only ever
adds delay, so the exchanges with the least delay carry the truest offsets:
the filter keeps a window of recent exchanges, takes the least-delayed one of
each run of ``group``, drops those far slower than the best, and fits offset
against time to the rest (least squares), which also gives the rate
difference between the two clocks.  Pure: the
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
        window: int = 64,
        group: int = 4,
        min_samples: int = 4,
        slack_ns: int = 200_000,
        max_delay_ns: int = 500_000_000,
        max_skew: float = 500e-6,
    ) -> None:
        self._window: deque[Exchange] = deque(maxlen=window)
        self.min_samples = min_samples
        self.group = group
        self.slack_ns = slack_ns
        self.max_delay_ns = max_delay_ns
        self.max_skew = max_skew
        self.estimate: Estimate | None = None
        self.refused = 0

    def reset(self) -> None:
        """A new leader: its clock has nothing to do with the old one's."""
        self._window.clear()
        self.estimate = None

    def add(self, ex: Exchange) -> Estimate | None:
        """Take one exchange (a nonsensical one is refused and counted); return the estimate."""
        if ex.t4 < ex.t1 or ex.t3 < ex.t2 or not 0 <= ex.delay_ns <= self.max_delay_ns:
            self.refused += 1
            return self.estimate
        self._window.append(ex)
        if len(self._window) >= self.min_samples:
            self.estimate = self._fit()
        return self.estimate

    def _fit(self) -> Estimate:
        """The least-delay exchange of each run of ``group`` (jitter only adds delay),
        then a straight line through them: offset now, and rate."""
        window = list(self._window)
        chosen = [
            min(window[i : i + self.group], key=lambda ex: ex.delay_ns)
            for i in range(0, len(window), self.group)
        ]
        best = min(ex.delay_ns for ex in chosen)
        chosen = [ex for ex in chosen if ex.delay_ns <= 2 * best + self.slack_ns]
        ref = window[-1].local_ns
        xs = [ex.local_ns - ref for ex in chosen]
        ys = [ex.offset_ns for ex in chosen]
        n = len(chosen)
        mean_x, mean_y = sum(xs) / n, sum(ys) / n
        sxx = sum((x - mean_x) ** 2 for x in xs)
        skew = 0.0
        if n >= 3 and sxx >= n * 1e18:  # a rate needs seconds between the points
            skew = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
            skew = max(-self.max_skew, min(self.max_skew, skew))
        offset_at_ref = mean_y - skew * mean_x
        return Estimate(offset_ns=offset_at_ref, ref_ns=ref, skew=skew, samples=n)
