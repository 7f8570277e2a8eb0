"""Speakers and hub ride out a broker restart and bad input on MQTT."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from connect_protocol.messages import MAX_MESSAGE_BYTES
from connect_protocol.tls import pinned_context
from connect_protocol.topics import HUB_USERNAME
from hub.demo_music.seed import seed_demo
from hub.fleet import provisioning
from tests.system import Api, System, retained_state, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def system(tmp_path: Any) -> Iterator[System]:
    sysm = System(tmp_path)
    seed_demo(sysm.db)
    with sysm.running("kitchen"):
        yield sysm


def first_track(system: System) -> str:
    with system.db.reading() as conn:
        return f"legato:track:{conn.execute('SELECT id FROM tracks LIMIT 1').fetchone()[0]}"


def test_broker_restart_everyone_reconnects_and_state_is_republished(system: System) -> None:
    api = Api(system)
    try:
        api.wait_online("kitchen")
        uri = first_track(system)
        r = api.client.put(
            "/v1/me/player/play", params={"device_id": "kitchen"}, json={"uris": [uri]}
        )
        assert r.status_code == 204
        revision = retained_state(system, "kitchen")["revision"]
        assert system.broker is not None
        system.broker.restart()  # no persistence: every retained message is gone
        # The speaker republishes its retained state by itself after reconnecting.
        state = wait_for(
            lambda: _try_retained(system, "kitchen"), 30, "retained state again", system.logs
        )
        assert state["revision"] == revision
        assert state["current"]["uri"] == uri

        # And the hub relays commands again without being restarted; meanwhile every
        # request gets a clear answer, never a hang or a silent success.
        answers: list[tuple[int, str]] = []

        def volume_ok() -> bool:
            resp = api.client.put(
                "/v1/me/player/volume", params={"device_id": "kitchen", "volume_percent": 12}
            )
            answers.append((resp.status_code, resp.text))
            return resp.status_code == 204

        wait_for(volume_ok, 30, "the hub relaying again", system.logs)
        for status, text in answers[:-1]:
            assert status in (404, 503, 504), text
            assert json.loads(text)["error"]["message"]
        assert retained_state(system, "kitchen")["volume_percent"] == 12
        health = api.client.get("/healthz")
        assert health.json() == {"status": "ok", "database": True, "broker": True}
    finally:
        api.close()


def _try_retained(system: System, device_id: str) -> dict[str, Any] | None:
    try:
        return retained_state(system, device_id)
    except (AssertionError, ValueError):
        return None


class HubClient:
    """A raw MQTT client with the hub's credentials: the only one allowed to command."""

    def __init__(self, system: System) -> None:
        secret = (system.data / "keys" / "broker-hub.secret").read_text().strip()
        self.acks: list[dict[str, Any]] = []
        self.states: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        # The broker ties a client id to its user name: this replaces the hub's own
        # session, so the test stops the hub first.
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=HUB_USERNAME, protocol=paho.MQTTv311
        )
        self.client.username_pw_set(HUB_USERNAME, secret)
        self.client.tls_set_context(pinned_context(system.tls.ca_pem))
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", system.mqtt_port)
        for channel in ("ack", "state", "events"):  # not cmd: our own garbage comes back there
            self.client.subscribe(f"legato/v1/device/kitchen/{channel}", qos=1)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        doc = json.loads(msg.payload)
        with self.lock:
            {"ack": self.acks, "state": self.states, "events": self.events}.get(
                msg.topic.rsplit("/", 1)[-1], []
            ).append(doc)

    def send(self, payload: bytes | str) -> None:
        self.client.publish("legato/v1/device/kitchen/cmd", payload, qos=1).wait_for_publish(5)

    def ack_for(self, command_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [a for a in self.acks if a["id"] == command_id]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_speaker_acks_bad_commands_and_keeps_running(system: System) -> None:
    api = Api(system)
    api.wait_online("kitchen")
    api.close()
    assert system.hub is not None
    system.hub.stop()  # we speak for the hub now, with its credentials
    hub = HubClient(system)
    try:
        hub.send(b"\xff\xfe not json")
        hub.send(b'{"type": "explode", "id": "c-unknown"}')
        hub.send(b'{"type": "volume", "id": "c-type", "volume_percent": "loud"}')
        hub.send(b'{"type": "volume", "id": "c-range", "volume_percent": 400}')
        hub.send(json.dumps({"type": "pause", "id": "c-big", "pad": "x" * MAX_MESSAGE_BYTES}))
        hub.send(b'{"type": "volume", "id": "c-ok", "volume_percent": 33}')
        ok = wait_for(lambda: hub.ack_for("c-ok"), 10, "the ack of a good command", system.logs)
        assert ok[0]["ok"] is True
        errors = {cid: hub.ack_for(cid)[0]["error"] for cid in ("c-unknown", "c-type", "c-range")}
        assert errors == {
            "c-unknown": "unknown_command",
            "c-type": "wrong_type",
            "c-range": "invalid_value",
        }
        # Too large to parse: refused without an ack (the id cannot be read safely).
        assert hub.ack_for("c-big") == []
        assert system.speakers["kitchen"].proc.poll() is None

        # QoS 1 may deliver twice: a repeated id is applied once and acked the same.
        uri = first_track(system)
        play = json.dumps(
            {"type": "play", "id": "c-dup", "tracks": [{"uri": uri, "duration_ms": 60000}]}
        )
        hub.send(play)
        first = wait_for(lambda: hub.ack_for("c-dup"), 10, "first ack")
        hub.send(play)
        both = wait_for(lambda: _exactly(2, hub.ack_for("c-dup")), 10, "second ack")
        assert both[0] == both[1] == first[0]
        time.sleep(0.3)
        with hub.lock:
            started = [e for e in hub.events if e["kind"] == "started"]
        assert len(started) == 1
        assert retained_state(system, "kitchen")["revision"] == first[0]["revision"]
    finally:
        hub.close()


def test_hub_restart_with_embedded_broker_speakers_come_back(tmp_path: Any) -> None:
    system = System(tmp_path, embedded=True)
    seed_demo(system.db)
    system.provision("kitchen")
    system.start_hub()
    system.start_speaker("kitchen")
    try:
        api = Api(system)
        api.wait_online("kitchen")
        uri = first_track(system)
        r = api.client.put("/v1/me/player/play", json={"uris": [uri], "position_ms": 5000})
        assert r.status_code == 204
        before = api.player()
        asked_before = time.monotonic()
        assert before is not None
        api.close()
        assert system.hub is not None
        assert system.hub.stop() == 0  # the broker goes down with the hub
        system.start_hub()  # same data dir and ports: a hub reboot
        api = Api(system)
        api.wait_online("kitchen")
        after = wait_for(api.player, 30, "the speaker's state back at the hub", system.logs)
        elapsed_ms = (time.monotonic() - asked_before) * 1000
        assert after["revision"] == before["revision"]
        assert after["item"]["uri"] == uri
        assert after["is_playing"] is True
        # Playback went on through the restart; the progress shown must too (the
        # speaker's republished state is rebased, not its old position stamped anew).
        assert after["progress_ms"] >= before["progress_ms"] + elapsed_ms - 1000
        r = api.client.put("/v1/me/player/pause")
        assert r.status_code == 204
        api.close()
    finally:
        system.stop()


def _exactly(count: int, items: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    return items if len(items) == count else None


def test_a_restarted_speaker_is_seen_afresh(system: System) -> None:
    api = Api(system)
    try:
        api.wait_online("kitchen")
        uri = first_track(system)
        for volume in (10, 20, 30):  # raise the revision well above a fresh start's
            api.client.put("/v1/me/player/volume", params={"volume_percent": volume})
        api.client.put("/v1/me/player/play", json={"uris": [uri]})
        system.speakers["kitchen"].stop(signal.SIGKILL)  # a power cut
        wait_for(lambda: not api.devices()["kitchen"]["is_online"], 10, "kitchen offline")
        system.start_speaker("kitchen")
        api.wait_online("kitchen")
        # The hub now shows the fresh speaker (nothing loaded, volume 50), not the old state.
        wait_for(lambda: api.devices()["kitchen"]["volume_percent"] == 50, 10, "fresh state")
        r = api.client.put(
            "/v1/me/player/volume", params={"device_id": "kitchen", "volume_percent": 5}
        )
        assert r.status_code == 204
        assert api.devices()["kitchen"]["volume_percent"] == 5
    finally:
        api.close()


def test_a_speaker_lost_while_the_broker_was_down_is_shown_offline(system: System) -> None:
    api = Api(system)
    try:
        api.wait_online("kitchen")
        assert system.broker is not None
        system.broker.stop()  # Mosquitto sends the clients' wills as it goes
        started = time.monotonic()
        r = api.client.put(
            "/v1/me/player/volume", params={"device_id": "kitchen", "volume_percent": 9}
        )
        assert time.monotonic() - started < 1.0  # at once, never the command timeout
        assert (r.status_code, r.json()["error"]["message"]) in {
            (404, "Device is offline: Kitchen"),
            (503, "The hub is not connected to its broker; try again shortly"),
        }
        system.speakers["kitchen"].stop(signal.SIGKILL)  # dies while nobody hears its will
        system.broker.start()
        wait_for(lambda: api.client.get("/healthz").status_code == 200, 30, "hub reconnected")
        assert api.devices()["kitchen"]["is_online"] is False
        r = api.client.put("/v1/me/player/pause", params={"device_id": "kitchen"})
        assert r.status_code == 404
    finally:
        api.close()


def test_hub_shrugs_off_garbage_from_a_speaker(system: System) -> None:
    """A rogue (or broken) speaker can only write its own topics; none of it hurts."""
    secret = provisioning.add_broker_user(system.db, "rogue", "speaker")
    assert system.broker is not None
    system.broker.stop()
    system.start_broker()  # re-read the users, with the rogue in them
    api = Api(system)
    rogue = paho.Client(CallbackAPIVersion.VERSION2, client_id="rogue", protocol=paho.MQTTv311)
    rogue.username_pw_set("rogue", secret)
    rogue.tls_set_context(pinned_context(system.tls.ca_pem))
    rogue.connect("127.0.0.1", system.mqtt_port)
    rogue.loop_start()
    try:
        api.wait_online("kitchen")
        junk = [
            b"\xff\x00",
            b"[]",
            b'{"type": "device"}',
            b"x" * (MAX_MESSAGE_BYTES + 10),
            json.dumps(
                {"type": "device", "id": "kitchen", "name": "Impostor", "model": "m", "fw": "1"}
            ).encode(),  # claims to be another device
            json.dumps({"type": "state", "revision": "high"}).encode(),
            json.dumps({"type": "ack", "id": 5, "ok": True, "revision": 1}).encode(),
        ]
        for channel in ("status", "state", "ack", "events"):
            for payload in junk:
                rogue.publish(f"legato/v1/device/rogue/{channel}", payload, qos=1).wait_for_publish(
                    5
                )
        good = json.dumps(
            {"type": "device", "id": "rogue", "name": "Rogue", "model": "m", "fw": "1"}
        )
        rogue.publish("legato/v1/device/rogue/status", good, qos=1, retain=True).wait_for_publish(5)
        wait_for(lambda: "rogue" in api.devices(), 10, "the rogue's one valid status")
        devices = api.devices()
        assert devices["kitchen"]["name"] == "Kitchen"  # not the impostor
        assert api.client.get("/healthz").status_code == 200
        r = api.client.put(
            "/v1/me/player/volume", params={"device_id": "kitchen", "volume_percent": 44}
        )
        assert r.status_code == 204
        assert "Traceback" not in (system.root / "hub.log").read_text()
    finally:
        rogue.publish("legato/v1/device/rogue/status", b"", qos=1, retain=True).wait_for_publish(5)
        rogue.disconnect()
        rogue.loop_stop()
        api.close()
