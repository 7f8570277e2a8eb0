"""The segment fetcher both engines share, alone: a scripted source, a fixed clock and draw.

The segments are real Ogg Vorbis (cut as ingest cuts them), so the page check
is the real one; the source is a hand-written fake that answers from a script.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import pytest

from connect_protocol.backoff import Backoff
from connect_protocol.media import Manifest, Quality
from connect_protocol.messages import EventKind
from device.abr import AbrPolicy
from device.audio.fetcher import (
    RETRY,
    Attempts,
    BufferState,
    Choice,
    Failed,
    FetchPolicy,
    Got,
    Refetch,
    Retry,
    SegmentFetcher,
    Skip,
    TooSlow,
    rendition_at_most,
)
from device.audio.source import Authenticated, SourceError, TooSlowError
from tests.media_fixtures import Track, make_track, sweep

RATE = 44_100
URI = "legato:track:f"

Answer = bytes | SourceError


@dataclass
class ScriptedSource:
    """A ``SegmentSource`` that gives each call the next scripted answer (bytes or an
    error to raise), else the track's true bytes."""

    track: Track
    answers: deque[Answer] = field(default_factory=deque)
    manifest_answers: deque[SourceError] = field(default_factory=deque)
    held: Quality | None = None
    bps: float | None = None
    calls: list[tuple[str, int, float | None]] = field(default_factory=list)

    def manifest(self, track_id: str) -> Manifest:
        if self.manifest_answers:
            raise self.manifest_answers.popleft()
        return self.track.manifest

    def segment(
        self, manifest: Manifest, quality: Quality, n: int, *, deadline_s: float | None = None
    ) -> bytes:
        self.calls.append((quality.label, n, deadline_s))
        if self.answers:
            answer = self.answers.popleft()
            if isinstance(answer, SourceError):
                raise answer
            return answer
        return self.track.blobs[(quality, n)]

    def held_quality(self, manifest: Manifest) -> Quality | None:
        return self.held

    def throughput_bps(self) -> float | None:
        return self.bps

    def close(self) -> None:
        pass


@dataclass
class Rig:
    source: ScriptedSource
    fetcher: SegmentFetcher
    events: list[tuple[EventKind, str | None, str]]
    now: list[float]


@pytest.fixture(scope="module")
def track() -> Track:
    qualities = (Quality.LOW, Quality.NORMAL)
    return make_track("f", sweep(RATE * 9, RATE), RATE, qualities=qualities)


AUTO = FetchPolicy()


def rig(track: Track, policy: FetchPolicy = AUTO, *, uniform: float = 0.5) -> Rig:
    source = ScriptedSource(track)
    events: list[tuple[EventKind, str | None, str]] = []
    now = [100.0]
    fetcher = SegmentFetcher(
        source,
        policy,
        emit=lambda kind, uri, message: events.append((kind, uri, message)),
        clock=lambda: now[0],
        uniform=lambda: uniform,
    )
    return Rig(source, fetcher, events, now)


