"""A real speaker whose release is in trial, in a slot layout under tmp: it earns a good
verdict by reaching a real broker, or writes a failed one and exits non-zero when it
cannot; it tells the hub how the last trial ended, once; it stops (status 0) when
another release becomes current; and /info shows where its release stands.

In-process runs use the venv's own environment as the slot (``releases/<version>`` is
a link to it); the command-line run uses a virtual environment made in the slot.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connect_protocol.mqtt import BrokerAddress
from device.config import FIRMWARE_VERSION, SpeakerConfig
from device.service import MdnsPlan, SpeakerService
from device.updates.agent import EXIT_TRIAL_FAILED, WATCH_S, TrialFailedError
from device.updates.client import REQUEST_FILE, RESULT_FILE
from device.updates.settings import UpdateSettings
from releases import guard
from releases.guard import Layout, Outcome, Slots, Trial
from tests.brokers import MqttClient, RunningBroker, free_port, start_broker
from tests.system import child_env, wait_for
from tests.update_fixtures import HubStandIn, Release, Served, offer_for

pytestmark = pytest.mark.integration

SINCE_S = 1_700_000_000.0
TOKEN = "pairing-token-of-den"
EVENTS = "legato/v1/device/den/events"
ROOT = Path(__file__).resolve().parent.parent


def slot_layout(tmp_path: Path, slots: Slots, *, link_to: Path | None = None) -> Layout:
    """``releases/<running version>`` (a link to ``link_to``, default this venv), current."""
    layout = Layout(tmp_path / "opt", tmp_path / "opt" / "state")
    layout.releases.mkdir(parents=True)
    if link_to is None:
        (layout.releases / FIRMWARE_VERSION).symlink_to(Path(sys.prefix).resolve())
    layout.switch(FIRMWARE_VERSION)
    layout.save(slots)
    return layout


def in_trial() -> Slots:
    return Slots(previous="0.0.9", trial=Trial(FIRMWARE_VERSION, SINCE_S))


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RunningBroker]:
    running = start_broker(
        "mosquitto", tmp_path / "broker", [("den", "speaker"), ("obs", "observer")]
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def observer(broker: RunningBroker) -> Iterator[MqttClient]:
    client = MqttClient(broker.host, broker.port, "obs", "obs", broker.secrets["obs"])
    client.connect()
    client.subscribe(EVENTS)
    try:
        yield client
    finally:
        client.close()


def speaker_for(
    layout: Layout,
    broker: BrokerAddress,
    *,
    grace_s: float = 1.0,
    deadline_s: float = 20.0,
    hub_url: str = "",
    release_key: bytes = b"",
    check_interval_s: float = 0,
) -> SpeakerService:
    config = SpeakerConfig(
        id="den",
        name="Den",
        http_host="127.0.0.1",
        hub_url=hub_url,
        username="den",
        password=broker.password,
        local_token=TOKEN,
        engine="clock",
        updates=UpdateSettings(
            release_key=release_key,
            check_interval_s=check_interval_s,
            trial_deadline_s=deadline_s,
            grace_s=grace_s,
            root=layout.root,
            state_dir=layout.state,
        ),
    )
    return SpeakerService(config, broker, mdns_plan=MdnsPlan(advertise=False))


def get_info(speaker: SpeakerService, token: str | None) -> dict[str, Any]:
    """``/info`` as a phone asks it: with the pairing token, it has the diagnostics."""
    assert speaker.local_api is not None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.get(f"http://127.0.0.1:{speaker.local_api.port}/info", headers=headers)
    r.raise_for_status()
    return dict(r.json())


def address(broker: RunningBroker) -> BrokerAddress:
    return BrokerAddress(
        host=broker.host, port=broker.port, username="den", password=broker.secrets["den"]
    )


def updates_seen(observer: MqttClient) -> list[tuple[str, str, str]]:
    docs = [json.loads(p) for p in observer.payloads(EVENTS)]
    return [(d["version"], d["state"], d.get("message", "")) for d in docs if d["kind"] == "update"]


async def until(check: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def test_a_release_in_trial_that_reaches_the_hub_is_marked_good_after_its_grace(
    tmp_path: Path, broker: RunningBroker, observer: MqttClient
) -> None:
    layout = slot_layout(tmp_path, in_trial())

    async def scenario() -> None:
        speaker = speaker_for(layout, address(broker), grace_s=1.0)
        started = time.monotonic()
        await speaker.start()
        try:
            await until(lambda: layout.verdict() is not None, 10, "a verdict")
            assert time.monotonic() - started >= 1.0  # not before the grace
            assert layout.verdict() == guard.Verdict(FIRMWARE_VERSION, SINCE_S, True, "")
            await until(lambda: len(updates_seen(observer)) >= 2, 5, "trial and good")
            assert updates_seen(observer) == [
                (FIRMWARE_VERSION, "trial", ""),
                (FIRMWARE_VERSION, "good", ""),
            ]
            info = (await asyncio.to_thread(get_info, speaker, TOKEN))["diagnostics"]["updates"]
            assert info["running"] == FIRMWARE_VERSION
            assert info["installed_in_slots"] is True
            assert info["trial"]["since_s"] == SINCE_S
            assert info["trial"]["verdict"] == {"good": True, "reason": ""}
            assert "diagnostics" not in await asyncio.to_thread(get_info, speaker, None)
            assert not speaker.finished.is_set()
        finally:
            await speaker.stop()

    asyncio.run(scenario())


def test_a_release_in_trial_that_cannot_reach_the_hub_fails_and_stops(tmp_path: Path) -> None:
    layout = slot_layout(tmp_path, in_trial())
    nowhere = BrokerAddress(host="127.0.0.1", port=free_port(), username="den", password="secret")

    async def scenario() -> None:
        speaker = speaker_for(layout, nowhere, deadline_s=1.5)
        started = time.monotonic()
        await speaker.start()
        try:
            # never finished without the deadline (nothing else ends a trial that never
            # reached the hub); the upper bound is loose for a loaded machine
            await asyncio.wait_for(speaker.finished.wait(), 20)
            assert 1.5 <= time.monotonic() - started < 15
            assert speaker.exit_status == EXIT_TRIAL_FAILED
        finally:
            await speaker.stop()

    asyncio.run(scenario())
    verdict = layout.verdict()
    assert verdict == guard.Verdict(
        FIRMWARE_VERSION, SINCE_S, False, "could not reach the hub within 1.5 s"
    )


def test_a_failed_self_check_stops_the_start_with_its_reason(tmp_path: Path) -> None:
    layout = slot_layout(tmp_path, in_trial())
    nowhere = BrokerAddress(host="127.0.0.1", port=free_port(), username="den", password="s")
    gone = tmp_path / "unplugged-dac" / "out.raw"  # the sink's device is not there
    config = dataclasses.replace(
        speaker_for(layout, nowhere).config,
        engine="native",
        sink=f"file:{gone}",
        hub_url=f"http://127.0.0.1:{free_port()}",
    )
    speaker = SpeakerService(config, nowhere, mdns_plan=MdnsPlan(advertise=False))

    async def scenario() -> None:
        try:
            with pytest.raises(TrialFailedError, match="self-check failed: sink"):
                await speaker.start()
        finally:
            await speaker.stop()

    asyncio.run(scenario())
    verdict = layout.verdict()
    assert verdict is not None
    assert (verdict.version, verdict.since_s, verdict.good) == (FIRMWARE_VERSION, SINCE_S, False)
    assert verdict.reason.startswith(f"self-check failed: sink: file:{gone}")


def test_the_last_outcome_is_told_to_the_hub_once(
    tmp_path: Path, broker: RunningBroker, observer: MqttClient
) -> None:
    reason = "could not reach the hub within 120 s"
    layout = slot_layout(
        tmp_path, Slots(last=Outcome("0.9.0", "rolled_back", reason, SINCE_S), refused=("0.9.0",))
    )

    async def run_once() -> None:
        speaker = speaker_for(layout, address(broker))
        await speaker.start()
        try:
            await until(lambda: (layout.state / "reported.json").exists(), 10, "the report")
            await asyncio.sleep(0.5)
            info = speaker.diagnostics()["updates"]
            assert info["trial"] is None
            assert info["last"]["state"] == "rolled_back"
            assert info["refused"] == ["0.9.0"]
        finally:
            await speaker.stop()

    asyncio.run(run_once())
    assert wait_for(lambda: updates_seen(observer), 5, "the rollback reported")
    asyncio.run(run_once())  # a restart does not say it again
    assert updates_seen(observer) == [("0.9.0", "rolled_back", reason)]


def test_the_speaker_stops_cleanly_when_another_release_becomes_current(
    tmp_path: Path, broker: RunningBroker, observer: MqttClient
) -> None:
    layout = slot_layout(tmp_path, Slots())
    (layout.releases / "9.9.9").mkdir()

    async def scenario() -> None:
        speaker = speaker_for(layout, address(broker))
        await speaker.start()
        try:
            result = {"version": "9.9.8", "ok": False, "reason": "no space left for the slot"}
            (layout.state / RESULT_FILE).write_text(json.dumps(result))
            await until(lambda: updates_seen(observer), 5, "the installer's failure reported")
            assert updates_seen(observer) == [("9.9.8", "failed", "no space left for the slot")]
            assert not speaker.finished.is_set()
            layout.switch("9.9.9")  # what the installer (or `update --bundle`) does
            await asyncio.wait_for(speaker.finished.wait(), 5)
            assert speaker.exit_status == 0
        finally:
            await speaker.stop()

    layout.state.mkdir(parents=True)
    asyncio.run(scenario())


def test_only_the_installers_real_failures_are_reported_failed(
    tmp_path: Path, broker: RunningBroker, observer: MqttClient
) -> None:
    layout = slot_layout(tmp_path, Slots())

    def result(doc: dict[str, object]) -> None:
        part = layout.state / "result.part"
        part.write_text(json.dumps(doc))
        os.replace(part, layout.state / RESULT_FILE)  # as the installer writes it

    async def scenario() -> None:
        speaker = speaker_for(layout, address(broker))
        await speaker.start()
        try:
            await until(lambda: speaker.diagnostics()["updates"]["installed_in_slots"], 5, "up")
            quiet: list[dict[str, object]] = [
                {"version": "9.9.1", "state": "installing"},  # under way
                {"version": "9.9.1", "state": "done", "ok": False, "code": "installed",
                 "reason": "release 9.9.1 is already installed"},  # a second run: no news
                {"version": FIRMWARE_VERSION, "state": "done", "ok": False, "code": "hash",
                 "reason": "about the running release"},  # it runs: not a failure of it
                {"version": "9.9.2", "state": "done", "ok": True, "reason": "", "code": ""},
            ]  # fmt: skip
            for doc in quiet:
                result(doc)
                await asyncio.sleep(3 * WATCH_S)  # each one read by the watch
            result({"version": "9.9.3", "state": "done", "ok": False, "code": "key",
                    "reason": "no release key pinned in speaker.toml"})  # fmt: skip
            await until(lambda: updates_seen(observer), 5, "the skip reported")
            await asyncio.sleep(3 * WATCH_S)
            result({"version": "9.9.4", "state": "done", "ok": False, "code": "install",
                    "reason": "pip failed"})  # fmt: skip
            await until(lambda: len(updates_seen(observer)) >= 2, 5, "the failure reported")
            assert updates_seen(observer) == [
                ("9.9.3", "skipped", "no release key pinned in speaker.toml"),
                ("9.9.4", "failed", "pip failed"),
            ]
            assert not speaker.finished.is_set()
        finally:
            await speaker.stop()

    layout.state.mkdir(parents=True)
    asyncio.run(scenario())


def test_a_speaker_not_in_release_slots_tells_the_hub_it_skips_the_offer(
    tmp_path: Path, broker: RunningBroker, observer: MqttClient
) -> None:
    layout = Layout(tmp_path / "opt", tmp_path / "opt" / "state")  # nothing installed there
    body = b"never fetched"
    served = Served("den", broker.secrets["den"], offer_for(tmp_path, "99.0.0", body), {})

    async def scenario(hub_url: str) -> None:
        speaker = speaker_for(
            layout, address(broker), hub_url=hub_url, release_key=b"k" * 32, check_interval_s=1
        )
        await speaker.start()
        try:
            await until(lambda: updates_seen(observer), 15, "the skip reported")
            assert updates_seen(observer) == [
                (
                    "99.0.0",
                    "skipped",
                    "this speaker does not run from release slots, so it cannot install releases",
                )
            ]
            assert speaker.diagnostics()["updates"]["installed_in_slots"] is False
        finally:
            await speaker.stop()

    with HubStandIn(served) as hub:
        asyncio.run(scenario(hub.url))
    assert served.update_checks >= 1
    assert served.ranges == []


def test_an_offer_is_fetched_soon_after_connecting_and_reported_on_mqtt(
    tmp_path: Path, broker: RunningBroker, observer: MqttClient
) -> None:
    release = Release.build(tmp_path / "release", "99.0.0")
    layout = slot_layout(tmp_path, Slots())
    secret = broker.secrets["den"]
    served = Served("den", secret, offer_for(release.bundle, "99.0.0"), {"99.0.0": release.body})

    async def scenario(hub_url: str) -> None:
        speaker = speaker_for(
            layout,
            address(broker),
            hub_url=hub_url,
            release_key=release.key.public,
            check_interval_s=3600,  # so the check seen is the one soon after connecting
        )
        await speaker.start()
        try:
            request = layout.state / REQUEST_FILE
            await until(request.exists, 15, "the install request")
            assert json.loads(request.read_text())["version"] == "99.0.0"
            await until(lambda: len(updates_seen(observer)) >= 2, 5, "the reports")
            assert updates_seen(observer) == [
                ("99.0.0", "downloading", ""),
                ("99.0.0", "installing", ""),
            ]
            info = (await asyncio.to_thread(get_info, speaker, TOKEN))["diagnostics"]["updates"]
            assert info["updater"]["phase"] == "installing"
            assert info["updater"]["bytes_done"] == len(release.body)
        finally:
            await speaker.stop()

    with HubStandIn(served) as hub:
        asyncio.run(scenario(hub.url))
    assert served.update_checks == 1


def slot_venv(layout: Layout) -> Path:
    """A virtual environment in the running release's slot that sees this checkout."""
    slot = layout.releases / FIRMWARE_VERSION
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(slot)], check=True)
    (site,) = slot.glob("lib/python3*/site-packages")
    paths = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (site / "legato-test.pth").write_text("\n".join([str(ROOT), *paths]) + "\n")
    (slot / guard.COMPLETE).write_text("")
    return slot


