"""The speaker's config, clock engine and controller, without a network."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from connect_protocol.codec import encode
from connect_protocol.messages import EventKind, Pause, Play, SetVolume, TrackRef
from device import config
from device.clock_engine import ClockEngine
from device.config import ConfigError
from device.controller import Controller, SteadyWallClock
from hub.fleet.provisioning import write_speaker_config

TRACKS = (
    TrackRef(uri="legato:track:a", duration_ms=200),
    TrackRef(uri="legato:track:b", duration_ms=300),
)


def test_the_config_the_hub_writes_is_the_one_the_speaker_reads(tmp_path: Path) -> None:
    path = tmp_path / "spk.toml"
    write_speaker_config(
        path,
        device_id="den-1",
        name='Den "A"',
        secret="s3cret",
        hub_url="http://h:8000",
        broker_url="mqtt://h:1883",
        sink="file:/tmp/x.raw",
    )
    cfg = config.load(path)
    assert (cfg.id, cfg.name, cfg.hub_url, cfg.broker_url) == (
        "den-1",
        'Den "A"',
        "http://h:8000",
        "mqtt://h:1883",
    )
    assert (cfg.username, cfg.password, cfg.sink) == ("den-1", "s3cret", "file:/tmp/x.raw")
    assert os.stat(path.with_suffix(".secret")).st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[speaker\n", "not valid TOML"),
        ('[speaker]\nid = "bad id!"\n', "speaker.id"),
        ("[speaker]\nhttp_port = 70000\n", "speaker.http_port"),
        ('[speaker]\nhttp_port = "80"\n', "speaker.http_port must be a int"),
        ('[audio]\nengine = "vinyl"\n', "audio.engine must be one of"),
        ('[audio]\nsink = "hdmi"\n', "audio.sink must be"),
        ("speaker = 3\n", "[speaker] must be a table"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config.load(path)


def test_secret_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "s.secret"
    secret.write_text("x")
    secret.chmod(0o644)
    path = tmp_path / "c.toml"
    path.write_text('[broker]\npassword_file = "s.secret"\n')
    with pytest.raises(ConfigError, match="chmod 600"):
        config.load(path)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        config.load(tmp_path / "nope.toml")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_clock_engine_position_follows_play_pause_seek() -> None:
    async def scenario() -> None:
        clock, ended = FakeClock(), list[str]()
        engine = ClockEngine(ended.append, clock=clock)
        engine.load(TRACKS[1], 50, playing=True)
        clock.now += 0.1
        assert engine.position_ms() == 150
        engine.set_playing(False)
        clock.now += 5
        assert engine.position_ms() == 150
        engine.seek(290)
        engine.set_playing(True)
        clock.now += 1
        assert engine.position_ms() == 300  # never past the end
        engine.unload()
        assert engine.position_ms() == 0

    asyncio.run(scenario())


def test_controller_plays_through_tracks_on_the_engine_clock() -> None:
    async def scenario() -> list[str]:
        ended: list[str] = []

        def on_end(uri: str) -> None:
            ended.append(uri)
            controller.track_ended(uri)

        controller = Controller(ClockEngine(on_end))
        out = controller.handle(Play(id="p", tracks=TRACKS))
        assert out.ack is not None
        assert out.ack.ok
        assert [e.kind for e in out.events] == [EventKind.STARTED]
        for _ in range(100):  # both tracks (0.2 s + 0.3 s) end in real time; bounded wait
            if len(ended) == 2:
                break
            await asyncio.sleep(0.05)
        assert controller.state.current == TRACKS[0]  # end of context: rewound, stopped
        assert not controller.state.is_playing
        return ended

    assert asyncio.run(scenario()) == ["legato:track:a", "legato:track:b"]


def test_controller_acks_garbage_it_can_attribute_and_ignores_the_rest() -> None:
    async def scenario() -> None:
        controller = Controller(ClockEngine(lambda _uri: None))
        out = controller.handle_bytes(b'{"type":"volume","id":"v1","volume_percent":"x"}')
        assert out.ack is not None
        assert out.ack.error is not None
        assert out.ack.error.value == "wrong_type"
        assert out.state is None
        assert controller.handle_bytes(b"\x00garbage").ack is None
        ok = controller.handle_bytes(encode(SetVolume(id="v2", volume_percent=9)))
        assert ok.ack is not None
        assert ok.ack.ok
        assert ok.state is not None
        assert ok.state.volume_percent == 9
        again = controller.handle_bytes(encode(SetVolume(id="v2", volume_percent=9)))
        assert again.ack == ok.ack
        assert again.state is None  # applied once
        refused = controller.handle(Pause(id="p"))
        assert refused.ack is not None
        assert not refused.ack.ok

    asyncio.run(scenario())


def test_info_document_says_only_what_mdns_says() -> None:
    from connect_protocol.messages import DeviceInfo
    from device.local_api import info_document

    doc = info_document(DeviceInfo(id="x", name="X", model="m", fw="1"))
    assert json.loads(json.dumps(doc)) == {
        "id": "x",
        "name": "X",
        "model": "m",
        "fw": "1",
        "proto": "1",
    }


def test_the_steady_wall_clock_reads_the_wall_once_then_follows_the_monotonic_clock() -> None:
    wall = iter([1_700_000_000_000_000_000, 1_000])  # an NTP step after the first read
    mono = [5_000_000_000]
    clock = SteadyWallClock(wall_ns=lambda: next(wall), monotonic_ns=lambda: mono[0])
    assert clock() == 1_700_000_000_000
    mono[0] += 2_500_000_000
    assert clock() == 1_700_000_002_500  # 2.5 s on, whatever the wall clock says now


def test_the_clock_engine_never_keeps_downloads_waiting() -> None:
    async def go() -> None:
        engine = ClockEngine(lambda uri: None)
        engine.load(TrackRef(uri="legato:track:x", duration_ms=5000), 0, True)
        assert not engine.needs_network()
        engine.close()

    asyncio.run(go())


def test_group_membership_comes_from_the_hub_never_the_local_socket() -> None:
    """A phone on the speaker's local control steers its player, but cannot detach it from
    the hub's group or make it follow a leader (and key) of its own choosing."""

    async def scenario() -> None:
        from connect_protocol.messages import JoinGroup, LeaveGroup

        asked: list[object] = []

        def on_group(cmd: JoinGroup | LeaveGroup) -> str | None:
            asked.append(cmd)
            return None

        controller = Controller(ClockEngine(lambda _uri: None), on_group=on_group)
        join = JoinGroup(id="j1", group_id="g", leader_id="x", leader_addr="10.0.0.9:4000", key="k")
        for cmd in (join, LeaveGroup(id="l1")):
            ack = controller.handle_bytes(encode(cmd), from_hub=False).ack
            assert ack is not None
            assert not ack.ok
            assert "hub" in ack.message
        assert asked == []
        ack = controller.handle_bytes(encode(LeaveGroup(id="l2"))).ack  # from the hub
        assert ack is not None
        assert ack.ok
        assert len(asked) == 1

    asyncio.run(scenario())
