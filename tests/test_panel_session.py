"""The panel session on its own: what the panel's messages do on the speaker, and which
frames the panel is sent so that it always shows what the speaker shows."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hardware.controls.keymap import Gesture, Pressed, Turned
from hardware.controls.status import Mode, Pattern, View
from hardware.panel.frames import Button, Encoder, Hello, Led, Ping, Pong, State, Volume
from hardware.panel.session import PanelSession, Reaction

IDLE = View(Mode.IDLE, 50, Pattern.IDLE)
PLAYING = View(Mode.PLAYING, 50, Pattern.PLAYING)


def greeted(view: View | None = IDLE) -> PanelSession:
    s = PanelSession()
    s.connected()
    if view is not None:
        s.show(view)
    s.receive(Hello(firmware="1.0"))
    return s


def test_buttons_and_the_knob_become_control_events() -> None:
    s = greeted()
    assert s.receive(Button(name="play", event=Gesture.PRESS)) == Reaction(
        events=(Pressed("play", Gesture.PRESS),)
    )
    assert s.receive(Button(name="vol_up", event=Gesture.LONG)).events == (
        Pressed("vol_up", Gesture.LONG),
    )
    assert s.receive(Button(name="vol_up", event=Gesture.RELEASE)).events == (
        Pressed("vol_up", Gesture.RELEASE),
    )
    assert s.receive(Encoder(detents=3)) == Reaction(events=(Turned(3),))
    assert s.receive(Encoder(detents=-1)).events == (Turned(-1),)
    assert s.receive(Encoder(detents=0)) == Reaction()  # nothing turned, nothing done


def test_a_ping_is_answered_at_once() -> None:
    s = greeted()
    assert s.receive(Ping()) == Reaction(replies=(Pong(),))


def test_a_panel_that_said_hello_before_the_speaker_listened_is_told_everything() -> None:
    """The speaker restarted while the panel ran on: its first PING (or button) gets the
    whole view, since it will not say HELLO again while PONGs come back."""
    s = PanelSession()
    s.connected()
    assert s.show(IDLE) == ()  # the panel has not spoken on this connection
    assert s.receive(Ping()).replies == (
        Pong(),
        State(mode=Mode.IDLE),
        Volume(percent=50),
        Led(pattern=Pattern.IDLE),
    )
    assert s.receive(Ping()).replies == (Pong(),)
    s.connected()
    s.show(PLAYING)
    reaction = s.receive(Encoder(detents=2))
    assert reaction.events == (Turned(2),)
    assert len(reaction.replies) == 3
    assert s.hello is None


def test_hello_is_answered_with_the_whole_view() -> None:
    s = PanelSession()
    s.connected()
    assert s.show(IDLE) == ()  # nothing is sent before the panel's HELLO
    reaction = s.receive(Hello(firmware="1.0"))
    assert reaction.replies == (
        State(mode=Mode.IDLE),
        Volume(percent=50),
        Led(pattern=Pattern.IDLE),
    )
    assert s.hello == Hello(firmware="1.0")


def test_hello_before_the_speaker_knows_its_view_then_the_view() -> None:
    s = greeted(view=None)
    assert s.show(IDLE) == (State(mode=Mode.IDLE), Volume(percent=50), Led(pattern=Pattern.IDLE))


def test_only_what_changed_is_sent() -> None:
    s = greeted()
    assert s.show(PLAYING) == (State(mode=Mode.PLAYING), Led(pattern=Pattern.PLAYING))
    assert s.show(View(Mode.PLAYING, 56, Pattern.PLAYING)) == (Volume(percent=56),)
    assert s.show(View(Mode.PLAYING, 56, Pattern.PLAYING)) == ()


def test_a_panel_that_restarts_hears_everything_again() -> None:
    s = greeted()
    s.show(PLAYING)
    assert len(s.receive(Hello(firmware="1.1")).replies) == 3
    assert s.hello == Hello(firmware="1.1")


def test_a_new_connection_waits_for_the_panel_then_tells_everything() -> None:
    s = greeted()
    s.connected()  # unplugged and plugged back
    assert s.hello is None
    assert s.show(PLAYING) == ()
    assert s.receive(Hello(firmware="1.0")).replies == (
        State(mode=Mode.PLAYING),
        Volume(percent=50),
        Led(pattern=Pattern.PLAYING),
    )


def test_frames_lost_on_the_way_are_told_again_with_the_next_change() -> None:
    s = greeted()
    s.forget()
    assert s.show(View(Mode.IDLE, 52, Pattern.IDLE)) == (
        State(mode=Mode.IDLE),
        Volume(percent=52),
        Led(pattern=Pattern.IDLE),
    )


VIEWS = st.builds(
    View,
    mode=st.sampled_from(Mode),
    volume_percent=st.integers(0, 100),
    pattern=st.sampled_from(Pattern),
)


PANEL_SAYS = st.sampled_from([Hello(firmware="x"), Ping(), Encoder(detents=1)])


@given(st.lists(st.one_of(VIEWS, PANEL_SAYS, st.just("reconnect")), max_size=30))
def test_the_panel_always_ends_up_showing_the_speakers_view(
    steps: list[View | Hello | Ping | Encoder | str],
) -> None:
    """Whatever the order of views, reconnections and what the panel says, once the panel
    has spoken on a connection the frames it got add up to the speaker's current view,
    and no frame repeats what it knew."""
    s = PanelSession()
    s.connected()
    panel: dict[str, object] | None = None  # None: has not spoken on this connection
    last: View | None = None
    for step in steps:
        if step == "reconnect":
            s.connected()
            panel = None
            continue
        if isinstance(step, View):
            last = step
            frames = s.show(step)
        else:
            assert not isinstance(step, str)
            if panel is None or isinstance(step, Hello):
                panel = {}  # the panel knows nothing (new connection, or it restarted)
            frames = s.receive(step).replies
        if panel is None:
            assert frames == ()
            continue
        for frame in frames:
            if isinstance(frame, Pong):
                continue
            assert panel.get(type(frame).__name__) != frame  # never says nothing new
            panel[type(frame).__name__] = frame
        if last is not None:
            assert panel == {
                "State": State(mode=last.mode),
                "Volume": Volume(percent=last.volume_percent),
                "Led": Led(pattern=last.pattern),
            }
