"""Signed updates on a real fleet: a hub on Mosquitto and 20 speaker processes on
loopback, each installed in its own release slots and run by the supervisor as
systemd runs it, updated only through what the hub offers.

Faults, not happy paths: releases that crash at import, never reach the hub or fail
their self-check roll back by themselves; a broken release rolled out to the fleet
halts by itself; bundles tampered with, signed by another key, older than what runs
or cut short are refused, and the old release keeps running.  Each test leaves the
fleet on releases that run, and says what it expects of the speakers it touches
relative to what they ran before, so the tests hold in any order.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from releases.signing import ReleaseKey
from tests import release_fixtures as rf
from tests.system import wait_for
from tests.update_fleet import (
    FAILED_STATES,
    RESTART_S,
    TRIAL_DEADLINE_S,
    Fleet,
    Transit,
    chosen,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

FLEET = [f"spk-{i:02d}" for i in range(20)]
#: a release's download, install and restart on 2 shared cores, with room to spare
INSTALL_S = 40
#: a broken release runs at most this long before the old one is back: the trial
#: deadline, then the restarts the guard needs (a crash at start: three of them)
ROLLBACK_BOUND_S = TRIAL_DEADLINE_S + 4 * (RESTART_S + 2) + 5


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, release_shop: rf.WheelShop) -> Iterator[Fleet]:
    fleet = Fleet(tmp_path_factory.mktemp("fleet"), release_shop)
    fleet.add(FLEET, rf.OLD)
    try:
        fleet.start()
        fleet.wait_running({i: rf.OLD.version for i in FLEET}, timeout_s=120)
        yield fleet
    finally:
        fleet.stop()


def running(fleet: Fleet, ids: list[str]) -> dict[str, str]:
    """What each speaker runs now: its slot link, which the hub's record must match."""
    versions = {i: fleet.speakers[i].current() or "" for i in ids}
    fleet.wait_running(versions, timeout_s=60)
    return versions


@pytest.mark.timeout(600)
def test_a_good_release_reaches_half_the_fleet_then_all(fleet: Fleet) -> None:
    before = running(fleet, FLEET)
    version = fleet.release_add(rf.GOOD)
    half = sorted(i for i in FLEET if chosen(version, i, 50))
    rest = sorted(set(FLEET) - set(half))
    assert 2 <= len(half) <= 18, "the fleet's ids must split for this test to mean anything"

    fleet.rollout(version, percent=50)
    fleet.wait_states(version, dict.fromkeys(half, "good"), timeout_s=INSTALL_S * len(half))
    fleet.wait_running(dict.fromkeys(half, version))
    # the other half was never offered it, and runs what it ran
    assert set(fleet.updates(version)) == set(half)
    assert {i: fleet.speakers[i].current() for i in rest} == {i: before[i] for i in rest}

    fleet.rollout(version, percent=100)
    fleet.wait_states(version, dict.fromkeys(FLEET, "good"), timeout_s=INSTALL_S * len(rest))
    fleet.wait_running(dict.fromkeys(FLEET, version))
    shown = fleet.status(version)
    assert {i: shown[i]["state"] for i in FLEET} == dict.fromkeys(FLEET, "good")
    for device_id in FLEET:
        assert fleet.speakers[device_id].current() == version


BROKEN = [
    (rf.CRASHES, "spk-00", r"stopped \d+ times in trial"),
    (rf.UNREACHABLE, "spk-01", r"could not reach the hub"),
    (rf.SELF_CHECK_FAILS, "spk-02", r"self-check"),
]


@pytest.mark.timeout(600)
def test_broken_releases_roll_back_by_themselves_and_the_hub_shows_why(fleet: Fleet) -> None:
    # one after the other: a rollout supersedes the one before it
    for variant, device_id, pattern in BROKEN:
        before = running(fleet, [device_id])[device_id]
        speaker = fleet.speakers[device_id]
        fleet.release_add(variant)
        transit = Transit(speaker, variant.version, before)
        fleet.rollout(variant.version, devices=[device_id])
        fleet.wait_states(
            variant.version,
            {device_id: "rolled_back"},
            timeout_s=INSTALL_S + ROLLBACK_BOUND_S,
            on_poll=transit.poll,
        )
        fleet.wait_running({device_id: before})
        shown = fleet.status(variant.version)[device_id]
        assert shown["state"] == "rolled_back"
        assert re.search(pattern, shown["reason"]), (variant.why, shown)
        assert speaker.current() == before
        assert variant.version not in speaker.slots()  # no broken slot left behind
        assert transit.switched_s is not None, f"{device_id} never ran {variant.version}"
        took = (transit.back_s or time.monotonic()) - transit.switched_s
        assert took <= ROLLBACK_BOUND_S, f"{variant.why}: back after {took:.1f} s"
        # refused for good here: offered again, it is not installed again
        assert variant.version in speaker.layout.load().refused


