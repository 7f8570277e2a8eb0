"""Button debounce and long press, and the tick arithmetic under them.

Plain-assert cases run by pytest under CPython and by runner.py under MicroPython.
"""

import buttons
from ticks import TICKS_MAX, TICKS_PERIOD, ticks_add, ticks_diff


def feed(button: buttons.Button, samples: list[tuple[int, bool]]) -> list[tuple[int, str]]:
    """Feed ``(now_ms, pressed)`` samples; return ``(now_ms, event)`` for each event."""
    events: list[tuple[int, str]] = []
    for now, pressed in samples:
        event = button.update(pressed, now)
        if event is not None:
            events.append((now, event))
    return events


def hold(level: bool, start: int, end: int, step: int = 1) -> list[tuple[int, bool]]:
    return [(t, level) for t in range(start, end, step)]


def test_ticks_diff_is_signed_and_wraps() -> None:
    assert ticks_diff(10, 3) == 7
    assert ticks_diff(3, 10) == -7
    assert ticks_diff(5, TICKS_MAX - 4) == 10
    assert ticks_add(TICKS_MAX, 1) == 0
    assert ticks_add(0, -1) == TICKS_MAX
    assert ticks_diff(ticks_add(123, TICKS_PERIOD // 2 - 1), 123) == TICKS_PERIOD // 2 - 1


def test_a_short_press_is_sent_at_its_release() -> None:
    button = buttons.Button("play")
    samples = hold(False, 0, 10) + hold(True, 10, 200) + hold(False, 200, 300)
    assert feed(button, samples) == [(220, "press")]


def test_a_long_press_is_sent_once_then_its_release() -> None:
    button = buttons.Button("play")
    samples = hold(True, 0, 2000, 5) + hold(False, 2000, 2100, 5)
    assert feed(button, samples) == [(800, "long"), (2020, "release")]


def test_bounce_shorter_than_the_debounce_is_ignored() -> None:
    button = buttons.Button("next")
    samples = []
    for t in range(0, 400, 4):
        samples.append((t, t % 8 == 0))  # toggling every 4 ms: never stable for 20 ms
    assert feed(button, samples) == []
    assert not button.pressed


def test_bounce_at_both_edges_still_makes_one_press() -> None:
    button = buttons.Button("prev")
    bounce_in = [(0, True), (2, False), (5, True), (6, False), (9, True)]
    bounce_out = [(300, False), (303, True), (305, False), (307, True), (309, False)]
    samples = bounce_in + hold(True, 10, 300) + bounce_out + hold(False, 310, 400)
    assert feed(button, samples) == [(329, "press")]


def test_long_press_timing_counts_from_the_settled_press() -> None:
    button = buttons.Button("knob", debounce_ms=20, long_press_ms=800)
    samples = [(0, True), (3, False), (4, True)]
    samples.extend(hold(True, 5, 900))
    assert feed(button, samples) == [(804, "long")]


def test_button_timing_survives_the_tick_counter_wrapping() -> None:
    button = buttons.Button("vol_up")
    start = TICKS_MAX - 100
    samples = [(ticks_add(start, t), t < 850) for t in range(0, 1000, 5)]
    events = feed(button, samples)
    assert [event for _, event in events] == ["long", "release"]
    assert events[0][0] == ticks_add(start, 800)
