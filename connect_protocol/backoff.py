"""Reconnect back-off with full jitter, as a pure function.

The random draw is passed in (``uniform``), so tests give a fixed one and the
transport gives ``random.random``: a fleet of speakers that lost the broker at
the same moment does not reconnect in lock-step.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    initial_s: float = 0.5
    maximum_s: float = 30.0
    factor: float = 2.0

    def delay_s(self, attempt: int, uniform: float) -> float:
        """Delay before reconnect ``attempt`` (0-based); ``uniform`` is in [0, 1)."""
        ceiling = min(self.maximum_s, self.initial_s * self.factor ** min(attempt, 64))
        return ceiling * (0.5 + uniform / 2)  # half-jitter: never a zero wait
