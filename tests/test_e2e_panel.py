"""A front panel on a pseudo-terminal steers a real speaker process, frame by frame.

Mosquitto, the hub and a speaker (clock engine) run as processes on loopback; the test
plays the panel on the master end of a pty whose slave the speaker opened with
``--panel``.  What the panel did is checked through the hub's Web API, and what the
speaker tells the panel by the frames it sends back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hardware.controls.keymap import Gesture
from hardware.controls.status import Mode
from hardware.panel.frames import Button, Encoder, Hello, Message, State, Volume
from hub.demo_music.seed import seed_demo
from tests.brokers import free_port
from tests.panel_pty import PanelPty
from tests.system import Api, System, retained_state, wait_for
from tests.test_e2e_control import album_tracks

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

WAIT_S = 10


class Kitchen:
    """The speaker under test: its Web API view at the hub, its /info, its panel."""

    def __init__(self, system: System, api: Api, panel: PanelPty, info_port: int) -> None:
        self.system = system
        self.api = api
        self.panel = panel
        self.info_url = f"http://127.0.0.1:{info_port}/info"

    def panel_diagnostics(self) -> dict[str, Any]:
        """``/info`` as a maker sees it with the speaker's pairing token."""
        token = self.system.local_token("kitchen")
        r = httpx.get(self.info_url, headers={"Authorization": f"Bearer {token}"}, timeout=2)
        r.raise_for_status()
        return dict(r.json()["diagnostics"]["controls"]["devices"]["panel"])

    def volume(self) -> int:
        return int(self.api.devices()["kitchen"]["volume_percent"])

    def wait_volume(self, percent: int) -> None:
        wait_for(lambda: self.volume() == percent, WAIT_S, f"volume {percent}", self.system.logs)

    def wait_connected(self, connected: bool) -> None:
        wait_for(
            lambda: self.panel_diagnostics()["connected"] is connected,
            WAIT_S,
            f"panel connected={connected}",
            self.system.logs,
        )

    def hears(self, message: Message, since: int) -> None:
        """The panel hears ``message`` among the frames after the first ``since``."""
        self.panel.wait_for(lambda h: message in h[since:], WAIT_S, repr(message))

    def hears_last_state(self, mode: Mode, since: int) -> None:
        def settled(heard: list[Message]) -> bool:
            states = [m for m in heard[since:] if isinstance(m, State)]
            return bool(states) and states[-1] == State(mode=mode)

        self.panel.wait_for(settled, WAIT_S, f"STATE,{mode.value} last")

    def player(self) -> dict[str, Any]:
        player = self.api.player()
        assert player is not None
        return player


@pytest.fixture
def kitchen(tmp_path: Path) -> Iterator[Kitchen]:
    system = System(tmp_path)
    seed_demo(system.db)
    system.provision("kitchen")
    panel = PanelPty(tmp_path / "ttyPANEL")
    info_port = free_port()
    api: Api | None = None
    try:
        system.start_broker()
        system.start_hub()
        system.start_speaker("kitchen", "--panel", str(panel.path), "--port", str(info_port))
        api = Api(system)
        api.wait_online("kitchen")
        k = Kitchen(system, api, panel, info_port)
        k.wait_connected(True)
        yield k
    finally:
        if api is not None:
            api.close()
        system.stop()
        panel.close()


