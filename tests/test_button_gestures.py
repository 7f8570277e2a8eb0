"""A button's contact edges, with bounce, become exactly the gestures the person made.

Pure: ``ButtonGestures`` is fed synthetic edge times; no pins, threads or clocks.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from hardware.controls.gestures import ButtonGestures
from hardware.controls.keymap import Gesture, Pressed

BOUNCE_S = 0.01
LONG_S = 0.8
PRESS = Pressed("play", Gesture.PRESS)
LONG = Pressed("play", Gesture.LONG)
RELEASE = Pressed("play", Gesture.RELEASE)


def machine(bounce_s: float = BOUNCE_S) -> ButtonGestures:
    return ButtonGestures("play", long_press_s=LONG_S, bounce_s=bounce_s)


def run(
    edges: list[tuple[float, bool]], until_s: float, ticks: tuple[float, ...] | list[float] = ()
) -> list[Pressed]:
    """Feed ``edges`` in time order, with ``advance`` also called at ``ticks`` (a worker
    thread looking in at arbitrary moments), then let time reach ``until_s``."""
    m = machine()
    out: list[Pressed] = []
    pending = sorted(ticks)
    for at_s, level in edges:
        while pending and pending[0] < at_s:
            out += m.advance(pending.pop(0))
        out += m.edge(at_s, level)
    for tick in pending:
        out += m.advance(tick)
    return out + m.advance(until_s)


@dataclass(frozen=True)
class Use:
    """One press of the button: how long it is held and how both contacts bounce."""

    hold_s: float  # from the last edge of the press burst to the first of the release
    gap_s: float  # quiet time after the release burst
    press_bounces: tuple[float, ...]  # gaps between extra edge pairs, each < bounce time
    release_bounces: tuple[float, ...]


bounce_gaps = st.lists(st.floats(min_value=0.0001, max_value=BOUNCE_S / 4), max_size=4).map(tuple)
uses = st.builds(
    Use,
    hold_s=st.one_of(
        st.floats(min_value=BOUNCE_S * 1.5, max_value=LONG_S * 0.9),  # short
        st.floats(min_value=LONG_S * 1.1, max_value=LONG_S * 3),  # long
    ),
    gap_s=st.floats(min_value=BOUNCE_S * 1.5, max_value=2.0),
    press_bounces=bounce_gaps,
    release_bounces=bounce_gaps,
)


def burst(start_s: float, final: bool, gaps: tuple[float, ...]) -> list[tuple[float, bool]]:
    """The contact reaching ``final`` with a bounce: it flips at each gap, then ends at final."""
    edges = [(start_s, final)]
    level, t = final, start_s
    for gap in gaps:
        t += gap
        level = not level
        edges.append((t, level))
    if level != final:
        edges.append((t + BOUNCE_S / 8, final))
    return edges


def timeline(presses: list[Use]) -> tuple[list[tuple[float, bool]], list[Pressed], float]:
    edges: list[tuple[float, bool]] = []
    expected: list[Pressed] = []
    t = 1.0
    for use in presses:
        down = burst(t, True, use.press_bounces)
        up = burst(down[-1][0] + use.hold_s, False, use.release_bounces)
        edges += down + up
        expected += [PRESS] if use.hold_s < LONG_S else [LONG, RELEASE]
        t = up[-1][0] + use.gap_s
    return edges, expected, t


@given(st.lists(uses, max_size=8))
def test_each_press_is_one_gesture_whatever_the_bounce(presses: list[Use]) -> None:
    edges, expected, end_s = timeline(presses)
    assert run(edges, end_s) == expected


@given(
    st.lists(uses, min_size=1, max_size=5),
    st.lists(st.floats(min_value=0, max_value=30), max_size=30),
)
def test_when_a_thread_looks_in_changes_nothing(presses: list[Use], ticks: list[float]) -> None:
    """A busy worker reports late, never differently: gestures depend on edge times only."""
    edges, expected, end_s = timeline(presses)
    assert run(edges, end_s, ticks) == expected


def test_a_glitch_shorter_than_the_bounce_time_is_nothing() -> None:
    edges = [(1.0, True), (1.004, False), (2.0, True), (2.002, False), (2.003, True)]
    edges.append((2.005, False))
    assert run(edges, 5.0) == []


def test_long_press_is_reported_while_held_and_its_end_once_let_go() -> None:
    m = machine()
    assert m.edge(1.0, True) == []
    assert m.advance(1.0 + BOUNCE_S) == []
    assert m.deadline() == 1.0 + LONG_S
    assert m.advance(1.0 + LONG_S - 0.001) == []
    assert m.advance(1.0 + LONG_S) == [LONG]
    assert m.advance(9.0) == []  # once
    assert m.edge(9.5, False) == []
    assert m.advance(9.5 + BOUNCE_S) == [RELEASE]
    assert m.deadline() is None


def test_a_glitch_while_held_does_not_cut_a_long_press_short() -> None:
    edges = [(1.0, True), (1.5, False), (1.503, True)]  # a wobble of the finger
    assert run(edges, 1.0 + LONG_S + 0.1) == [LONG]


def test_without_bounce_time_every_edge_counts() -> None:
    m = machine(bounce_s=0.0)
    out = []
    for i, level in enumerate([True, False, True, False]):
        out += m.edge(1.0 + i * 0.001, level)
    assert out == [PRESS, PRESS]


def test_a_button_held_at_start_stands_for_nothing_until_pressed_again() -> None:
    m = ButtonGestures("play", long_press_s=LONG_S, bounce_s=BOUNCE_S, pressed=True)
    assert m.advance(10.0) == []
    out = m.edge(11.0, False) + m.advance(12.0)
    assert out == [RELEASE]  # a release ends nothing that was repeating: harmless
    out = m.edge(13.0, True) + m.edge(13.2, False) + m.advance(14.0)
    assert out == [PRESS]


@given(st.lists(st.tuples(st.floats(0, 0.05), st.booleans()), max_size=60))
def test_gestures_always_read_as_press_or_long_then_release(
    steps: list[tuple[float, bool]],
) -> None:
    """Any edge stream at all (noise on a floating pin) yields well-formed gestures."""
    m = ButtonGestures("play", long_press_s=0.3, bounce_s=BOUNCE_S)
    t = 0.0
    out: list[Pressed] = []
    for gap, level in steps:
        t += gap
        out += m.edge(t, level)
    out += m.advance(t + 10)
    held = False
    for event in out:
        if event.gesture is Gesture.LONG:
            assert not held
            held = True
        elif event.gesture is Gesture.RELEASE:
            assert held
            held = False
        else:
            assert not held