def corrupt(track: Track, n: int) -> bytes:
    blob = track.blobs[(Quality.NORMAL, n)]
    return blob[: len(blob) // 2]


# --- retries -------------------------------------------------------------------------------


def test_retries_wait_as_the_shared_backoff_says_then_start_afresh(track: Track) -> None:
    r = rig(track, uniform=0.25)
    down = SourceError("hub unreachable", retryable=True)
    r.source.answers.extend([down, down, down, down, down, down])
    attempts = Attempts()
    waits = []
    for _ in range(6):
        outcome = r.fetcher.segment(track.manifest, Quality.NORMAL, 1, attempts, uri=URI)
        assert isinstance(outcome, Retry)
        assert attempts.retry_at == pytest.approx(r.now[0] + outcome.wait_s)
        assert not attempts.due(r.now[0])
        waits.append(outcome.wait_s)
    assert waits == [RETRY.delay_s(k, 0.25) for k in range(6)]
    assert waits[-1] == pytest.approx(RETRY.maximum_s * (0.5 + 0.25 / 2))  # capped
    assert isinstance(r.fetcher.segment(track.manifest, Quality.NORMAL, 1, attempts, uri=URI), Got)
    assert attempts.failures == 0  # the next failure waits the shortest time again
    assert r.events == []


def test_a_retry_policy_given_is_the_one_used(track: Track) -> None:
    slow = Backoff(initial_s=1.0, maximum_s=4.0, factor=4.0)
    r = rig(track, FetchPolicy(retry=slow), uniform=0.0)
    r.source.manifest_answers.extend([SourceError("503", retryable=True)] * 3)
    attempts = Attempts()
    waits = [r.fetcher.manifest("f", attempts) for _ in range(3)]
    assert [w.wait_s for w in waits if isinstance(w, Retry)] == [0.5, 2.0, 2.0]
    assert r.fetcher.manifest("f", attempts) is track.manifest


def test_a_permanent_failure_fails_at_once(track: Track) -> None:
    r = rig(track)
    r.source.answers.append(SourceError("hub answered 404", retryable=False))
    outcome = r.fetcher.segment(track.manifest, Quality.NORMAL, 0, Attempts(), uri=URI)
    assert outcome == Failed("hub answered 404")
    r.source.manifest_answers.append(SourceError("unknown track", retryable=False))
    assert r.fetcher.manifest("f", Attempts()) == Failed("unknown track")


def test_a_fetch_too_slow_for_the_buffer_is_a_stall_not_a_failure(track: Track) -> None:
    r = rig(track)
    attempts = Attempts(failures=3)
    r.source.answers.append(TooSlowError("would take 9.0 s"))
    outcome = r.fetcher.segment(
        track.manifest, Quality.NORMAL, 1, attempts, uri=URI, deadline_s=4.0
    )
    assert outcome == TooSlow("would take 9.0 s")
    assert attempts.failures == 0
    assert r.source.calls == [("normal", 1, 4.0)]


# --- the page check --------------------------------------------------------------------------


def test_a_corrupt_segment_is_fetched_once_more_then_skipped_with_an_error(track: Track) -> None:
    r = rig(track)
    r.source.answers.extend([corrupt(track, 1), corrupt(track, 1)])
    attempts = Attempts()
    first = r.fetcher.segment(track.manifest, Quality.NORMAL, 1, attempts, uri=URI)
    assert isinstance(first, Refetch)
    assert r.events == []
    second = r.fetcher.segment(track.manifest, Quality.NORMAL, 1, attempts, uri=URI)
    assert isinstance(second, Skip)
    assert second.message.startswith("skipped segment 1:")
    assert r.events == [(EventKind.ERROR, URI, second.message)]


def test_a_corrupt_segment_that_comes_right_the_second_time_plays(track: Track) -> None:
    r = rig(track)
    r.source.answers.append(corrupt(track, 1))
    attempts = Attempts()
    assert isinstance(
        r.fetcher.segment(track.manifest, Quality.NORMAL, 1, attempts, uri=URI), Refetch
    )
    again = r.fetcher.segment(track.manifest, Quality.NORMAL, 1, attempts, uri=URI)
    assert again == Got(track.blobs[(Quality.NORMAL, 1)])
    assert r.events == []


def test_bytes_proven_by_the_cache_are_not_checked_again(track: Track) -> None:
    r = rig(track)
    sealed = Authenticated(b"not even Ogg: the cache's tag vouches for what it hands out")
    r.source.answers.append(sealed)
    assert r.fetcher.segment(track.manifest, Quality.NORMAL, 1, Attempts(), uri=URI) == Got(sealed)


# --- quality -------------------------------------------------------------------------------


def test_a_quality_the_manifest_lacks_falls_back_to_the_best_below_it(track: Track) -> None:
    assert rendition_at_most(track.manifest, Quality.VERY_HIGH) is Quality.NORMAL
    assert rendition_at_most(track.manifest, Quality.NORMAL) is Quality.NORMAL
    assert rendition_at_most(track.manifest, Quality.LOW) is Quality.LOW
    high_only = make_track("h", sweep(RATE * 3, RATE), RATE, qualities=(Quality.HIGH,))
    assert rendition_at_most(high_only.manifest, Quality.LOW) is Quality.HIGH  # its lowest


def test_choose_falls_back_and_reports_the_change(track: Track) -> None:
    r = rig(track, FetchPolicy.for_quality("very_high"))  # pinned above what the track has
    state = BufferState(buffer_s=10.0, stalled=False)
    choice = r.fetcher.choose(track.manifest, uri=URI, current=None, state=lambda: state)
    assert choice == Choice(Quality.NORMAL, held=False)
    assert r.events == []  # the first choice is no change
    again = r.fetcher.choose(track.manifest, uri=URI, current=Quality.LOW, state=lambda: state)
    assert again.quality is Quality.NORMAL
    assert r.events == [(EventKind.QUALITY_CHANGE, URI, "low -> normal")]


def test_the_abr_drops_on_a_stall_within_the_cap(track: Track) -> None:
    policy = FetchPolicy(cap=Quality.NORMAL, abr=AbrPolicy(low_watermark_s=2.0))
    r = rig(track, policy)
    r.source.bps = 100_000.0  # carries low with margin, not normal
    stalled = BufferState(buffer_s=20.0, stalled=True)
    choice = r.fetcher.choose(
        track.manifest, uri=URI, current=Quality.NORMAL, state=lambda: stalled
    )
    assert choice.quality is Quality.LOW
    assert r.events == [(EventKind.QUALITY_CHANGE, URI, "normal -> low")]


def test_a_track_held_offline_plays_at_its_quality_without_asking_the_abr(track: Track) -> None:
    r = rig(track)
    r.source.held = Quality.LOW

    def state() -> BufferState:
        raise AssertionError("the ABR's inputs (and a stall) are not used up for a held track")

    choice = r.fetcher.choose(track.manifest, uri=URI, current=Quality.NORMAL, state=state)
    assert choice == Choice(Quality.LOW, held=True)
    assert r.events == []


def test_the_deadline_is_most_of_the_buffer_except_where_nothing_is_lower(track: Track) -> None:
    auto = rig(track).fetcher
    assert auto.deadline_s(Quality.NORMAL, 10.0) == pytest.approx(8.0)
    assert auto.deadline_s(Quality.NORMAL, 0.5) == 1.0  # never under a second
    assert auto.deadline_s(Quality.LOW, 10.0) is None
    pinned = rig(track, FetchPolicy.for_quality("normal")).fetcher
    assert pinned.deadline_s(Quality.NORMAL, 10.0) is None
    assert FetchPolicy.for_quality("auto") == FetchPolicy()
