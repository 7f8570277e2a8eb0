"""The speaker's own controls through its real controller and clock engine: what a
listener at the speaker notices (volume at once, play/pause, held buttons repeat and stop
on release), and what the lights and a panel are told."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

from connect_protocol.messages import Command, Next, Play, SetVolume, TrackRef
from device.clock_engine import ClockEngine
from device.controller import Controller
from device.local_controls import LocalControls
from hardware.controls.keymap import Gesture, Pressed, Turned
from hardware.controls.settings import ControlSettings
from hardware.controls.status import Mode, Pattern, View

TRACKS = tuple(
    TrackRef(uri=f"legato:track:t{i}", duration_ms=120_000, album=f"Album {i // 2}")
    for i in range(4)
)


class Rig:
    """A controller on the clock engine, with the controls and a recording indicator."""

    def __init__(self, loop: asyncio.AbstractEventLoop, **settings: object) -> None:
        self.engine = ClockEngine(lambda uri: None, loop=loop)
        self.controller = Controller(self.engine)
        self.applied: list[Command] = []
        self.views: list[View] = []
        self.controls = LocalControls(
            dataclasses.replace(ControlSettings(), **settings),  # type: ignore[arg-type]
            loop=loop,
            apply=self.apply,
            state=lambda: self.controller.state,
        )
        self.controls.add_indicator(self)

    def apply(self, cmd: Command) -> None:
        self.applied.append(cmd)
        outcome = self.controller.handle(cmd)
        if outcome.state is not None:
            self.controls.observe(state=outcome.state)

    def show(self, view: View) -> None:
        self.views.append(view)

    def view(self) -> View:
        """The latest view shown (a call, so each check reads it afresh)."""
        return self.views[-1]

    def play(self) -> None:
        self.apply(Play(id="hub-1", tracks=TRACKS, context_uri="legato:playlist:p"))


def test_knob_and_buttons_change_the_player_at_once() -> None:
    async def scenario() -> None:
        rig = Rig(asyncio.get_running_loop())
        rig.controls.observe(started=True, paired=True, connected=True)
        rig.play()
        assert rig.views[-1] == View(mode=Mode.PLAYING, volume_percent=50, pattern=Pattern.PLAYING)
        rig.controls.handle(Turned(3))
        assert rig.controller.state.volume_percent == 56  # 3 detents x 2 %
        assert rig.engine.volume_percent == 56  # the engine has it: no round trip
        assert rig.views[-1].volume_percent == 56
        rig.controls.handle(Turned(-1))
        assert rig.engine.volume_percent == 54
        rig.controls.handle(Pressed("play", Gesture.PRESS))
        assert not rig.controller.state.is_playing
        assert rig.view().mode is Mode.PAUSED
        assert rig.view().pattern is Pattern.IDLE
        rig.controls.handle(Pressed("knob", Gesture.PRESS))
        assert rig.controller.state.is_playing
        rig.controls.handle(Pressed("next", Gesture.LONG))  # next album
        assert rig.controller.state.current == TRACKS[2]
        rig.controls.handle(Pressed("next", Gesture.RELEASE))
        assert rig.controller.state.current == TRACKS[2]  # the release does nothing more
        # every control went through the reducer: one revision each, ids of their own
        assert len({c.id for c in rig.applied}) == len(rig.applied)
        assert rig.controller.state.revision == len(rig.applied)
        assert (rig.controls.detents, rig.controls.events) == (2, 6)

    asyncio.run(scenario())


def test_a_held_volume_button_repeats_until_released() -> None:
    async def scenario() -> None:
        rig = Rig(asyncio.get_running_loop(), repeat_s=0.05)
        rig.play()
        rig.controls.submit(Pressed("vol_up", Gesture.LONG))  # as from a GPIO thread
        for _ in range(200):  # the first step at once, then one per 50 ms
            if rig.controller.state.volume_percent >= 58:
                break
            await asyncio.sleep(0.01)
        rig.controls.submit(Pressed("vol_up", Gesture.RELEASE))
        await asyncio.sleep(0.01)
        held = rig.controller.state.volume_percent
        assert held >= 58  # four steps of 2 % came from one long press
        await asyncio.sleep(0.15)
        assert rig.controller.state.volume_percent == held  # stopped on release
        # a panel unplugged mid-press: its release never comes, release_all stops it
        rig.controls.handle(Pressed("vol_down", Gesture.LONG))
        rig.controls.release_all()
        low = rig.controller.state.volume_percent
        await asyncio.sleep(0.12)
        assert rig.controller.state.volume_percent == low == held - 2

    asyncio.run(scenario())


def test_play_after_stop_plays_the_last_context_and_errors_show_until_it_plays() -> None:
    async def scenario() -> None:
        rig = Rig(asyncio.get_running_loop())
        rig.controls.observe(started=True, paired=True, connected=True)
        rig.controls.handle(Pressed("play", Gesture.PRESS))
        assert rig.applied == []  # nothing ever played: nothing to do
        rig.play()
        rig.controls.handle(Pressed("next", Gesture.PRESS))
        rig.controls.handle(Pressed("play", Gesture.LONG))  # stop
        assert rig.controller.state.current is None
        assert rig.view().mode is Mode.IDLE
        rig.controls.observe(failed=True)
        assert rig.view().pattern is Pattern.ERROR
        rig.controls.handle(Pressed("play", Gesture.PRESS))
        state = rig.controller.state
        assert state.current == TRACKS[1]
        assert state.context_uri == "legato:playlist:p"
        assert state.is_playing
        assert rig.view().pattern is Pattern.PLAYING  # playing again ends the error
        rig.controls.observe(connected=False)
        assert rig.view().pattern is Pattern.CONNECTING

    asyncio.run(scenario())


def test_a_second_long_press_restarts_the_repeat_and_one_release_stops_it() -> None:
    async def scenario() -> None:
        rig = Rig(asyncio.get_running_loop(), repeat_s=0.05)
        rig.play()
        rig.controls.handle(Pressed("vol_up", Gesture.LONG))
        rig.controls.handle(Pressed("vol_up", Gesture.LONG))  # a panel that says it twice
        rig.controls.handle(Pressed("vol_up", Gesture.RELEASE))
        stopped = rig.controller.state.volume_percent
        await asyncio.sleep(0.2)
        assert rig.controller.state.volume_percent == stopped

    asyncio.run(scenario())


def test_a_babbling_panel_cannot_flood_the_player() -> None:
    async def scenario() -> None:
        rig = Rig(asyncio.get_running_loop())
        rig.play()

        def babble() -> None:  # from a device's thread, as fast as it can
            for _ in range(500):
                rig.controls.submit(Turned(1))
                rig.controls.submit(Pressed("next", Gesture.PRESS))

        thread = threading.Thread(target=babble)
        thread.start()
        thread.join(10)
        for _ in range(100):
            await asyncio.sleep(0.01)
        # every detent counted (to the top of the range), in fewer volume changes than detents
        assert rig.controls.detents == 500
        assert rig.controller.state.volume_percent == 100
        volumes = [c for c in rig.applied if isinstance(c, SetVolume)]
        assert len(volumes) <= 25  # 50 -> 100 in steps of 2 at most
        # buttons beyond the budget are dropped and counted, not queued without end
        assert rig.controls.refused > 400
        nexts = [c for c in rig.applied if isinstance(c, Next)]
        assert len(nexts) + rig.controls.refused == 500

    asyncio.run(scenario())
