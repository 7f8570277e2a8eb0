"""A release in trial: the pure verdict rules, the self-check, the [updates] settings and
what is reported to the hub (the in-process speaker runs are in test_update_service.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from device import cli
from device.config import ConfigError, SpeakerConfig, load
from device.updates import self_check
from device.updates import trial as t
from device.updates.reporting import Reported, ReportedFile, said, said_failed, unreported
from device.updates.settings import default_state_dir, running_slot
from releases.guard import DEFAULT_ROOT, DEFAULT_STATE, Layout, Outcome
from releases.signing import ReleaseKey

# --- the verdict rules ---------------------------------------------------------------


def machine(needs_hub: bool = True) -> t.TrialState:
    return t.begin(1000.0, deadline_s=120, grace_s=30, limit_s=180, needs_hub=needs_hub)


def run(state: t.TrialState, *events: t.TrialEvent) -> t.TrialState:
    for event in events:
        state = t.step(state, event)
    return state


def test_good_once_the_hub_is_reached_and_the_grace_has_passed() -> None:
    state = run(machine(), t.HubReached(1002.0), t.Tick(1029.9))
    assert state.verdict is None
    assert run(state, t.Tick(1030.0)).verdict == t.Judgement(True)


def test_the_hub_reached_late_is_good_at_once_when_the_grace_has_passed() -> None:
    state = run(machine(), t.Tick(1100.0), t.HubReached(1100.0))
    assert state.verdict == t.Judgement(True)


def test_no_hub_within_the_deadline_fails_with_the_reason_the_hub_shows() -> None:
    state = run(machine(), t.Tick(1119.0))
    assert state.verdict is None
    state = run(state, t.Tick(1120.0))
    assert state.verdict == t.Judgement(False, "could not reach the hub within 120 s")


def test_an_engine_error_starts_the_grace_again() -> None:
    state = run(machine(), t.HubReached(1001.0), t.EngineError(1020.0, "sink lost"))
    assert run(state, t.Tick(1049.0)).verdict is None
    assert run(state, t.Tick(1050.0)).verdict == t.Judgement(True)


def test_an_engine_that_keeps_failing_fails_the_trial_at_the_limit() -> None:
    state = run(machine(), t.HubReached(1001.0))
    for at in range(1010, 1180, 20):
        state = run(state, t.EngineError(float(at), f"decode failed at {at}"))
    assert state.verdict is None
    state = run(state, t.Tick(1180.0))
    assert state.verdict is not None
    assert not state.verdict.good
    assert "last: decode failed at 1170" in state.verdict.reason


def test_a_speaker_with_no_broker_is_judged_on_playing_alone() -> None:
    assert run(machine(needs_hub=False), t.Tick(1030.0)).verdict == t.Judgement(True)


times = st.floats(min_value=0, max_value=400, allow_nan=False)
events = st.lists(
    st.one_of(
        times.map(lambda d: ("hub", d)),
        times.map(lambda d: ("error", d)),
        times.map(lambda d: ("tick", d)),
    ),
    max_size=30,
)


def as_events(spec: list[tuple[str, float]]) -> list[t.TrialEvent]:
    out: list[t.TrialEvent] = []
    for kind, d in sorted(spec, key=lambda e: e[1]):
        at = 1000.0 + d
        out.append(
            t.HubReached(at)
            if kind == "hub"
            else t.EngineError(at, "boom")
            if kind == "error"
            else t.Tick(at)
        )
    return out


@given(events, st.booleans())
def test_a_verdict_never_changes_and_is_always_earned(
    spec: list[tuple[str, float]], needs_hub: bool
) -> None:
    state = machine(needs_hub)
    settled: t.Judgement | None = None
    hub_at: float | None = None
    last_error = 1000.0
    for event in as_events(spec):
        state = t.step(state, event)
        if isinstance(event, t.HubReached) and hub_at is None:
            hub_at = event.at_s
        if isinstance(event, t.EngineError) and settled is None:
            last_error = event.at_s
        if settled is not None:
            assert state.verdict == settled  # never changes
            continue
        settled = state.verdict
        if settled is None:
            continue
        now = event.at_s
        if settled.good:  # reached the hub, and no error within the grace before now
            assert hub_at is not None or not needs_hub
            assert now >= last_error + 30
        elif "could not reach the hub" in settled.reason:
            assert needs_hub
            assert hub_at is None
            assert now >= 1000.0 + 120
        else:
            assert now >= 1000.0 + 180


@given(events, st.booleans())
def test_the_timer_wakes_exactly_when_the_verdict_can_change(
    spec: list[tuple[str, float]], needs_hub: bool
) -> None:
    state = run(machine(needs_hub), *as_events(spec))
    due = t.next_check_s(state)
    if state.verdict is not None:
        assert due is None
        return
    assert due is not None
    if due > state.now_s:
        assert t.step(state, t.Tick(due - 1e-3)).verdict is None
    assert t.step(state, t.Tick(due)).verdict is not None


# --- the self-check ------------------------------------------------------------------


def test_the_shipped_sample_decodes_to_the_tone() -> None:
    result = self_check.check_decoder()
    assert result.ok, result.detail


def test_a_damaged_sample_fails_the_decoder_check() -> None:
    data = bytearray(self_check.sample_bytes())
    data[len(data) // 2 :] = bytes(len(data) - len(data) // 2)
    result = self_check.check_decoder(bytes(data))
    assert not result.ok


def paired(sink: str) -> SpeakerConfig:
    return SpeakerConfig(
        id="den", name="Den", engine="native", sink=sink, hub_url="http://h", password="p"
    )


def test_the_sink_check_writes_silence_to_the_configured_sink(tmp_path: Path) -> None:
    out = tmp_path / "out.raw"
    result = self_check.check_sink(paired(f"file:{out}"))
    assert result.ok, result.detail
    pcm = np.frombuffer(out.read_bytes(), np.int16)
    assert pcm.size == 2 * int(44100 * self_check.SINK_SILENCE_S)
    assert not pcm.any()


def test_a_sink_that_cannot_open_fails_the_check_after_its_retries(tmp_path: Path) -> None:
    waits: list[float] = []
    result = self_check.check_sink(paired(f"file:{tmp_path}/no/such/dir/out.raw"), waits.append)
    assert not result.ok
    assert "no/such/dir" in result.detail
    assert len(waits) == self_check.SINK_ATTEMPTS - 1


def test_a_clock_speaker_has_no_sink_to_check() -> None:
    result = self_check.check_sink(SpeakerConfig(id="den", name="Den", engine="clock"))
    assert result.ok
    assert "skipped" in result.detail


def test_a_state_dir_that_cannot_be_written_fails_the_check(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    result = self_check.check_state_dir(tmp_path / "file" / "state")
    assert not result.ok
    assert str(tmp_path / "file" / "state") in result.detail
    assert self_check.check_state_dir(tmp_path / "state").ok


def test_the_failure_reason_names_every_failed_check() -> None:
    results = [
        self_check.CheckResult("decoder", True),
        self_check.CheckResult("sink", False, "busy"),
        self_check.CheckResult("cache", False, "locked"),
    ]
    assert self_check.failure_reason(results) == "self-check failed: sink: busy; cache: locked"
    assert self_check.failure_reason(results[:1]) is None


# --- [updates] settings ----------------------------------------------------------------


def write_config(tmp_path: Path, updates: str) -> Path:
    path = tmp_path / "speaker.toml"
    path.write_text(f'[speaker]\nid = "den"\nname = "Den"\n\n[updates]\n{updates}\n')
    return path


def test_updates_settings_are_read_and_defaulted(tmp_path: Path) -> None:
    key = ReleaseKey.generate()
    cfg = load(write_config(tmp_path, f'release_key = "{key.public_text}"\nroot = "{tmp_path}"'))
    assert cfg.updates.release_key == key.public
    assert cfg.updates.root == tmp_path
    assert cfg.updates.state_dir == tmp_path / "state"
    assert (cfg.updates.check_interval_s, cfg.updates.trial_deadline_s) == (600, 120)
    assert load(None).updates.state_dir == DEFAULT_STATE
    assert default_state_dir(DEFAULT_ROOT) == DEFAULT_STATE


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('release_key = "ed25519:short"', "updates.release_key"),
        ('release_key = "rsa:AAAA"', "updates.release_key"),
        ("check_interval_s = -1", "updates.check_interval_s"),
        ("check_interval_s = 0.5", "updates.check_interval_s"),
        ("trial_deadline_s = 0", "updates.trial_deadline_s"),
        ("grace_s = 99999", "updates.grace_s"),
        ('grace_s = "30"', "updates.grace_s"),
        ("colour = 1", "updates.colour"),
        ('root = "opt/legato"', "updates.root"),
        ('state_dir = "state"', "updates.state_dir"),
    ],
)
def test_a_bad_updates_setting_names_its_key(tmp_path: Path, line: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load(write_config(tmp_path, line))


def test_a_bad_release_key_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, 'release_key = "ed25519:not-a-key"')
    assert cli.main(["--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("legato-speaker: updates.release_key:")
    assert "\n" not in err


def test_the_running_release_is_known_only_inside_its_slot(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "opt", tmp_path / "state")
    layout.releases.mkdir(parents=True)
    venv = tmp_path / "venv"
    venv.mkdir()
    assert running_slot(layout, "1.2.0", str(venv)) is None  # no such slot
    (layout.releases / "1.2.0").symlink_to(venv)
    assert running_slot(layout, "1.2.0", str(venv)) == "1.2.0"
    assert running_slot(layout, "1.2.0", sys.prefix) is None  # another install
    assert running_slot(layout, "../x", str(venv)) is None


# --- what is reported ------------------------------------------------------------------


def test_the_last_outcome_is_reported_once_and_the_file_survives_damage(tmp_path: Path) -> None:
    rolled = Outcome("1.3.0", "rolled_back", "could not reach the hub within 120 s", 5.0)
    memory = ReportedFile(tmp_path)
    assert unreported(rolled, memory.load()) == rolled
    memory.save(said(memory.load(), "1.3.0", "rolled_back"))
    assert unreported(rolled, memory.load()) is None
    assert unreported(Outcome("1.3.0", "good"), memory.load()) is not None
    memory.path.write_text("{not json")
    assert memory.load() == Reported()


@given(st.lists(st.tuples(st.from_regex(r"1\.[0-9]{1,3}", fullmatch=True), st.booleans())))
def test_the_memory_stays_small(entries: list[tuple[str, bool]]) -> None:
    reported = Reported()
    for version, failed in entries:
        reported = (
            said_failed(reported, version, 1.0) if failed else said(reported, version, "good")
        )
    again = Reported.from_json(reported.to_json())
    assert again == reported
    assert len(again.outcomes) <= 32
    assert len(again.failed_at_s) <= 32
