"""The controls' pure parts: keymap, the command an action stands for, the lights' pattern,
and the ``[controls]`` settings a maker writes."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connect_protocol.messages import (
    Next,
    NextAlbum,
    Pause,
    Play,
    PlayerState,
    Previous,
    Resume,
    SetVolume,
    Stop,
    TrackRef,
)
from connect_protocol.reducer import reduce
from hardware.board_profiles import load_board
from hardware.controls.commands import (
    LastContext,
    command_for,
    last_context_of,
    volume_after,
    volume_command,
    worth_keeping,
)
from hardware.controls.keymap import DEFAULT_KEYMAP, Action, Gesture, Pressed, keymap_from
from hardware.controls.settings import controls_from
from hardware.controls.status import Mode, Pattern, Situation, pattern_of, player_mode
from hardware.errors import ControlsError

TRACKS = tuple(TrackRef(uri=f"legato:track:t{i}", duration_ms=90_000) for i in range(4))


def playing(offset: int = 1, volume: int = 50) -> PlayerState:
    s = dataclasses.replace(PlayerState(), volume_percent=volume)
    return reduce(
        s, Play(id="p", tracks=TRACKS, context_uri="legato:album:x", offset=offset), 0
    ).state


def act(action: Action, state: PlayerState, last: LastContext | None = None) -> object:
    return command_for(action, state, command_id="c", step_percent=2, last=last)


def test_default_keymap_is_what_the_readme_promises() -> None:
    press = {b: DEFAULT_KEYMAP.action(Pressed(b, Gesture.PRESS)) for b in DEFAULT_KEYMAP.press}
    assert press == {
        "play": Action.PLAY_PAUSE,
        "next": Action.NEXT,
        "prev": Action.PREVIOUS,
        "vol_up": Action.VOLUME_UP,
        "vol_down": Action.VOLUME_DOWN,
        "knob": Action.PLAY_PAUSE,
    }
    assert DEFAULT_KEYMAP.action(Pressed("play", Gesture.LONG)) is Action.STOP
    assert DEFAULT_KEYMAP.action(Pressed("next", Gesture.LONG)) is Action.NEXT_ALBUM
    # held volume buttons repeat (the speaker repeats them) rather than act once
    assert DEFAULT_KEYMAP.repeats_while_held(Pressed("vol_up", Gesture.LONG))
    assert DEFAULT_KEYMAP.action(Pressed("vol_up", Gesture.LONG)) is Action.NONE
    assert DEFAULT_KEYMAP.action(Pressed("play", Gesture.RELEASE)) is Action.NONE


def test_keymap_overrides_and_their_errors() -> None:
    km = keymap_from({"knob": "next"}, {"next": "repeat", "vol_up": "stop"})
    assert km.action(Pressed("knob", Gesture.PRESS)) is Action.NEXT
    assert km.repeats_while_held(Pressed("next", Gesture.LONG))
    assert km.action(Pressed("vol_up", Gesture.LONG)) is Action.STOP
    with pytest.raises(ControlsError, match=r"controls.press.play = 'dance' is not an action"):
        keymap_from({"play": "dance"})
    with pytest.raises(ControlsError, match=r"controls.long.shuffle is not a button"):
        keymap_from(None, {"shuffle": "next"})
    with pytest.raises(ControlsError, match="'repeat' is not an action"):
        keymap_from({"play": "repeat"})  # only a long press repeats


@given(st.integers(0, 100), st.integers(-60, 60), st.integers(1, 20))
def test_volume_steps_stay_in_range_and_move_the_right_way(
    volume: int, steps: int, step: int
) -> None:
    s = dataclasses.replace(PlayerState(), volume_percent=volume)
    after = volume_after(s, steps, step)
    assert 0 <= after <= 100
    assert (after - volume) * steps >= 0  # never against the turn
    cmd = volume_command(s, steps, step_percent=step, command_id="c")
    assert (cmd is None) == (after == volume)
    if cmd is not None:
        assert reduce(s, cmd, 0).state.volume_percent == after


def test_each_action_over_a_playing_state() -> None:
    s = playing()
    assert act(Action.PLAY_PAUSE, s) == Pause(id="c")
    paused = reduce(s, Pause(id="x"), 10).state
    assert act(Action.PLAY_PAUSE, paused) == Resume(id="c")
    assert act(Action.STOP, s) == Stop(id="c")
    assert act(Action.NEXT, s) == Next(id="c")
    assert act(Action.PREVIOUS, s) == Previous(id="c")
    assert act(Action.NEXT_ALBUM, s) == NextAlbum(id="c")
    assert act(Action.VOLUME_UP, s) == SetVolume(id="c", volume_percent=52)
    assert act(Action.VOLUME_DOWN, s) == SetVolume(id="c", volume_percent=48)
    assert act(Action.NONE, s) is None
    loud = playing(volume=100)
    assert act(Action.VOLUME_UP, loud) is None  # nothing to do at the top


def test_play_with_nothing_loaded_plays_the_last_context_where_it_was() -> None:
    s = reduce(playing(offset=2), Pause(id="x"), 5_000).state
    last = last_context_of(s)
    stopped = reduce(s, Stop(id="s"), 6_000).state
    assert last_context_of(stopped) is None
    assert act(Action.PLAY_PAUSE, stopped) is None  # no memory: nothing to play
    again = act(Action.PLAY_PAUSE, stopped, last=last)
    assert isinstance(again, Play)
    after = reduce(stopped, again, 7_000).state
    assert after.current == TRACKS[2]
    assert after.is_playing
    assert after.context_uri == "legato:album:x"
    assert after.position_ms == 5_000  # where it was paused
    for action in (Action.NEXT, Action.PREVIOUS, Action.STOP, Action.NEXT_ALBUM):
        assert act(action, stopped, last=last) is None


def test_lights_show_the_most_important_thing() -> None:
    up = Situation(started=True, paired=True, connected=True)
    assert pattern_of(Situation()) is Pattern.BOOTING
    assert pattern_of(dataclasses.replace(up, paired=False, connected=False)) is Pattern.NOT_PAIRED
    assert pattern_of(dataclasses.replace(up, connected=False)) is Pattern.CONNECTING
    assert pattern_of(dataclasses.replace(up, failed=True, connected=False)) is Pattern.ERROR
    assert pattern_of(up) is Pattern.IDLE
    assert pattern_of(dataclasses.replace(up, mode=Mode.PLAYING)) is Pattern.PLAYING
    assert pattern_of(dataclasses.replace(up, mode=Mode.BUFFERING)) is Pattern.BUFFERING
    assert pattern_of(dataclasses.replace(up, mode=Mode.PAUSED)) is Pattern.IDLE
    s = playing()
    assert player_mode(PlayerState()) is Mode.IDLE
    assert player_mode(s) is Mode.PLAYING
    assert player_mode(dataclasses.replace(s, buffering=True)) is Mode.BUFFERING
    assert player_mode(dataclasses.replace(s, is_playing=False)) is Mode.PAUSED
    assert player_mode(s, failed=True) is Mode.ERROR


def test_settings_put_the_config_over_the_board() -> None:
    board = load_board("pi-zero-2w-hifiberry-dacplus-zero")
    s = controls_from(
        {"volume_step": 5, "pins": {"play": 22, "led": "none"}, "long": {"prev": "stop"}}, board
    )
    assert s.pins["play"] == 22
    assert "led" not in s.pins
    assert s.pins["next"] == 27
    assert s.volume_step == 5
    assert s.keymap.action(Pressed("prev", Gesture.LONG)) is Action.STOP
    assert dict(controls_from({}, None).pins) == {}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"pins": {"play": 27}}, r"controls.pins.play = 27 is already next's on board"),
        ({"pins": {"play": 18}}, r"controls.pins.play = 18 is reserved on board .* \(i2s\)"),
        ({"pins": {"play": 40}}, r"pins.play = 40 is not a header GPIO"),
        ({"pins": {"buzzer": 4}}, r"pins.buzzer is not a control"),
        ({"pins": {"knob_a": "none"}}, r"pins.knob_a is missing \(a rotary encoder has two\)"),
        ({"press": {"play": "dance"}}, r"controls.press.play = 'dance' is not an action"),
        ({"volume_step": 0}, r"controls.volume_step = 0 must be a whole number 1-20"),
        ({"long_press_s": 10}, r"controls.long_press_s = 10 must be a number from 0.3 to 3.0"),
        ({"wheel": 1}, r"controls.wheel is not a setting"),
    ],
)
def test_settings_errors_name_the_key_at_fault(table: dict[str, object], message: str) -> None:
    board = load_board("pi-zero-2w-hifiberry-dacplus-zero")
    with pytest.raises(ControlsError, match=message):
        controls_from(table, board)


def test_what_played_last_is_kept_on_a_new_track_or_a_pause_not_on_every_tick() -> None:
    s = playing(offset=1)
    first = last_context_of(s)
    assert first is not None
    assert worth_keeping(None, first, playing=True)
    later = dataclasses.replace(first, position_ms=first.position_ms + 5_000)
    assert not worth_keeping(first, later, playing=True)  # the same track, only moved on
    assert worth_keeping(first, later, playing=False)  # paused there: worth remembering
    nxt = last_context_of(reduce(s, Next(id="n"), 10).state)
    assert nxt is not None
    assert worth_keeping(first, nxt, playing=True)  # another track
    other = dataclasses.replace(first, tracks=first.tracks[:2])
    assert worth_keeping(first, other, playing=True)  # another list of tracks
