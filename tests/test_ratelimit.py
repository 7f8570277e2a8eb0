"""The rate limiter's pure core (properties over synthetic times) and its store."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.http.ratelimit import (
    DEFAULT_LIMITS,
    Category,
    Decision,
    Limit,
    RateLimiter,
    Window,
    decide,
)

# Small windows and gaps, so that requests land exactly on window edges often.
limits = st.builds(Limit, st.integers(1, 8), st.integers(1, 100))
gaps = st.lists(st.integers(0, 40), min_size=1, max_size=80)


def run(limit: Limit, gaps_ms: list[int]) -> list[tuple[int, Decision]]:
    """Requests at the running sums of ``gaps_ms``; each decision with its time."""
    window, now, out = Window(), 0, []
    for gap in gaps_ms:
        now += gap
        window, decision = decide(window, now, limit)
        out.append((now, decision))
    return out


@given(limits, gaps)
def test_never_more_than_the_limit_in_any_window(limit: Limit, gaps_ms: list[int]) -> None:
    admitted = [t for t, d in run(limit, gaps_ms) if d.allowed]
    for i in range(len(admitted) - limit.admits):
        # admits+1 consecutive admits always span at least the whole window
        assert admitted[i + limit.admits] - admitted[i] >= limit.window_ms


@given(limits, gaps)
def test_refused_exactly_while_the_window_is_full(limit: Limit, gaps_ms: list[int]) -> None:
    admitted: list[int] = []
    for now, decision in run(limit, gaps_ms):
        in_window = [t for t in admitted if t > now - limit.window_ms]
        assert decision.allowed == (len(in_window) < limit.admits)
        if decision.allowed:
            admitted.append(now)


@given(limits, gaps)
def test_retry_after_is_exact(limit: Limit, gaps_ms: list[int]) -> None:
    window, now = Window(), 0
    for gap in gaps_ms:
        now += gap
        window, decision = decide(window, now, limit)
        if decision.allowed:
            continue
        wait = decision.retry_after_ms
        assert 0 < wait <= limit.window_ms
        assert not decide(window, now + wait - 1, limit)[1].allowed  # not a moment early
        assert decide(window, now + wait, limit)[1].allowed  # and then it passes
        # The header's whole seconds are never early either.
        assert decision.retry_after_s * 1000 >= wait
        assert decide(window, now + decision.retry_after_s * 1000, limit)[1].allowed


@given(limits, gaps)
def test_a_window_holds_at_most_the_limit(limit: Limit, gaps_ms: list[int]) -> None:
    window, now = Window(), 0
    for gap in gaps_ms:
        now += gap
        window, _ = decide(window, now, limit)
        assert len(window.admits) <= limit.admits


def test_an_admit_leaves_the_window_exactly_w_later() -> None:
    limit = Limit(1, 100)
    window, first = decide(Window(), 0, limit)
    assert first.allowed
    window, early = decide(window, 99, limit)
    assert early.retry_after_ms == 1
    assert decide(window, 100, limit)[1].allowed


def test_the_issues_limits() -> None:
    assert {c: (lim.admits, lim.window_ms) for c, lim in DEFAULT_LIMITS.items()} == {
        Category.STANDARD: (100, 30_000),
        Category.SEARCH: (30, 30_000),
        Category.PLAYER: (50, 30_000),
        Category.PLAYLIST_CHANGES: (25, 30_000),
    }


def test_retry_after_seconds_round_up() -> None:
    assert Decision(1).retry_after_s == 1
    assert Decision(1000).retry_after_s == 1
    assert Decision(1001).retry_after_s == 2
    assert Decision(0).allowed
    assert not Decision(1).allowed


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


def test_limits_are_per_user_and_per_category() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    assert all(limiter.hit(1, Category.SEARCH).allowed for _ in range(30))
    refused = limiter.hit(1, Category.SEARCH)
    assert refused.retry_after_s == 30
    assert limiter.hit(2, Category.SEARCH).allowed  # another user
    assert limiter.hit(1, Category.STANDARD).allowed  # another category
    clock.ms += refused.retry_after_ms
    assert limiter.hit(1, Category.SEARCH).allowed


def test_the_store_stays_bounded_and_forgets_the_idlest() -> None:
    clock = Clock()
    limiter = RateLimiter({c: Limit(1, 60_000) for c in Category}, clock=clock, max_keys=3)
    for user in (1, 2, 3):
        assert limiter.hit(user, Category.STANDARD).allowed
    assert not limiter.hit(1, Category.STANDARD).allowed  # user 1 is now the most recent
    assert limiter.hit(4, Category.STANDARD).allowed  # evicts user 2, the idlest
    assert len(limiter) == 3
    assert limiter.hit(2, Category.STANDARD).allowed  # forgotten, so admitted again
    assert not limiter.hit(1, Category.STANDARD).allowed  # still remembered


def test_every_category_needs_a_limit() -> None:
    with pytest.raises(ValueError, match="no limit"):
        RateLimiter({Category.SEARCH: Limit(1, 1)})
    with pytest.raises(ValueError, match="admits >= 1"):
        Limit(0, 1_000)


def test_concurrent_hits_admit_exactly_the_limit() -> None:
    limiter = RateLimiter(clock=Clock())
    admitted: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        for _ in range(50):
            allowed = limiter.hit(7, Category.PLAYER).allowed
            with lock:
                admitted.append(allowed)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert admitted.count(True) == DEFAULT_LIMITS[Category.PLAYER].admits
    assert len(admitted) == 400
