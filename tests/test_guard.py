"""The release guard (``releases.guard``) on real directories.  Over any sequence of
installs, starts, crashes, verdicts, hangs and power cuts, driven through the real
``begin_trial``, ``prepare``, ``write_verdict``, ``expire`` and ``exited``: ``current``
always names a complete slot; a release that said it works is never removed nor
skipped as the way back; a trial that never says so is rolled back by its
``MAX_TRIAL_STARTS + 1``-th start; what was rolled back stays refused.  And the
outside bound: a release that hangs in trial is killed and rolled back, under the
unit's ``ExecStartPost=`` line and under the supervisor."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from hardware.provision.unit import unit_text
from releases import guard
from releases.guard import MAX_TRIAL_STARTS, Slots, Trial, Verdict, decide
from releases.slot import base_python

ROOT = Path(__file__).resolve().parents[1]
OPS = ("save", "switch", "remove")
EVENTS = st.lists(
    st.one_of(
        st.just(("install",)),
        st.just(("start",)),
        st.tuples(st.just("crash"), st.integers(0, 255)),  # a start that exits at once
        st.tuples(st.just("exit"), st.integers(0, 255)),
        st.just(("good",)),
        st.just(("bad",)),
        st.just(("stale",)),  # a good verdict on an earlier trial of the same release
        st.just(("hang",)),  # root's watch finds no verdict within the limit
        st.just(("killed_install",)),  # an installer killed: its staging dir is left
        # a power cut at the n-th save/switch/remove of the next install or start
        st.tuples(st.just("cut"), st.sampled_from(OPS), st.integers(1, 3)),
    ),
    max_size=50,
)


class PowerCutError(Exception):
    """The power went at an armed step."""


@dataclass(frozen=True, slots=True)
class CutLayout(guard.Layout):
    """The real layout, but the power goes at an armed step: a save or switch not
    done, a slot half removed (no longer complete, still there)."""

    armed: dict[str, int] = field(default_factory=dict)

    def cut(self, op: str) -> None:
        if op in self.armed:
            self.armed[op] -= 1
            if self.armed[op] == 0:
                self.armed.clear()
                raise PowerCutError(op)

    def save(self, slots: Slots) -> None:
        self.cut("save")
        guard.Layout.save(self, slots)

    def switch(self, version: str) -> None:
        self.cut("switch")
        guard.Layout.switch(self, version)

    def remove(self, version: str) -> None:
        if "remove" in self.armed and self.slot(version).exists():
            (self.slot(version) / guard.COMPLETE).unlink(missing_ok=True)
            self.cut("remove")
        guard.Layout.remove(self, version)


def make_slot(layout: guard.Layout, version: str, at: float) -> None:
    layout.slot(version).mkdir(parents=True)
    marker = layout.slot(version) / guard.COMPLETE
    marker.write_text(version)
    os.utime(marker, (at, at))  # complete() orders by it: the newest install first


@dataclass
class Speaker:
    """A speaker's real slots, and what the test knows from outside."""

    layout: CutLayout
    proven: str = "1"  # the last release that said it works (the first one is known good)
    now: float = 1000.0
    next_version: int = 2
    started: tuple[str, float] | None = None  # the trial the running release is in
    counted: tuple[str, float] | None = None  # the trial whose starts are counted
    starts: int = 0  # completed starts of that trial
    said_fail: set[str] = field(default_factory=set)

    def key(self) -> tuple[str, float] | None:
        trial = self.layout.load().trial
        return (trial.version, trial.since_s) if trial else None

    def install(self) -> None:
        version = str(self.next_version)
        self.next_version += 1
        self.now += 1
        make_slot(self.layout, version, self.now)
        with self.layout.locked():
            guard.begin_trial(self.layout, version, now_s=self.now)

    def start(self) -> None:
        self.now += 5
        self.started = None
        run = guard.prepare(self.layout, now_s=self.now)  # a cut: the next start redoes it
        assert run == self.layout.current()
        assert not [p for p in self.layout.releases.iterdir() if p.name.startswith(".new-")]
        key = self.key()
        if key is None or key[0] != run:
            return
        self.starts = self.starts + 1 if key == self.counted else 1
        self.started = self.counted = key
        assert self.starts <= MAX_TRIAL_STARTS, "a trial that never says it works goes"

    def say(self, good: bool, stale: bool = False) -> None:
        trial = self.layout.load().trial
        if self.started is None or trial is None or self.started != self.key():
            return  # no release in trial is running
        if guard.answers(guard.the_verdict(self.layout, trial), trial):
            return  # it said its word on this trial already
        since = trial.since_s - 1 if stale else trial.since_s
        self.layout.write_verdict(Verdict(trial.version, since, good, "" if good else "no hub"))
        if good and not stale:
            self.proven = trial.version
        elif not good:
            self.said_fail.add(trial.version)

    def hang(self) -> None:
        trial = self.layout.load().trial
        if self.started is None or trial is None or self.started != self.key():
            return
        if guard.expire(self.layout, trial.version, trial.since_s):
            self.said_fail.add(trial.version)

    def check(self, refused_before: tuple[str, ...]) -> None:
        complete = self.layout.complete()
        slots = self.layout.load()
        assert self.layout.current() in complete, "current names a complete slot"
        assert self.proven in complete, "a release that said it works is kept"
        if slots.trial is not None and slots.trial.version != self.proven:
            assert slots.previous == self.proven, "the way back is the proven release"
        if slots.trial is None:
            assert self.layout.current() == self.proven
        assert set(refused_before) <= set(slots.refused) or len(slots.refused) == 20
        for version in self.said_fail:  # once settled, never current again
            if version not in complete:
                assert version in slots.refused


