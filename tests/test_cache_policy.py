"""The offline cache's download order and eviction, as pure functions, with hypothesis."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from offline_cache.policy import DAY_MS, Cached, Reason, Wanted, download_order, evict

NOW = 1_000 * DAY_MS


def test_partial_then_explicit_then_recently_played_then_playlist_order() -> None:
    wanted = [
        Wanted(track_id="p2", playlist_position=2),
        Wanted(track_id="p1", playlist_position=1),
        Wanted(track_id="r-old", played_at_ms=NOW - 5 * DAY_MS),
        Wanted(track_id="r-new", played_at_ms=NOW - DAY_MS),
        Wanted(track_id="e-late", explicit_at_ms=NOW),
        Wanted(track_id="e-early", explicit_at_ms=NOW - 10),
        Wanted(track_id="half", bytes_done=50, bytes_total=100, playlist_position=9),
        Wanted(track_id="most", bytes_done=90, bytes_total=100),
    ]
    order = [w.track_id for w in download_order(wanted)]
    assert order == ["most", "half", "e-early", "e-late", "r-new", "r-old", "p1", "p2"]


wanted_items = st.builds(
    Wanted,
    track_id=st.sampled_from([f"t{i}" for i in range(8)]),
    explicit_at_ms=st.none() | st.integers(0, NOW),
    played_at_ms=st.none() | st.integers(0, NOW),
    playlist_position=st.none() | st.integers(0, 50),
    bytes_done=st.integers(0, 100),
    bytes_total=st.integers(0, 100),
)


@given(st.lists(wanted_items, max_size=30))
def test_download_order_has_each_track_once_by_its_most_urgent_reason(
    wanted: list[Wanted],
) -> None:
    order = download_order(wanted)
    ids = [w.track_id for w in order]
    assert sorted(ids) == sorted({w.track_id for w in wanted})
    reasons = [w.reason for w in order]
    assert reasons == sorted(reasons)
    for w in order:
        assert w.reason == min(x.reason for x in wanted if x.track_id == w.track_id)
    assert download_order(list(reversed(wanted))) == order  # stable whatever came first
    if any(w.partial for w in wanted):
        assert order[0].reason is Reason.PARTIAL


def test_eviction_takes_stale_then_orphaned_then_least_recently_used() -> None:
    items = [
        Cached(track_id="pinned-old", size=10, last_used_ms=0, downloaded=True),
        Cached(track_id="stale", size=10, last_used_ms=NOW - 91 * DAY_MS),
        Cached(track_id="orphan", size=10, last_used_ms=NOW - DAY_MS, via_playlist=True),
        Cached(
            track_id="in-list",
            size=10,
            last_used_ms=0,
            via_playlist=True,
            in_downloaded_playlist=True,
        ),
        Cached(track_id="older", size=10, last_used_ms=NOW - 3 * DAY_MS),
        Cached(track_id="newer", size=10, last_used_ms=NOW - 2 * DAY_MS),
    ]
    assert evict(items, now_ms=NOW, cap_bytes=1000) == ["stale", "orphan"]
    assert evict(items, now_ms=NOW, cap_bytes=30) == ["stale", "orphan", "older"]
    # over the cap with only pinned items left: they stay
    assert evict(items, now_ms=NOW, cap_bytes=0) == ["stale", "orphan", "older", "newer"]


cached_items = st.lists(
    st.builds(
        Cached,
        track_id=st.uuids().map(str),
        size=st.integers(1, 100),
        last_used_ms=st.integers(0, NOW),
        downloaded=st.booleans(),
        via_playlist=st.booleans(),
        in_downloaded_playlist=st.booleans(),
    ),
    max_size=25,
)


@given(cached_items, st.integers(0, 3000))
def test_eviction_never_touches_pins_and_gets_under_the_cap_when_it_can(
    items: list[Cached], cap: int
) -> None:
    out = evict(items, now_ms=NOW, cap_bytes=cap)
    by_id = {c.track_id: c for c in items}
    assert len(out) == len(set(out))
    assert not any(by_id[i].pinned for i in out)
    left = sum(c.size for c in items) - sum(by_id[i].size for i in out)
    pinned = sum(c.size for c in items if c.pinned)
    assert left <= max(cap, pinned)
    # the least recently used goes before the more recently used, among the LRU phase
    kept = [c for c in items if c.track_id not in out and not c.pinned]
    lru_phase = [by_id[i] for i in out if not by_id[i].via_playlist]
    lru_phase = [c for c in lru_phase if NOW - c.last_used_ms < 90 * DAY_MS]
    if lru_phase and kept:
        assert max(c.last_used_ms for c in lru_phase) <= min(c.last_used_ms for c in kept)