@pytest.mark.timeout(600)
def test_a_broken_release_to_the_fleet_halts_by_itself(fleet: Fleet) -> None:
    before = running(fleet, FLEET)
    version = fleet.release_add(rf.FLEET_BROKEN)
    fleet.rollout(version, percent=100)

    def halted() -> tuple[str, str] | None:
        state = fleet.rollout_state(version)
        return state if state[0] == "halted" else None

    _, reason = wait_for(halted, INSTALL_S * 3, f"the rollout of {version} halted", fleet.logs)
    assert "halted by itself" in reason

    # what was in flight settles back on the old release; nothing new is offered
    in_flight = ("downloading", "installing", "trial")
    wait_for(
        lambda: not any(s in in_flight for s, _ in fleet.updates(version).values()),
        INSTALL_S + 30,
        "the speakers in flight to settle",
        fleet.logs,
    )
    fleet.wait_running(before)
    tried = fleet.updates(version)
    time.sleep(4 * 1.1)  # several check intervals: a halted rollout offers nothing
    assert fleet.updates(version) == tried

    failed = sorted(i for i, (s, _) in tried.items() if s in FAILED_STATES)
    assert len(failed) >= 2
    untouched = sorted(set(FLEET) - set(tried))
    # tried: one wave (a quarter of the fleet) and the places the failures before the
    # halt freed in it
    assert len(untouched) >= len(FLEET) - 5 - 2, tried
    for device_id in FLEET:
        assert fleet.speakers[device_id].current() == before[device_id]
        assert version not in fleet.speakers[device_id].slots()
    shown = fleet.status(version)
    assert {i for i in shown if shown[i]["state"] in FAILED_STATES} == set(failed)


# --- bundles the speaker must refuse ----------------------------------------------


def _tampered_wheel(fleet: Fleet, genuine: Path, out: Path) -> Path:
    return rf.tampered_wheel(genuine, out)


def _tampered_manifest(fleet: Fleet, genuine: Path, out: Path) -> Path:
    return rf.tampered_manifest(genuine, out)


def _other_key(fleet: Fleet, genuine: Path, out: Path) -> Path:
    rogue = ReleaseKey.load_or_create(out.parent / "rogue.key")
    wheel = fleet.shop.wheel(rf.Variant(_version_of(genuine)))
    made = rf.make_bundle(out.parent / "rogue", wheel, rogue, fleet.constraints)
    return Path(shutil.copy(made, out))


def _older(fleet: Fleet, genuine: Path, out: Path) -> Path:
    """An old release, genuinely signed by the hub's key, replayed under a new name."""
    wheel = fleet.shop.wheel(rf.Variant("4.0.0"))
    made = rf.make_bundle(out.parent / "old", wheel, fleet.release_key, fleet.constraints)
    return Path(shutil.copy(made, out))


def _cut_short(fleet: Fleet, genuine: Path, out: Path) -> Path:
    return rf.truncated(genuine, out)


def _version_of(bundle_path: Path) -> str:
    return bundle_path.name.removeprefix("legato-").removesuffix(".legato")


BAD_BUNDLES = [
    ("5.3.1", "spk-03", _tampered_wheel, r"does not match its hash"),
    ("5.3.2", "spk-04", _tampered_manifest, r"signature"),
    ("5.3.3", "spk-05", _other_key, r"signature"),
    ("5.3.4", "spk-06", _older, r"older than|downgrade|4\.0\.0"),
    ("5.3.5", "spk-07", _cut_short, r"cut short|damaged|missing|truncated"),
]


@pytest.mark.timeout(600)
def test_bad_bundles_from_the_hub_are_refused_and_the_old_release_runs_on(
    fleet: Fleet, tmp_path: Path
) -> None:
    ids = [device_id for _, device_id, _, _ in BAD_BUNDLES]
    before = running(fleet, ids)
    slots_before = {i: fleet.speakers[i].slots() for i in ids}
    for version, _, spoil, _ in BAD_BUNDLES:
        fleet.release_add(rf.Variant(version))
        genuine = fleet.stored_bundle(version)
        bad = spoil(fleet, genuine, tmp_path / genuine.name)
        fleet.swap_stored_bundle(version, bad)  # what the hub's storage now serves
    # one after the other: a rollout supersedes the one before it
    for version, device_id, _, pattern in BAD_BUNDLES:
        fleet.rollout(version, devices=[device_id])
        fleet.wait_states(version, {device_id: "failed"}, timeout_s=INSTALL_S)
        shown = fleet.status(version)[device_id]
        assert shown["state"] == "failed"
        assert re.search(pattern, shown["reason"]), (version, shown)
        speaker = fleet.speakers[device_id]
        assert speaker.current() == before[device_id]
        assert speaker.slots() == slots_before[device_id]  # nothing was unpacked
        assert not (speaker.layout.state / "install-request.json").exists()
    fleet.wait_running(before)  # and it still runs, reachable