@settings(max_examples=300, deadline=None)
@given(EVENTS)
def test_the_guard_on_disk_over_any_sequence(events: list[tuple[object, ...]]) -> None:
    note(repr(events))

    with tempfile.TemporaryDirectory() as tmp:
        layout = CutLayout(Path(tmp) / "opt", Path(tmp) / "state")
        make_slot(layout, "1", 1.0)
        layout.switch("1")
        speaker = Speaker(layout)
        for event in events:
            refused = layout.load().refused
            try:
                match event:
                    case ("install",):
                        speaker.install()
                    case ("start",):
                        speaker.start()
                    case ("crash", int(status)):
                        speaker.start()
                        guard.exited(layout, "exited", str(status))
                    case ("exit", int(status)):
                        guard.exited(layout, "exited", str(status))
                    case ("good",):
                        speaker.say(True)
                    case ("bad",):
                        speaker.say(False)
                    case ("stale",):
                        speaker.say(True, stale=True)
                    case ("hang",):
                        speaker.hang()
                    case ("killed_install",):
                        (layout.releases / f".new-{speaker.next_version}-77").mkdir()
                        speaker.next_version += 1
                    case ("cut", str(op), int(n)):
                        layout.armed.clear()
                        layout.armed[op] = n
                        continue
            except PowerCutError:
                speaker.started = None  # the power is back: nothing runs until a start
            layout.armed.clear()
            speaker.check(refused)
        layout.armed.clear()
        speaker.start()  # a last boot settles everything
        speaker.check(())


def test_a_good_verdict_is_kept_when_the_next_release_is_installed_before_a_restart(
    tmp_path: Path,
) -> None:
    """The speaker said 1.1 works, then 1.2 came in the same uptime: 1.1 is the way
    back, 1.0 goes, and a failing 1.2 goes back to 1.1 (not two releases back)."""
    layout = guard.Layout(tmp_path / "opt", tmp_path / "state")
    for n, version in enumerate(("1.0", "1.1", "1.2")):
        make_slot(layout, version, float(n))
    layout.switch("1.0")
    guard.begin_trial(layout, "1.1", now_s=10.0)
    assert guard.prepare(layout, now_s=11.0) == "1.1"
    layout.write_verdict(Verdict("1.1", 10.0, True))
    slots = guard.begin_trial(layout, "1.2", now_s=20.0)
    assert slots.previous == "1.1"
    assert slots.last == guard.Outcome("1.1", "good", "", 20.0)
    assert set(layout.complete()) == {"1.1", "1.2"}  # 1.1 kept, 1.0 gone
    layout.write_verdict(Verdict("1.2", 20.0, False, "no hub"))
    assert guard.prepare(layout, now_s=30.0) == "1.1"
    assert layout.current() == "1.1"
    assert layout.load().refused == ("1.2",)


