"""Property tests of the front-panel firmware's pure modules (CPython only: hypothesis)."""

from __future__ import annotations

import buttons
import encoder
import frames
import panel
from hypothesis import given
from hypothesis import strategies as st

# --- encoder: bounce never loses, adds or reverses a detent ---------------------------------

GRAY = [0, 1, 3, 2]  # forward order; the rest state is 3


def turn_with_bounce(detents: list[int], chatter: list[int]) -> list[int]:
    """Pin states for ``detents`` (each +1 or -1) from rest, with contact bounce inserted.

    ``chatter`` says, transition by transition, how many times the contact that just switched
    bounces back and forth (0-3), or (4-5) that the other contact blips once.
    """
    states = []
    index = GRAY.index(3)
    position = 0
    for detent in detents:
        for _ in range(4):
            previous = GRAY[index]
            index = (index + detent) % 4
            state = GRAY[index]
            states.append(state)
            bounce = chatter[position % len(chatter)] if chatter else 0
            position += 1
            if bounce < 4:
                states.extend([previous, state] * bounce)
            else:
                states.extend([state ^ (bounce - 3), state])
    return states


@given(
    st.lists(st.sampled_from([1, -1]), max_size=40),
    st.lists(st.integers(min_value=0, max_value=5), max_size=60),
)
def test_bouncing_contacts_give_exactly_the_detents_turned(
    detents: list[int], chatter: list[int]
) -> None:
    decoder = encoder.QuadratureDecoder()
    emitted = [d for d in (decoder.step(s) for s in turn_with_bounce(detents, chatter)) if d]
    assert emitted == detents
    assert decoder.invalid == 0


@given(
    st.integers(min_value=1, max_value=20),
    st.sampled_from([1, -1]),
    st.lists(st.integers(min_value=0, max_value=5), max_size=60),
    st.lists(st.integers(min_value=0, max_value=200), max_size=5),
)
def test_lost_transitions_never_reverse_a_detent(
    count: int, direction: int, chatter: list[int], lost: list[int]
) -> None:
    states = turn_with_bounce([direction] * count, chatter)
    for index in sorted({i % len(states) for i in lost}, reverse=True):
        del states[index]  # a sample missed: the decoder may see a jump of both contacts
    decoder = encoder.QuadratureDecoder()
    emitted = [d for d in (decoder.step(s) for s in states) if d]
    assert all(d == direction for d in emitted)
    assert len(emitted) <= count


@given(st.lists(st.integers(min_value=0, max_value=3), max_size=300))
def test_any_pin_states_decode_without_error(states: list[int]) -> None:
    decoder = encoder.QuadratureDecoder()
    assert abs(decoder.feed(states)) <= len(states) // 2


# --- buttons ----------------------------------------------------------------------------------


@given(
    st.lists(st.integers(min_value=1, max_value=buttons.DEBOUNCE_MS - 1), max_size=80),
    st.integers(min_value=0, max_value=(1 << 30) - 1),
)
def test_bounce_shorter_than_the_debounce_never_makes_an_event(gaps: list[int], start: int) -> None:
    button = buttons.Button("play")
    now = start
    level = False
    for gap in gaps:
        level = not level
        for t in range(gap):
            assert button.update(level, (now + t) & ((1 << 30) - 1)) is None
        now += gap
    assert not button.pressed


@given(
    st.integers(min_value=buttons.DEBOUNCE_MS + 5, max_value=3000),
    st.lists(st.integers(min_value=1, max_value=5), max_size=6),
    st.integers(min_value=0, max_value=(1 << 30) - 1),
)
def test_a_press_is_a_press_or_a_long_press_by_its_length(
    held_ms: int, bounce: list[int], start: int
) -> None:
    button = buttons.Button("play")
    events: list[tuple[int, str]] = []
    samples: list[tuple[int, bool]] = []
    now = 0
    settled = 0  # when the level last went to pressed for good
    for i, gap in enumerate(bounce):  # chatter as the contact closes
        samples.extend((now + t, i % 2 == 0) for t in range(gap))
        if i % 2 == 0:
            settled = now
        now += gap
    if len(bounce) % 2 == 0:
        settled = now
    samples.extend((now + t, True) for t in range(held_ms))
    now += held_ms
    samples.extend((now + t, False) for t in range(100))
    for t, level in samples:
        event = button.update(level, (start + t) & ((1 << 30) - 1))
        if event is not None:
            events.append((t, event))
    # the debounced press lasts from the settled contact to DEBOUNCE_MS after the release
    if now - settled + buttons.DEBOUNCE_MS > buttons.LONG_PRESS_MS:
        assert events == [(settled + buttons.LONG_PRESS_MS, "long"), (now + 20, "release")]
    else:
        assert events == [(now + 20, "press")]


# --- frames -----------------------------------------------------------------------------------

PAYLOAD_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in "$*")
payloads = st.text(alphabet=PAYLOAD_CHARS, min_size=1, max_size=frames.MAX_PAYLOAD_BYTES)


@given(payloads)
def test_frames_round_trip(payload: str) -> None:
    frame = frames.encode(payload)
    assert len(frame) <= frames.MAX_FRAME_BYTES
    assert frames.decode(frame) == payload
    assert frames.LineReader().feed(frame) == [payload]


@given(st.binary(max_size=500), st.lists(st.integers(min_value=1, max_value=50), max_size=20))
def test_any_bytes_fed_to_the_reader_never_raise(data: bytes, cuts: list[int]) -> None:
    reader = frames.LineReader()
    start = 0
    for size in [*cuts, len(data)]:
        for payload in reader.feed(data[start : start + size]):
            assert frames.decode(frames.encode(payload)) == payload
        start += size


@given(st.binary(max_size=300), st.lists(payloads, min_size=1, max_size=5))
def test_frames_after_garbage_are_found(garbage: bytes, sent: list[str]) -> None:
    reader = frames.LineReader()
    found = reader.feed(garbage + b"".join(frames.encode(p) for p in sent))
    assert found[-len(sent) :] == sent


@given(st.text(max_size=100))
def test_any_payload_parses_or_is_refused_without_error(payload: str) -> None:
    frames.parse_from_speaker(payload)
    frames.parse_from_panel(payload)


# --- panel: ENC frames carry every detent, in order -------------------------------------------


@given(st.lists(st.tuples(st.sampled_from([1, -1]), st.integers(min_value=0, max_value=30))))
def test_enc_frames_carry_every_detent(turns: list[tuple[int, int]]) -> None:
    p = panel.Panel("1")
    p.start(0)
    p.receive(frames.pong(), 0)
    now = 0
    sent: list[int] = []
    last_enc = -1000

    def collect(t: int) -> None:
        nonlocal last_enc
        for frame in p.poll(t):
            payload = frames.decode(frame)
            assert payload is not None
            if payload.startswith("ENC,"):
                assert t - last_enc >= panel.ENC_INTERVAL_MS
                last_enc = t
                sent.append(int(payload[4:]))

    for detent, wait in turns:
        p.turn(detent)
        for t in range(now, now + wait):
            collect(t)
        now += wait
    for t in range(now, now + 20 * (len(turns) + 1)):
        collect(t)
    assert 0 not in sent
    assert sum(sent) == sum(d for d, _ in turns)
    assert p.pending_detents == 0
