"""Password guessing slowed per (account, address), by an exponential delay.

A lock-out per account would let anyone on the network lock a named listener out
for good; a delay per (account, address) slows a guesser on their own pair and
leaves the account's owner, from their own address, untouched.  The first
``free`` failures cost nothing (typos); each further one doubles the wait before
the next attempt, up to :data:`MAX_DELAY_MS`; a success forgets the pair.  The same
rule per address alone, with many more free failures, slows one address trying
many accounts.  Always on: ``--rate-limits off`` does not switch it off.

:func:`wait_ms` and :func:`after` are pure (values and ``now``);
:class:`LoginThrottle` keeps the pairs in a bounded map, keyed by a digest so no
account name or address is held in memory in clear.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

FREE_FAILURES = 3
#: Failures one address may make across accounts before it waits too.
FREE_FAILURES_PER_ADDRESS = 30
BASE_DELAY_MS = 1000
MAX_DELAY_MS = 15 * 60 * 1000
#: A pair quiet for this long is forgotten (its next failure starts again).
FORGET_AFTER_MS = 24 * 60 * 60 * 1000
MAX_PAIRS = 50_000


@dataclass(frozen=True, slots=True)
class Failures:
    count: int
    last_ms: int


def delay_ms(count: int, free: int = FREE_FAILURES) -> int:
    """The wait owed after ``count`` consecutive failures."""
    if count < free:
        return 0
    return int(min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** min(count - free, 30)))


def wait_ms(failures: Failures | None, now_ms: int, free: int = FREE_FAILURES) -> int:
    """How long this pair must still wait before trying again (0: go ahead)."""
    if failures is None or now_ms - failures.last_ms >= FORGET_AFTER_MS:
        return 0
    return max(0, failures.last_ms + delay_ms(failures.count, free) - now_ms)


def after(failures: Failures | None, *, succeeded: bool, now_ms: int) -> Failures | None:
    """The pair's record after an attempt."""
    if succeeded:
        return None
    if failures is None or now_ms - failures.last_ms >= FORGET_AFTER_MS:
        return Failures(1, now_ms)
    return Failures(failures.count + 1, now_ms)


def _key(account: str, address: str) -> bytes:
    return hashlib.sha256(f"{account.casefold()}\0{address}".encode()).digest()[:16]


class LoginThrottle:
    """The pairs' records; thread-safe, at most :data:`MAX_PAIRS` (oldest out first)."""

    def __init__(
        self,
        clock_ms: Callable[[], int],
        *,
        free: int = FREE_FAILURES,
        max_pairs: int = MAX_PAIRS,
    ) -> None:
        self._clock_ms = clock_ms
        self._free = free
        self._max_pairs = max_pairs
        self._pairs: OrderedDict[bytes, Failures] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after_s(self, account: str, address: str) -> int:
        """Seconds this pair must wait before its next attempt is even checked."""
        with self._lock:
            left = wait_ms(self._pairs.get(_key(account, address)), self._clock_ms(), self._free)
        return -(-left // 1000)

    def record(self, account: str, address: str, *, succeeded: bool) -> None:
        key = _key(account, address)
        with self._lock:
            now = self._clock_ms()
            found = after(self._pairs.pop(key, None), succeeded=succeeded, now_ms=now)
            if found is not None:
                self._pairs[key] = found
                while len(self._pairs) > self._max_pairs:
                    self._pairs.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._pairs)
