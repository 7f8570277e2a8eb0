"""The login throttle's rule (pure) and its bounded store, with synthetic time."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.accounts.throttle import (
    FREE_FAILURES,
    MAX_DELAY_MS,
    Failures,
    LoginThrottle,
    after,
    delay_ms,
    wait_ms,
)


@given(st.integers(min_value=0, max_value=200))
def test_the_delay_grows_with_failures_and_is_capped(count: int) -> None:
    assert 0 <= delay_ms(count) <= MAX_DELAY_MS
    assert delay_ms(count) <= delay_ms(count + 1)
    assert (delay_ms(count) == 0) == (count < FREE_FAILURES)


@given(
    outcomes=st.lists(st.booleans(), max_size=40),
    gaps=st.lists(st.integers(min_value=0, max_value=10**7), min_size=40, max_size=40),
)
def test_a_success_forgets_and_a_failure_never_locks_out_for_good(
    outcomes: list[bool], gaps: list[int]
) -> None:
    record: Failures | None = None
    now = 10**9
    for succeeded, gap in zip(outcomes, gaps, strict=False):
        now += gap
        record = after(record, succeeded=succeeded, now_ms=now)
        if succeeded:
            assert record is None
        assert wait_ms(record, now) <= MAX_DELAY_MS
        assert wait_ms(record, now + MAX_DELAY_MS) == 0  # the wait always ends


def test_the_store_keeps_pairs_apart_and_stays_bounded() -> None:
    clock = [0]
    throttle = LoginThrottle(lambda: clock[0], max_pairs=100)
    for _ in range(FREE_FAILURES + 1):
        throttle.record("bob", "10.0.0.9", succeeded=False)
    assert throttle.retry_after_s("bob", "10.0.0.9") > 0
    assert throttle.retry_after_s("BOB", "10.0.0.9") > 0  # names are case-folded
    assert throttle.retry_after_s("bob", "10.0.0.7") == 0  # another address: untouched
    assert throttle.retry_after_s("ann", "10.0.0.9") == 0
    for n in range(500):
        throttle.record(f"user{n}", "10.0.0.1", succeeded=False)
    assert len(throttle) <= 100