def test_a_power_cut_inside_a_rollback_still_ends_it_with_its_reason(tmp_path: Path) -> None:
    layout = CutLayout(tmp_path / "opt", tmp_path / "state")
    make_slot(layout, "1", 1.0)
    make_slot(layout, "2", 2.0)
    layout.switch("1")
    guard.begin_trial(layout, "2", now_s=10.0)
    assert guard.prepare(layout, now_s=11.0) == "2"
    layout.write_verdict(Verdict("2", 10.0, False, "self-check failed: sink"))
    layout.armed["save"] = 2  # the marker is saved, current switched back, then the cut
    with pytest.raises(PowerCutError):
        guard.prepare(layout, now_s=12.0)
    assert layout.current() == "1"
    assert layout.load().trial is not None  # the final save never happened
    assert guard.prepare(layout, now_s=13.0) == "1"
    slots = layout.load()
    assert slots.last is not None
    assert (slots.last.state, slots.last.reason) == ("rolled_back", "self-check failed: sink")
    assert slots.refused == ("2",)
    assert slots.trial is None
    assert not layout.slot("2").exists()


def test_a_power_cut_before_the_switch_to_a_new_trial_keeps_the_old_release(
    tmp_path: Path,
) -> None:
    """Not a rollback: the new release is not refused, only dropped (offered again)."""
    layout = CutLayout(tmp_path / "opt", tmp_path / "state")
    make_slot(layout, "1", 1.0)
    make_slot(layout, "2", 2.0)
    layout.switch("1")
    layout.armed["switch"] = 1
    with pytest.raises(PowerCutError):
        guard.begin_trial(layout, "2", now_s=10.0)
    assert guard.prepare(layout, now_s=11.0) == "1"
    assert layout.load() == Slots()
    assert layout.complete() == ("1",)


def test_the_locks_are_root_s_alone(tmp_path: Path) -> None:
    layout = guard.Layout(tmp_path / "opt", tmp_path / "state")
    make_slot(layout, "1", 1.0)
    layout.switch("1")
    with layout.staging("2") as staging:
        lock = Path(f"{staging}.lock")
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    (layout.releases / ".new-3-9").mkdir()
    guard.prepare(layout)
    assert stat.S_IMODE((layout.root / ".lock").stat().st_mode) == 0o600


@pytest.mark.parametrize("kind", ["fifo", "link", "big", "junk"])
def test_a_verdict_file_that_is_not_a_small_plain_file_is_no_verdict(
    tmp_path: Path, kind: str
) -> None:
    layout = guard.Layout(tmp_path / "opt", tmp_path / "state")
    make_slot(layout, "1", 1.0)
    make_slot(layout, "2", 2.0)
    layout.switch("1")
    guard.begin_trial(layout, "2", now_s=10.0)
    good = json.dumps({"version": "2", "since_s": 10.0, "good": True})
    path = layout.state / guard.VERDICT_FILE
    layout.state.mkdir()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "link":
        (tmp_path / "elsewhere.json").write_text(good)
        path.symlink_to(tmp_path / "elsewhere.json")
    elif kind == "big":
        path.write_text(good + " " * guard.MAX_VERDICT_BYTES)
    else:
        path.write_bytes(b"\xff[1]")
    started = time.monotonic()
    assert layout.verdict() is None
    assert guard.prepare(layout, now_s=11.0) == "2"  # still in trial: start 1
    assert layout.load().trial is not None
    assert time.monotonic() - started < 5


# --- the outside bound: a release that hangs in trial ----------------------------------


def unit_line(text: str, key: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(f"{key}="))
    return shlex.split(line.removeprefix(f"{key}=").lstrip("-+"))


