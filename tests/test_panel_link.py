"""The panel link on a real pseudo-terminal through pyserial: frames in -> control
events, the speaker's view -> frames out, and a panel unplugged, plugged back, missing
at start or talking nonsense."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from connect_protocol.backoff import Backoff
from hardware.controls.keymap import ControlEvent, Gesture, Pressed, Turned
from hardware.controls.status import Mode, Pattern, View
from hardware.panel.frames import Button, Encoder, Hello, Led, Ping, Pong, State, Volume
from hardware.panel.link import PanelLink
from tests.panel_pty import PanelPty
from tests.system import wait_for

pytestmark = pytest.mark.integration

IDLE = View(Mode.IDLE, 50, Pattern.IDLE)
PLAYING = View(Mode.PLAYING, 50, Pattern.PLAYING)
FAST_REOPEN = Backoff(initial_s=0.05, maximum_s=0.05)


class Speaker:
    """The link with what the speaker would do with its callbacks, recorded."""

    def __init__(self, port: Path) -> None:
        self.events: queue.Queue[ControlEvent] = queue.Queue()
        self.released = threading.Event()
        self.link = PanelLink(
            str(port),
            115200,
            submit=self.events.put,
            release_all=self.released.set,
            backoff=FAST_REOPEN,
        )

    def event(self, timeout_s: float = 5.0) -> ControlEvent:
        return self.events.get(timeout=timeout_s)

    def connected(self) -> None:
        wait_for(lambda: self.link.diagnostics()["connected"], 10, "the panel's port open")


@pytest.fixture
def pty(tmp_path: Path) -> Iterator[PanelPty]:
    panel = PanelPty(tmp_path / "ttyPANEL")
    yield panel
    panel.close()


@pytest.fixture
def speaker(pty: PanelPty) -> Iterator[Speaker]:
    s = Speaker(pty.path)
    s.link.start()
    try:
        s.connected()
        yield s
    finally:
        s.link.close()


def test_buttons_and_knob_reach_the_speaker(pty: PanelPty, speaker: Speaker) -> None:
    pty.send(Hello(firmware="0.1.0"), Encoder(detents=3), Button(name="play", event=Gesture.PRESS))
    assert speaker.event() == Turned(3)
    assert speaker.event() == Pressed("play", Gesture.PRESS)
    pty.send(("ENC", "-1"), ("BTN", "vol_up", "long"), ("BTN", "vol_up", "release"))
    assert [speaker.event() for _ in range(3)] == [
        Turned(-1),
        Pressed("vol_up", Gesture.LONG),
        Pressed("vol_up", Gesture.RELEASE),
    ]
    diagnostics = speaker.link.diagnostics()
    assert diagnostics["firmware"] == "0.1.0"
    wait_for(lambda: speaker.link.diagnostics()["frames_received"] == 6, 5, "6 frames counted")


def test_the_panel_is_told_the_view_when_it_speaks_then_what_changes(
    pty: PanelPty, speaker: Speaker
) -> None:
    speaker.link.show(IDLE)
    pty.send(Hello(firmware="0.1.0"))
    assert pty.next_frames(3) == [  # the first frames: nothing before the panel spoke
        State(mode=Mode.IDLE),
        Volume(percent=50),
        Led(pattern=Pattern.IDLE),
    ]
    speaker.link.show(PLAYING)
    speaker.link.show(View(Mode.PLAYING, 56, Pattern.PLAYING))
    assert pty.next_frames(3) == [
        State(mode=Mode.PLAYING),
        Led(pattern=Pattern.PLAYING),
        Volume(percent=56),
    ]
    pty.send(Ping())
    assert pty.next_frames(1) == [Pong()]  # and nothing more was sent in between


def test_a_panel_that_does_not_say_hello_again_is_told_at_its_first_ping(
    pty: PanelPty, speaker: Speaker
) -> None:
    """The speaker restarted while the panel ran on: the panel only PINGs."""
    speaker.link.show(PLAYING)
    pty.send(Ping())
    assert pty.next_frames(4) == [
        Pong(),
        State(mode=Mode.PLAYING),
        Volume(percent=50),
        Led(pattern=Pattern.PLAYING),
    ]


def test_garbage_then_a_valid_frame(pty: PanelPty, speaker: Speaker) -> None:
    pty.send(b"\x00\xffline noise\r\n$BTN,pl", b"$ENC,+2*7E\r\n", Encoder(detents=2))
    assert speaker.event() == Turned(2)
    wait_for(lambda: speaker.link.diagnostics()["frames_received"] == 1, 5, "the frame counted")
    assert speaker.link.diagnostics()["dropped"] == {
        "bad_checksum": 1,
        "unknown_type": 0,
        "bad_field": 0,
        "too_long": 0,
        "garbage": 2,  # the noise, and a frame cut short by the next "$"
    }


def test_unplugged_and_plugged_back(pty: PanelPty, speaker: Speaker) -> None:
    speaker.link.show(PLAYING)
    pty.send(Hello(firmware="0.1.0"), Button(name="vol_up", event=Gesture.LONG))
    assert speaker.event() == Pressed("vol_up", Gesture.LONG)
    pty.next_frames(3)
    pty.unplug()  # mid-press: the speaker must stop repeating
    assert speaker.released.wait(5)
    wait_for(lambda: not speaker.link.diagnostics()["connected"], 5, "the port closed")
    speaker.link.show(IDLE)  # a change while the panel is away

    pty.plug()
    speaker.connected()
    assert speaker.link.diagnostics()["reopens"] == 1
    assert speaker.link.diagnostics()["firmware"] is None  # no HELLO yet on this connection
    pty.send(Hello(firmware="0.1.1"), Encoder(detents=1))
    assert pty.next_frames(3) == [
        State(mode=Mode.IDLE),
        Volume(percent=50),
        Led(pattern=Pattern.IDLE),
    ]
    assert speaker.event() == Turned(1)
    assert speaker.link.diagnostics()["firmware"] == "0.1.1"


def test_a_port_missing_at_start_is_waited_for(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hardware.panel.link")
    pty = PanelPty(tmp_path / "ttyPANEL", plugged=False)
    speaker = Speaker(pty.path)
    speaker.link.start()  # does not fail: the panel may be plugged in later
    try:
        speaker.link.show(IDLE)
        assert speaker.link.diagnostics()["connected"] is False
        pty.plug()
        speaker.connected()
        pty.send(Hello(firmware="0.1.0"), Encoder(detents=5))
        assert pty.next_frames(1) == [State(mode=Mode.IDLE)]
        assert speaker.event() == Turned(5)
    finally:
        speaker.link.close()
        pty.close()
    waiting = [r for r in caplog.records if "not available" in r.getMessage()]
    assert len(waiting) == 1  # once per outage, however many tries it took


def test_a_failing_callback_does_not_stop_the_link(pty: PanelPty) -> None:
    seen: list[ControlEvent] = []

    def submit(event: ControlEvent) -> None:
        seen.append(event)
        if len(seen) == 1:
            raise RuntimeError("the loop is busy")

    link = PanelLink(str(pty.path), 115200, submit=submit, release_all=lambda: None).start()
    try:
        wait_for(lambda: link.diagnostics()["connected"], 10, "the port open")
        pty.send(Encoder(detents=1), Encoder(detents=2))
        wait_for(lambda: len(seen) == 2, 5, "both events")
        pty.send(Ping())
        assert pty.next_frames(1) == [Pong()]
    finally:
        link.close()


def test_a_panel_that_restarts_or_falls_silent_lets_go_of_what_it_held(
    pty: PanelPty, speaker: Speaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    pty.send(Hello(firmware="0.1.0"), ("BTN", "vol_up", "long"))
    assert speaker.event() == Pressed("vol_up", Gesture.LONG)
    speaker.released.clear()  # the first HELLO let go of nothing anyone had seen
    # a panel reset by its watchdog says HELLO again; the release it owed never comes
    pty.send(Hello(firmware="0.1.0"))
    assert speaker.released.wait(5)
    # a UART panel unplugged reports no error: silence longer than its PINGs is the sign
    monkeypatch.setattr("hardware.panel.link.SILENT_S", 0.3)
    speaker.released.clear()
    pty.send(("BTN", "vol_down", "long"))
    assert speaker.event() == Pressed("vol_down", Gesture.LONG)
    assert speaker.released.wait(5)
