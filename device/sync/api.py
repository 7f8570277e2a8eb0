"""What a grouped speaker's engine and its sync layer promise each other.

``NativeEngine.set_sync(clock, anchor, on_rebase)`` turns group play on (and
``set_sync(None, None, None)`` off); ``set_anchor`` moves the timeline;
``sync_stats`` says how well it keeps to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from device.sync.anchor import Anchor


class GroupClock(Protocol):
    """The group's clock as this speaker knows it."""

    def now_ns(self) -> int | None:
        """The group clock now (ns); ``None`` until it is known (play silence meanwhile)."""
        ...


#: the engine moved the anchor on by itself at a gapless join (called on the event loop)
RebaseCallback = Callable[[Anchor], None]


@dataclass(frozen=True, slots=True)
class SyncStats:
    """How a member keeps to the group's timeline (for metrics, tests and the bench)."""

    synced: bool = False  # grouped, clock known and audio aligned
    error_ms: float = 0.0  # the latest measured error (+: ahead of the timeline)
    drift_ppm: float = 0.0  # the learned correction: the DAC's rate offset
    frames_inserted: int = 0
    frames_removed: int = 0
    hard_corrections: int = 0  # re-alignments at once while playing (stalls, not drift)
    starts: int = 0  # alignments at a start (load, seek, resume, rejoin)
    sink_underruns: int = 0
