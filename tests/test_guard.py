"""The guard's rules (``releases.guard.decide``, pure) over any sequence of installs,
starts, verdicts, exits and cut-short installs: it never starts an incomplete slot; a
release in trial that never says it works is rolled back by the
``MAX_TRIAL_STARTS + 1``-th start; what was rolled back stays refused; the release
to go back to is removed only once the new one is good.  And the same on disk:
``prepare`` and ``begin_trial`` on a real directory."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from releases import guard
from releases.guard import MAX_TRIAL_STARTS, Slots, Trial, Verdict, decide

EVENTS = st.lists(
    st.one_of(
        st.just(("start",)),
        st.just(("good",)),
        st.just(("bad",)),
        st.just(("stale",)),  # a verdict on an earlier trial of the same release
        st.tuples(st.just("exit"), st.integers(0, 255)),
        st.just(("install",)),
        st.just(("cut",)),  # an install cut short: a staging dir, never a slot
        st.just(("switch_by_hand",)),
    ),
    max_size=60,
)


@dataclass
class World:
    """A speaker's slots as the guard sees them, changed only as the real code does."""

    slots: Slots = field(default_factory=Slots)
    current: str | None = "1"
    complete: list[str] = field(default_factory=lambda: ["1"])  # newest install first
    verdict: Verdict | None = None
    now: float = 1000.0
    next_version: int = 2
    trial_starts: int = 0  # starts of the current trial, counted by the test
    refused_seen: set[str] = field(default_factory=set)

    def install(self) -> None:
        version = str(self.next_version)
        self.next_version += 1
        if version in self.slots.refused:
            return
        self.complete.insert(0, version)
        previous = self.current if self.current != version else self.slots.previous
        trial = self.slots.trial  # as guard.begin_trial: a proven release stays the way back
        verdict = self.verdict
        if (
            trial
            and trial.version == self.current
            and verdict is not None
            and verdict.good
            and (verdict.version, verdict.since_s) == (trial.version, trial.since_s)
        ):  # it said it works, not yet settled by a start: it is the way back now
            if self.slots.previous in self.complete and self.slots.previous != version:
                self.complete.remove(self.slots.previous)
            outcome = guard.Outcome(trial.version, "good", verdict.reason, self.now)
            self.slots = Slots(last=outcome, refused=self.slots.refused)
        elif trial and trial.version == self.current and self.slots.previous in self.complete:
            previous = self.slots.previous
            self.complete.remove(trial.version)
        self.slots = replace(self.slots, previous=previous, trial=Trial(version, self.now))
        self.current = version
        self.trial_starts = 0

    def start(self) -> None:
        before = self.slots
        decision = decide(self.slots, self.current, tuple(self.complete), self.verdict, self.now)
        if decision.run is not None:
            assert decision.run in self.complete, "an incomplete slot would start"
        else:
            assert not self.complete
        for gone in decision.remove:
            assert gone != decision.run
            if gone == before.previous:  # the way back goes only once the trial is good
                assert decision.slots.last is not None
                assert decision.slots.last.state == "good"
            else:
                assert before.trial is not None
                assert gone == before.trial.version
                assert decision.slots.last is not None
                assert decision.slots.last.state == "rolled_back"
            self.complete.remove(gone)
        if decision.switch_to is not None:
            assert decision.switch_to in self.complete
            self.current = decision.switch_to
        assert set(before.refused) <= set(decision.slots.refused), "refused never shrinks"
        self.slots = decision.slots
        if self.slots.trial is not None and self.slots.trial.version == self.current:
            self.trial_starts += 1
            assert self.trial_starts <= MAX_TRIAL_STARTS, "a failing trial is rolled back"
        self.now += 5

    def say(self, good: bool, stale: bool = False) -> None:
        trial = self.slots.trial
        if trial is not None:
            since = trial.since_s - 1 if stale else trial.since_s
            self.verdict = Verdict(trial.version, since, good, "" if good else "no hub")

    def exit(self, status: int) -> None:
        if self.slots.trial is not None:
            self.slots = replace(
                self.slots, trial=replace(self.slots.trial, last_exit=f"exited {status}")
            )


@settings(max_examples=400, deadline=None)
@given(EVENTS)
def test_the_guard_over_any_sequence(events: list[tuple[object, ...]]) -> None:
    world = World()
    for event in events:
        match event:
            case ("start",):
                world.start()
            case ("good",):
                world.say(True)
            case ("bad",):
                world.say(False)
            case ("stale",):
                world.say(True, stale=True)
            case ("exit", int(status)):
                world.exit(status)
            case ("install",):
                world.install()
            case ("cut",):
                pass  # staging only: the complete slots and the link are as they were
            case ("switch_by_hand",):
                if len(world.complete) > 1:
                    world.current = world.complete[-1]


