"""Which speaker is active is the hub's to decide: a state message nobody asked for does
not move it (a speaker, or anyone holding its login, cannot claim listeners' commands)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from connect_protocol.codec import encode
from connect_protocol.messages import DeviceInfo, PlayerState, TrackRef
from connect_protocol.mqtt import BrokerAddress
from connect_protocol.topics import HUB_USERNAME, Channel, device_topic
from hub.context import hub_database
from hub.fleet.relay import Relay
from tests.brokers import client_for, start_broker

pytestmark = [pytest.mark.integration]


def test_a_playing_state_nobody_asked_for_does_not_make_a_speaker_active(
    tmp_path: Path,
) -> None:
    broker = start_broker("embedded", tmp_path, [(HUB_USERNAME, "hub"), ("rogue", "speaker")])
    db = hub_database(tmp_path / "hub.db")
    db.migrate()
    rogue = client_for(broker, "rogue")
    track = TrackRef(uri="legato:track:abc", duration_ms=200_000, name="Bait")

    async def scenario() -> None:
        address = BrokerAddress(
            host=broker.host,
            port=broker.port,
            username=HUB_USERNAME,
            password=broker.secrets[HUB_USERNAME],
        )
        relay = Relay(db, address)
        await relay.start()
        try:
            rogue.connect()
            info = DeviceInfo(id="rogue", name="Rogue", model="x", fw="1", online=True)
            rogue.publish(device_topic("rogue", Channel.STATUS), encode(info), retain=True)
            playing = PlayerState(session="s1", revision=9, is_playing=True, current=track)
            rogue.publish(device_topic("rogue", Channel.STATE), encode(playing))
            deadline = time.monotonic() + 5
            while not (relay.devices.get("rogue") and relay.devices["rogue"].state.is_playing):
                assert time.monotonic() < deadline, "the state never reached the relay"
                await asyncio.sleep(0.02)
            assert relay.active_device_id is None
        finally:
            await relay.stop()

    try:
        asyncio.run(scenario())
    finally:
        rogue.close()
        broker.stop()