def test_a_front_panel_steers_the_speaker_frame_by_frame(kitchen: Kitchen) -> None:
    panel, api = kitchen.panel, kitchen.api
    start = kitchen.volume()

    # HELLO: the panel is told what the speaker shows.
    panel.send(Hello(firmware="0.1.0"))
    first = panel.next_frames(3)
    assert first[:2] == [State(mode=Mode.IDLE), Volume(percent=start)]
    assert kitchen.panel_diagnostics()["firmware"] == "0.1.0"

    # The knob: three detents up is three steps of 2 at the hub, and VOL comes back.
    mark = len(panel.heard)
    panel.send(Encoder(detents=3))
    kitchen.wait_volume(start + 6)
    kitchen.hears(Volume(percent=start + 6), since=mark)

    # Play/pause and next on something the listener started from the phone.
    uris = album_tracks(kitchen.system)
    r = api.client.put("/v1/me/player/play", params={"device_id": "kitchen"}, json={"uris": uris})
    assert r.status_code == 204, r.text
    kitchen.hears_last_state(Mode.PLAYING, since=mark)
    mark = len(panel.heard)
    panel.send(Button(name="play", event=Gesture.PRESS))
    wait_for(lambda: kitchen.player()["is_playing"] is False, WAIT_S, "paused at the hub")
    kitchen.hears_last_state(Mode.PAUSED, since=mark)
    mark = len(panel.heard)
    panel.send(Button(name="play", event=Gesture.PRESS))
    wait_for(lambda: kitchen.player()["is_playing"] is True, WAIT_S, "playing at the hub")
    kitchen.hears_last_state(Mode.PLAYING, since=mark)
    panel.send(Button(name="next", event=Gesture.PRESS))
    second = uris[1].replace("spotify:", "legato:")
    wait_for(lambda: kitchen.player()["item"]["uri"] == second, WAIT_S, "the next track")

    # Garbage, then a valid frame: the frame is applied, the garbage counted.
    panel.send(b"\x00\xff~~noise~~\r\n$ENC,+", ("ENC", "-1"))
    kitchen.wait_volume(start + 4)
    dropped = kitchen.panel_diagnostics()["dropped"]
    assert dropped["garbage"] == 2  # the noise, and the frame cut short by the next "$"

    # A volume change from the phone reaches the panel.
    mark = len(panel.heard)
    r = api.client.put("/v1/me/player/volume", params={"volume_percent": 30})
    assert r.status_code == 204, r.text
    kitchen.hears(Volume(percent=30), since=mark)


def test_a_panel_unplugged_and_plugged_back_works_again(kitchen: Kitchen) -> None:
    panel = kitchen.panel
    start = kitchen.volume()
    panel.send(Hello(firmware="0.1.0"), Encoder(detents=1))
    kitchen.wait_volume(start + 2)

    panel.unplug()
    kitchen.wait_connected(False)
    r = kitchen.api.client.put(
        "/v1/me/player/volume", params={"device_id": "kitchen", "volume_percent": 40}
    )
    assert r.status_code == 204, r.text  # changed while the panel is away
    panel.plug()
    kitchen.wait_connected(True)
    assert kitchen.panel_diagnostics()["reopens"] == 1

    panel.send(Hello(firmware="0.1.1"))
    assert panel.next_frames(2) == [State(mode=Mode.IDLE), Volume(percent=40)]
    panel.send(Encoder(detents=-2))
    kitchen.wait_volume(36)
    kitchen.hears(Volume(percent=36), since=0)
    assert kitchen.panel_diagnostics()["firmware"] == "0.1.1"


def test_after_a_restart_play_on_the_panel_goes_on_with_what_played_last(
    kitchen: Kitchen,
) -> None:
    system, api, panel = kitchen.system, kitchen.api, kitchen.panel
    uris = album_tracks(system)
    r = api.client.put(
        "/v1/me/player/play",
        params={"device_id": "kitchen"},
        json={"uris": uris, "offset": {"position": 1}},
    )
    assert r.status_code == 204, r.text
    wait_for(lambda: kitchen.player()["is_playing"] is True, WAIT_S, "playing at the hub")
    panel.send(Hello(firmware="0.1.0"), Button(name="play", event=Gesture.LONG))  # stop
    wait_for(
        lambda: (api.player() or {}).get("item") is None, WAIT_S, "stopped at the hub", system.logs
    )

    # A power cut: the speaker process goes and comes back, and so does the panel.
    system.speakers["kitchen"].stop()
    system.start_speaker("kitchen", "--panel", str(panel.path), "--port", str(panel_port(kitchen)))
    api.wait_online("kitchen")
    mark = len(panel.heard)
    panel.send(Hello(firmware="0.1.0"))
    kitchen.hears(State(mode=Mode.IDLE), since=mark)
    panel.send(Button(name="play", event=Gesture.PRESS))
    second = uris[1].replace("spotify:", "legato:")

    def playing_again() -> bool:
        # as every subscriber sees it; the hub's active speaker stays the one last told
        # to play through the hub (a speaker's own state never claims that: relay.py)
        state = retained_state(system, "kitchen")
        current = state.get("current") or {}
        return bool(state["is_playing"]) and current.get("uri") == second

    wait_for(playing_again, WAIT_S, "the track that played last, playing again", system.logs)


def panel_port(kitchen: Kitchen) -> int:
    return int(kitchen.info_url.rsplit(":", 1)[1].split("/", 1)[0])