def test_the_command_exits_non_zero_and_the_guard_rolls_back(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "opt", tmp_path / "opt" / "state")
    layout.releases.mkdir(parents=True)
    previous = layout.releases / "0.0.9"
    previous.mkdir()
    (previous / guard.COMPLETE).write_text("")
    python = slot_venv(layout) / "bin" / "python"
    layout.switch("0.0.9")  # the release that ran before: the installer switches from it
    guard.begin_trial(layout, FIRMWARE_VERSION, now_s=SINCE_S)
    (tmp_path / "broker.secret").write_text("secret\n")
    (tmp_path / "broker.secret").chmod(0o600)
    config = tmp_path / "speaker.toml"
    config.write_text(
        f"""[speaker]
id = "den"
name = "Den"
http_host = "127.0.0.1"

[hub]
url = "http://127.0.0.1:{free_port()}"
broker = "mqtt://127.0.0.1:{free_port()}"

[broker]
username = "den"
password_file = "broker.secret"

[audio]
engine = "clock"

[updates]
root = "{layout.root}"
trial_deadline_s = 2
check_interval_s = 0
"""
    )
    started = time.monotonic()
    done = subprocess.run(
        [str(python), "-m", "device", "--config", str(config), "--no-mdns"],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == EXIT_TRIAL_FAILED, done.stderr[-3000:]
    assert time.monotonic() - started < 30
    verdict = layout.verdict()
    assert verdict is not None
    assert not verdict.good
    assert verdict.reason == "could not reach the hub within 2 s"
    assert guard.prepare(layout) == "0.0.9"  # the next start: back to the previous release
    assert layout.current() == "0.0.9"
    last = layout.load().last
    assert last is not None
    assert last == Outcome(FIRMWARE_VERSION, "rolled_back", verdict.reason, last.at_s)
    assert FIRMWARE_VERSION in layout.load().refused