@given(st.integers(0, 10))
def test_a_release_that_never_answers_is_rolled_back_by_the_start_after_the_last(
    exits: int,
) -> None:
    slots = Slots(previous="1", trial=Trial("2", 10.0))
    complete: tuple[str, ...] = ("2", "1")
    runs = []
    for n in range(MAX_TRIAL_STARTS + 1):
        decision = decide(slots, "2" if "2" in complete else "1", complete, None, 20.0 + n)
        runs.append(decision.run)
        slots = decision.slots
        if decision.remove:
            complete = tuple(v for v in complete if v not in decision.remove)
        if slots.trial is not None:
            slots = replace(slots, trial=replace(slots.trial, last_exit=f"exited {exits}"))
    assert runs == ["2"] * MAX_TRIAL_STARTS + ["1"]
    assert slots.refused == ("2",)
    assert slots.last is not None
    assert slots.last.state == "rolled_back"
    assert f"exited {exits}" in slots.last.reason


def test_prepare_and_begin_trial_on_disk(tmp_path: Path) -> None:
    layout = guard.Layout(tmp_path / "opt", tmp_path / "state")
    for version in ("1", "2"):
        (layout.slot(version)).mkdir(parents=True)
        (layout.slot(version) / guard.COMPLETE).write_text(version)
    layout.switch("1")
    staging = layout.releases / ".new-3-99"
    staging.mkdir()
    guard.begin_trial(layout, "2", now_s=50.0)
    assert layout.current() == "2"
    assert json.loads((layout.root / guard.SLOTS_FILE).read_text())["previous"] == "1"
    assert guard.prepare(layout, now_s=51.0) == "2"
    assert not staging.exists()
    layout.write_verdict(Verdict("2", 50.0, True))
    assert guard.prepare(layout, now_s=52.0) == "2"
    assert layout.load().last == guard.Outcome("2", "good", "", 52.0)
    assert not layout.slot("1").exists()  # the way back is gone only now


def test_prepare_leaves_a_running_install_alone(tmp_path: Path) -> None:
    """A restart while an installer builds its slot must not delete it from under it."""
    layout = guard.Layout(tmp_path / "opt", tmp_path / "state")
    layout.slot("1").mkdir(parents=True)
    (layout.slot("1") / guard.COMPLETE).write_text("1")
    layout.switch("1")
    with layout.staging("2") as staging:
        (staging / "bin").mkdir()
        assert guard.prepare(layout) == "1"
        assert (staging / "bin").is_dir()
    leftover = layout.releases / ".new-2-77"  # one whose installer was killed
    leftover.mkdir()
    assert guard.prepare(layout) == "1"
    assert list(layout.releases.iterdir()) == [layout.slot("1")]


def test_a_release_installed_over_one_still_in_trial_goes_back_to_the_proven_one(
    tmp_path: Path,
) -> None:
    layout = guard.Layout(tmp_path / "opt", tmp_path / "state")
    for version in ("1", "2", "3"):
        layout.slot(version).mkdir(parents=True)
        (layout.slot(version) / guard.COMPLETE).write_text(version)
    layout.switch("1")
    guard.begin_trial(layout, "2", now_s=10.0)
    slots = guard.begin_trial(layout, "3", now_s=20.0)
    assert slots.previous == "1"  # not "2", which never proved itself
    assert layout.current() == "3"
    assert not layout.slot("2").exists()
    assert set(layout.complete()) == {"1", "3"}


def test_a_release_installed_over_one_that_said_it_works_goes_back_to_that_one(
    tmp_path: Path,
) -> None:
    """Good but not yet settled by a restart (the speaker runs on after its verdict): a
    failed update after it must come back to it, not to the release before it."""
    layout = guard.Layout(tmp_path / "opt", tmp_path / "state")
    for version in ("1", "2", "3"):
        layout.slot(version).mkdir(parents=True)
        (layout.slot(version) / guard.COMPLETE).write_text(version)
    layout.switch("1")
    guard.begin_trial(layout, "2", now_s=10.0)
    layout.write_verdict(Verdict("2", 10.0, True))
    slots = guard.begin_trial(layout, "3", now_s=20.0)
    assert slots.previous == "2"
    assert slots.last == guard.Outcome("2", "good", "", 20.0)
    assert set(layout.complete()) == {"2", "3"}  # the way back before it is not kept
    layout.write_verdict(Verdict("3", 20.0, False, "self-check failed: decoder"))
    assert guard.prepare(layout, now_s=21.0) == "2"
    assert layout.current() == "2"
