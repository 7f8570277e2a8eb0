"""The hub's rollout policy (who is offered what, when a rollout halts) and the
per-speaker view, as plain functions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.releases import policy, status
from hub.releases.policy import Candidate, Progress, Rollout
from hub.releases.store import Speaker

NOW = 10_000_000_000
ids = st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True)
versions = st.builds(lambda a, b, c: f"{a}.{b}.{c}", *[st.integers(0, 30)] * 3)


def candidate(
    rollout: Rollout, mine: Progress | None = None, in_flight: int = 0, targeted: int = 10
) -> Candidate:
    return Candidate(rollout=rollout, mine=mine, in_flight=in_flight, targeted=targeted)


def offered(device: str, fw: str, *cands: Candidate) -> str | None:
    return policy.choose_offer(device, fw, cands, NOW)


@given(ids, versions, st.integers(1, 100), st.integers(1, 100))
def test_a_wider_percent_keeps_everyone_the_narrower_one_chose(
    device: str, version: str, a: int, b: int
) -> None:
    low, high = sorted((a, b))
    if policy.selected(version, device, low):
        assert policy.selected(version, device, high)
    assert policy.selected(version, device, 100)


def test_a_percent_picks_about_that_share_of_a_fleet() -> None:
    fleet = [f"speaker-{n}" for n in range(2000)]
    chosen = sum(policy.selected("1.2.0", d, 30) for d in fleet)
    assert 0.25 * 2000 < chosen < 0.35 * 2000
    # another release picks another set (no speaker is always first)
    other = {d for d in fleet if policy.selected("1.3.0", d, 30)}
    assert other != {d for d in fleet if policy.selected("1.2.0", d, 30)}


def test_named_speakers_are_offered_and_no_others() -> None:
    r = Rollout(version="1.1.0", devices=frozenset({"kitchen"}))
    assert offered("kitchen", "1.0.0", candidate(r)) == "1.1.0"
    assert offered("lounge", "1.0.0", candidate(r)) is None


def test_a_speaker_on_that_release_or_newer_is_offered_nothing() -> None:
    r = Rollout(version="1.1.0", percent=100)
    assert offered("a", "1.1.0", candidate(r)) is None
    assert offered("a", "1.2.0", candidate(r)) is None
    assert offered("a", "1.1.0rc1", candidate(r)) == "1.1.0"
    assert offered("a", "", candidate(r)) == "1.1.0"  # never reported a version
    assert offered("a", "garbage", candidate(r)) == "1.1.0"


def test_a_halted_or_done_rollout_offers_nothing() -> None:
    for state in ("halted", "done"):
        r = Rollout(version="1.1.0", percent=100, state=state)
        assert offered("a", "1.0.0", candidate(r)) is None


def test_a_speaker_that_failed_or_rolled_back_or_is_good_is_not_offered_again() -> None:
    r = Rollout(version="1.1.0", percent=100)
    for state in ("rolled_back", "failed", "good"):
        assert offered("a", "1.0.0", candidate(r, Progress(state, NOW))) is None


def test_the_wave_limits_new_speakers_but_not_those_in_flight() -> None:
    r = Rollout(version="1.1.0", percent=100, wave=2)
    assert offered("new", "1.0.0", candidate(r, in_flight=2)) is None
    assert offered("new", "1.0.0", candidate(r, in_flight=1)) == "1.1.0"
    mine = Progress("downloading", NOW - 1000)
    assert offered("busy", "1.0.0", candidate(r, mine, in_flight=2)) == "1.1.0"
    # silent for an hour: no longer holds a place, and waits like a new one
    stale = Progress("offered", NOW - policy.STALE_MS)
    assert not policy.counts_in_flight(stale, NOW)
    assert offered("stale", "1.0.0", candidate(r, stale, in_flight=2)) is None


def test_the_default_wave_is_a_quarter_of_the_targets_at_least_two() -> None:
    assert policy.default_wave(1) == 2
    assert policy.default_wave(8) == 2
    assert policy.default_wave(9) == 3
    assert policy.default_wave(100) == 25
    r = Rollout(version="1.1.0", percent=100)
    assert offered("x", "1.0.0", candidate(r, in_flight=24, targeted=100)) == "1.1.0"
    assert offered("x", "1.0.0", candidate(r, in_flight=25, targeted=100)) is None


def test_of_two_active_rollouts_the_newest_allowed_wins() -> None:
    old = Rollout(version="1.1.0", percent=100)
    new = Rollout(version="1.2.0", percent=100)
    assert offered("a", "1.0.0", candidate(old), candidate(new)) == "1.2.0"
    failed_new = candidate(new, Progress("rolled_back", NOW))
    assert offered("a", "1.0.0", candidate(old), failed_new) == "1.1.0"


@given(
    st.lists(st.sampled_from(sorted(policy.PAST_OFFERED | {"offered", "skipped"})), max_size=300),
)
def test_the_halt_comes_exactly_when_failures_reach_the_threshold(states: list[str]) -> None:
    tried = sum(s not in ("offered", "skipped") for s in states)
    failed = sum(s in ("rolled_back", "failed") for s in states)
    reason = policy.halt_reason(states)
    # at least 2, and at least 10% of those tried, rounded up (no float rounding)
    assert (reason is not None) == (failed >= 2 and failed * 10 >= tried)
    if reason is not None:
        assert f"{failed} of {tried} speakers failed" in reason


def test_skips_are_neither_tried_nor_failed() -> None:
    assert policy.halt_reason(["failed"] + ["skipped"] * 50) is None
    assert policy.halt_reason(["failed", "rolled_back"] + ["skipped"] * 50) == (
        "halted by itself: 2 of 2 speakers failed (threshold 10%, at least 2)"
    )


def test_a_skipped_speaker_is_offered_again_but_only_within_the_wave() -> None:
    r = Rollout(version="2.0.0", percent=100, wave=2)
    skipped = Progress("skipped", NOW)
    assert offered("a", "1.0.0", candidate(r, skipped, in_flight=1)) == "2.0.0"
    assert offered("a", "1.0.0", candidate(r, skipped, in_flight=2)) is None


def test_the_halt_reason_reads_plainly() -> None:
    states = ["good", "good", "trial", "rolled_back", "failed"]
    assert policy.halt_reason(states) == (
        "halted by itself: 2 of 5 speakers failed (threshold 10%, at least 2)"
    )
    assert policy.halt_reason(["rolled_back"] + ["good"] * 3) is None  # one is not enough
    assert policy.halt_reason(["failed"] * 2 + ["good"] * 18) is not None  # 2 of 20 = 10%
    assert policy.halt_reason(["failed"] * 2 + ["good"] * 19) is None  # 2 of 21 < 10%


@given(
    st.dictionaries(ids, st.sampled_from(sorted(policy.IN_FLIGHT | policy.FINAL)), max_size=40),
    st.integers(1, 5),
    ids,
)
def test_no_offer_ever_makes_the_wave_larger_than_its_limit(
    states: dict[str, str], wave: int, asker: str
) -> None:
    """Whoever asks, the speakers in flight after the offer never exceed the wave
    (unless they already did before)."""
    r = Rollout(version="2.0.0", percent=100, wave=wave)
    flying = {d for d, s in states.items() if s in policy.IN_FLIGHT}
    mine = Progress(states[asker], NOW) if asker in states else None
    got = offered(asker, "1.0.0", candidate(r, mine, in_flight=len(flying)))
    after = flying | ({asker} if got else set())
    assert len(after) <= max(wave, len(flying))
    if asker in states and states[asker] in policy.FINAL:
        assert got is None


def test_the_operator_sees_each_speaker_with_its_reason() -> None:
    r = Rollout(version="1.1.0", percent=100)
    speakers = {
        "a": Speaker("Attic", "1.0.0"),
        "b": Speaker("Bath", "1.1.0"),  # installed from a USB stick, never reported
        "c": Speaker("Cellar", "1.0.0"),
        "d": Speaker("Den", "1.0.0"),
        "e": Speaker("East", "1.0.0"),
        "f": Speaker("Flat", "1.1.0"),  # skipped, then installed from a USB stick
    }
    progress = {
        "e": (Progress("skipped", 8), "this speaker pins no release key"),
        "f": (Progress("skipped", 9), "not enough disk space"),
        "c": (Progress("rolled_back", 5), "the release did not reach the hub in 120 s"),
        "d": (Progress("downloading", 7), ""),
    }
    rows = {u.device_id: u for u in status.speaker_updates("1.1.0", r, speakers, progress)}
    assert rows["a"].state == "waiting"
    assert (rows["b"].state, rows["b"].reason) == ("good", status.NEVER_REPORTED)
    assert rows["c"].state == "rolled_back"
    assert "120 s" in rows["c"].reason
    assert rows["d"].state == "downloading"
    assert (rows["e"].state, rows["e"].reason) == ("skipped", "this speaker pins no release key")
    assert rows["f"].state == "good"
    assert status.DISPLAY_STATES[-1] == "skipped"
    counted = status.counts(rows.values())
    assert counted["waiting"] == counted["rolled_back"] == counted["skipped"] == 1
    assert counted["good"] == 2
    assert counted["failed"] == 0
    # halted: nobody waits any more, what happened stays
    halted = Rollout(version="1.1.0", percent=100, state="halted")
    rows2 = {u.device_id for u in status.speaker_updates("1.1.0", halted, speakers, progress)}
    assert rows2 == {"b", "c", "d", "e", "f"}