@pytest.fixture
def hanging() -> Iterator[subprocess.Popen[bytes]]:
    """A plain python standing in for a speaker that hangs before it says anything."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield child
    if child.poll() is None:
        child.kill()
    child.wait()


def test_the_unit_kills_a_release_that_hangs_in_trial_and_it_is_rolled_back(
    tmp_path: Path, hanging: subprocess.Popen[bytes]
) -> None:
    if not Path("/usr/bin/python3").exists():
        pytest.skip("the unit runs the guard with /usr/bin/python3")
    text = unit_text(str(tmp_path))
    layout = guard.Layout(tmp_path / "opt" / "legato", tmp_path / "var/lib/legato/update")
    make_slot(layout, "1", 1.0)
    make_slot(layout, "2", 2.0)
    layout.switch("1")
    shutil.copy(ROOT / "releases" / "guard.py", layout.root / "guard.py")
    guard.begin_trial(layout, "2", limit_s=1.5)
    assert subprocess.run(unit_line(text, "ExecStartPre"), timeout=30).returncode == 0
    post = unit_line(text, "ExecStartPost")
    watch = [part.replace("$MAINPID", str(hanging.pid)) for part in post]
    log = tmp_path / "watch.log"
    started = time.monotonic()
    with open(log, "w") as err:
        assert subprocess.run(watch, stderr=err, timeout=30).returncode == 0
    assert time.monotonic() - started < 1.0  # it returns at once; its child watches
    assert hanging.wait(timeout=15) == -signal.SIGKILL
    waited = time.monotonic() - started
    assert 1.5 <= waited < 10
    guard.exited(layout, "killed", "KILL")  # ExecStopPost
    assert subprocess.run(unit_line(text, "ExecStartPre"), timeout=30).returncode == 0
    assert layout.current() == "1"
    slots = layout.load()
    assert slots.last is not None
    assert (slots.last.version, slots.last.state, slots.last.reason) == (
        "2",
        "rolled_back",
        "no verdict within 1.5 s: the release hangs",
    )
    assert slots.refused == ("2",)
    assert "gave no verdict within 1.5 s: killed" in log.read_text()


def test_the_watch_leaves_a_release_that_said_it_works(
    tmp_path: Path, hanging: subprocess.Popen[bytes]
) -> None:
    layout = guard.Layout(tmp_path / "opt", tmp_path / "state")
    make_slot(layout, "1", 1.0)
    make_slot(layout, "2", 2.0)
    layout.switch("1")
    trial = guard.begin_trial(layout, "2", now_s=10.0, limit_s=1.0).trial
    assert trial is not None
    layout.write_verdict(Verdict("2", 10.0, True))
    guard.watch(layout, hanging.pid, fork=False)
    assert hanging.poll() is None
    assert not guard.expire(layout, "2", 10.0)
    assert guard.prepare(layout, now_s=20.0) == "2"
    assert layout.load().last == guard.Outcome("2", "good", "", 20.0)


def test_the_supervisor_kills_a_release_that_hangs_in_trial(tmp_path: Path) -> None:
    layout = guard.Layout(tmp_path / "opt", tmp_path / "state")
    for n, version in enumerate(("1", "2")):
        slot = layout.slot(version)
        subprocess.run(
            [base_python(), "-m", "venv", "--without-pip", str(slot)],
            check=True,
            timeout=120,
        )
        site = next(slot.glob("lib/python3*/site-packages"))
        (site / "device").mkdir()
        (site / "device" / "__init__.py").write_text("")
        (site / "device" / "__main__.py").write_text("import time\ntime.sleep(60)\n")
        (slot / guard.COMPLETE).write_text(version)
        os.utime(slot / guard.COMPLETE, (n + 1.0, n + 1.0))
    layout.switch("1")
    shutil.copy(ROOT / "releases" / "guard.py", layout.root / "guard.py")
    guard.begin_trial(layout, "2", limit_s=1.5)
    log = tmp_path / "supervisor.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "releases.supervisor", "--root", str(layout.root)),
                *("--state", str(layout.state), "--restart-s", "0.2", "--max-starts", "5"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "started release 1" not in log.read_text():
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    text = log.read_text()
    assert "release 2 gave no verdict within 1.5 s: killed" in text, text
    assert re.search(r"rolling back 2 to 1: no verdict within 1.5 s: the release hangs", text)
    assert len(re.findall(r"started release 2", text)) == 1
    assert layout.current() == "1"
    assert layout.load().refused == ("2",)


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
