"""The panel's logic: what it sends and what it shows, on a synthetic clock.

Plain-assert cases run by pytest under CPython and by runner.py under MicroPython.
"""

import frames
import lights
import panel
from ticks import TICKS_MAX, ticks_add


def started(now: int = 0) -> tuple[panel.Panel, bytes]:
    p = panel.Panel("9.9.9")
    return p, p.start(now)


def sent(p: panel.Panel, start: int, end: int, step: int = 5) -> list[bytes]:
    out: list[bytes] = []
    for t in range(start, end, step):
        out.extend(p.poll(t))
    return out


def test_start_says_hello_with_the_protocol_and_firmware_versions() -> None:
    _, hello = started()
    assert hello == frames.encode("HELLO,1,9.9.9")


def test_pings_every_interval() -> None:
    p, _ = started()
    p.receive(frames.pong(), 0)
    out = sent(p, 0, 4001)
    assert out == [frames.ping(), frames.ping()]


def test_hello_again_when_the_speaker_stops_answering() -> None:
    p, _ = started()
    p.receive(frames.state("playing"), 100)
    assert p.link_up
    assert p.pattern() == "playing"
    out = sent(p, 0, 6200, 100)
    assert frames.hello("9.9.9") in out
    assert not p.link_up
    assert p.pattern() == "connecting"
    assert p.hellos_sent == 2
    # at most one HELLO per link timeout
    out = sent(p, 6200, 12200, 100)
    assert out.count(frames.hello("9.9.9")) == 1


def test_pongs_keep_the_link_up() -> None:
    p, _ = started()
    out: list[bytes] = []
    for t in range(0, 30000, 50):
        out.extend(p.poll(t))
        if out and out[-1] == frames.ping():
            p.receive(frames.pong(), t + 20)
    assert frames.hello("9.9.9") not in out
    assert p.link_up


def test_booting_until_the_speaker_first_answers() -> None:
    p, _ = started()
    assert p.pattern() == "booting"
    p.receive(frames.pong(), 10)
    assert p.pattern() == "idle"


def test_led_frames_choose_the_pattern_and_unknown_names_are_counted() -> None:
    p, _ = started()
    p.receive(frames.state("playing") + frames.led("not_paired"), 10)
    assert p.pattern() == "not_paired"
    p.receive(frames.led("disco"), 20)
    assert p.pattern() == lights.DEFAULT_PATTERN
    assert p.unknown_patterns == 1
    assert p.bad_frames == 0


def test_state_maps_to_a_pattern_without_led_frames() -> None:
    p, _ = started()
    for state, pattern in (("buffering", "buffering"), ("error", "error"), ("paused", "paused")):
        p.receive(frames.state(state), 10)
        assert p.pattern() == pattern


def test_a_volume_change_shows_for_a_while() -> None:
    p, _ = started()
    p.receive(frames.volume(40), 10)
    assert p.shown_volume(20) == lights.NO_VOLUME  # the first VOL after HELLO is no change
    p.receive(frames.volume(45), 1000)
    assert p.shown_volume(1001) == 45
    assert p.shown_volume(2499) == 45
    assert p.shown_volume(2500) == lights.NO_VOLUME
    p.receive(frames.volume(45), 3000)
    assert p.shown_volume(3001) == lights.NO_VOLUME


def test_bad_frames_are_counted_and_change_nothing() -> None:
    p, _ = started()
    p.receive(b"$STATE,playing*00\r\n" + frames.encode("STATE,dancing") + b"\xff\xfe", 10)
    p.receive(frames.encode("VOL,300") + frames.encode("WHAT,1"), 10)
    assert p.bad_frames == 4
    assert p.state == "idle"
    assert p.volume == -1
    assert not p.link_up


def test_detents_are_coalesced_into_one_enc_per_interval() -> None:
    p, _ = started()
    p.receive(frames.pong(), 0)
    for _ in range(5):
        p.turn(1)
    assert p.poll(1) == [frames.turn(5)]
    p.turn(1)
    assert p.poll(5) == []
    assert p.poll(16) == [frames.turn(1)]
    assert p.pending_detents == 0


def test_a_turn_back_is_sent_after_the_turn_forward_never_merged() -> None:
    p, _ = started()
    p.receive(frames.pong(), 0)
    for detent in (1, 1, 1, -1, -1, 1):
        p.turn(detent)
    out = sent(p, 1, 100, 1)
    assert [f for f in out if f != frames.ping()] == [
        frames.turn(3),
        frames.turn(-2),
        frames.turn(1),
    ]
    times = []
    p.turn(1)
    p.turn(-1)
    for t in range(100, 200):
        if p.poll(t):
            times.append(t)
    assert times[1] - times[0] >= panel.ENC_INTERVAL_MS


def test_a_long_backlog_keeps_the_net_count() -> None:
    p, _ = started()
    for i in range(40):
        p.turn(1 if i % 2 else -1)
    p.turn(3)
    total = 0
    for t in range(1, 2000):
        for frame in p.poll(t):
            payload = frames.decode(frame)
            if payload is not None and payload.startswith("ENC,"):
                total += int(payload[4:])
    assert total == 3


def test_the_panel_survives_the_tick_counter_wrapping() -> None:
    start = TICKS_MAX - 1000
    p, _ = started(start)
    p.receive(frames.pong(), start)
    out = sent(p, 0, 2100, 10)  # these ticks are ~2**30 after start: half a period away
    assert out  # nothing hangs on a "negative" time
    p2, _ = started(start)
    p2.receive(frames.pong(), start)
    pings = 0
    for t in range(0, 4100, 10):
        pings += p2.poll(ticks_add(start, t)).count(frames.ping())
    assert pings == 2
