"""Back-off and the redelivery memory."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from connect_protocol.backoff import Backoff
from connect_protocol.dedupe import RecentCommands
from connect_protocol.messages import Ack


@given(st.integers(0, 1000), st.floats(0, 0.999999))
def test_backoff_is_bounded_and_never_zero(attempt: int, u: float) -> None:
    b = Backoff(initial_s=0.5, maximum_s=30)
    assert 0.25 <= b.delay_s(attempt, u) <= 30


def test_backoff_grows_then_caps() -> None:
    b = Backoff(initial_s=1, maximum_s=8)
    assert [b.delay_s(a, 0.0) for a in range(6)] == [0.5, 1, 2, 4, 4, 4]


def test_recent_commands_forgets_oldest() -> None:
    r = RecentCommands(capacity=2)
    for i in range(3):
        r.remember(Ack(id=str(i), ok=True, revision=i))
    assert r.get("0") is None
    assert r.get("2") == Ack(id="2", ok=True, revision=2)
    assert len(r) == 2
