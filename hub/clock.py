"""The hub's wall clock, in one place so tests and callers agree on its unit."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Milliseconds since the epoch (the unit of tokens' expiry and states' timestamps)."""
    return time.time_ns() // 1_000_000
