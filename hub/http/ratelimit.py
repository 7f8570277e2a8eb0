"""Per-user rate limits by category: an exact sliding window over an injected clock.

The core is pure: :func:`decide` takes a :class:`Window` (the times of the admits
still inside the window), the time now and a :class:`Limit`, and returns the next
window and either "admitted" or how long to wait.  A sliding log rather than a
token bucket because the promise is "at most N in any W seconds": a bucket of N
admits a burst of N and then its refill inside the same W.  The log holds at most
N times per key (N <= 100), so it costs little.

:class:`RateLimiter` is the thread-safe shell: one window per (user, category),
in a map bounded to ``max_keys`` by evicting the least recently used key (the
idlest; a key evicted while still busy merely forgets its history).

Times are integer milliseconds, so "retry after ``r``" is exact: at ``now + r``
the oldest admit has left the window.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum


class Category(StrEnum):
    STANDARD = "standard"
    SEARCH = "search"
    PLAYER = "player"
    PLAYLIST_CHANGES = "playlist-changes"


@dataclass(frozen=True, slots=True)
class Limit:
    admits: int
    window_ms: int

    def __post_init__(self) -> None:
        if self.admits < 1 or self.window_ms < 1:
            raise ValueError(f"a limit needs admits >= 1 and window_ms >= 1, not {self}")


#: The issue's limits, per user: standard 100, search 30, player 50, playlist changes 25.
DEFAULT_LIMITS: Mapping[Category, Limit] = {
    Category.STANDARD: Limit(100, 30_000),
    Category.SEARCH: Limit(30, 30_000),
    Category.PLAYER: Limit(50, 30_000),
    Category.PLAYLIST_CHANGES: Limit(25, 30_000),
}


@dataclass(frozen=True, slots=True)
class Window:
    """Admit times (ms, oldest first) that may still count against the limit."""

    admits: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """``retry_after_ms`` is 0 when admitted, else the wait until an admit would be."""

    retry_after_ms: int

    @property
    def allowed(self) -> bool:
        return self.retry_after_ms == 0

    @property
    def retry_after_s(self) -> int:
        """Whole seconds for a ``Retry-After`` header, never early."""
        return -(-self.retry_after_ms // 1000)


def decide(window: Window, now_ms: int, limit: Limit) -> tuple[Window, Decision]:
    """Admit at ``now_ms`` iff fewer than ``limit.admits`` admits lie in ``(now - W, now]``."""
    live = tuple(t for t in window.admits if t > now_ms - limit.window_ms)
    if len(live) < limit.admits:
        return replace(window, admits=(*live, now_ms)), Decision(0)
    # The admit that must leave the window first: with exactly `admits` allowed,
    # the (len - admits)-th oldest of the live ones.
    blocking = live[len(live) - limit.admits]
    return replace(window, admits=live), Decision(blocking + limit.window_ms - now_ms)


def parse_limits(spec: str) -> Mapping[Category, Limit] | None:
    """An operator's ``--rate-limits``: ``default``, ``off`` (None: no limits), or
    overrides of some categories' admits per 30 s, e.g. ``search=60,player=200``."""
    text = spec.strip().lower()
    if text in ("", "default"):
        return DEFAULT_LIMITS
    if text == "off":
        return None
    limits = dict(DEFAULT_LIMITS)
    for part in text.split(","):
        name, sep, value = part.partition("=")
        category: Category | None
        try:
            category, admits = Category(name.strip()), int(value) if sep else 0
        except ValueError:
            category, admits = None, 0
        if category is None or not 1 <= admits <= 100_000:
            names = ", ".join(c.value for c in Category)
            raise ValueError(
                f"cannot read {part.strip()!r}: give default, off, or CATEGORY=N with N "
                f"in 1..100000 admits per 30 s, CATEGORY one of {names}"
            )
        limits[category] = Limit(admits, 30_000)
    return limits


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class RateLimiter:
    """Windows per (user, category) in memory, safe to call from FastAPI's threads."""

    def __init__(
        self,
        limits: Mapping[Category, Limit] | None = DEFAULT_LIMITS,
        *,
        clock: Callable[[], int] = monotonic_ms,
        max_keys: int = 10_000,
    ) -> None:
        #: False with ``limits=None`` (``--rate-limits off``): every request is admitted
        self.enabled = limits is not None
        limits = DEFAULT_LIMITS if limits is None else limits
        missing = set(Category) - set(limits)
        if missing:
            raise ValueError(f"no limit for {sorted(missing)}")
        self.limits = dict(limits)
        self._clock = clock
        self._max_keys = max_keys
        self._windows: OrderedDict[tuple[int, Category], Window] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, user_id: int, category: Category) -> Decision:
        """Count one request (if admitted) and say whether it may proceed."""
        if not self.enabled:
            return Decision(0)
        key = (user_id, category)
        with self._lock:
            window, decision = decide(
                self._windows.get(key, Window()), self._clock(), self.limits[category]
            )
            self._windows[key] = window
            self._windows.move_to_end(key)
            while len(self._windows) > self._max_keys:
                self._windows.popitem(last=False)
        return decision

    def __len__(self) -> int:
        with self._lock:
            return len(self._windows)
