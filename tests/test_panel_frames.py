"""The front panel's wire format: exact bytes, round trips, and a reader that survives
anything a serial line can deliver (noise, a panel restarting mid-frame, a line with
no end) while still finding every valid frame and saying why it dropped the rest."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardware.controls.keymap import BUTTONS, Gesture
from hardware.controls.status import Mode, Pattern
from hardware.errors import FrameError
from hardware.panel.frames import (
    MAX_FRAME_BYTES,
    TO_PANEL,
    Button,
    DropReason,
    Encoder,
    FrameReader,
    Hello,
    Led,
    Message,
    Ping,
    Pong,
    State,
    Volume,
    encode,
    encode_message,
)

# Frames as they are on the wire, checksums worked out by hand (XOR of the payload).
CAPTURED: list[tuple[bytes, Message]] = [
    (b"$ENC,+3*7C\r\n", Encoder(detents=3)),
    (b"$ENC,-1*78\r\n", Encoder(detents=-1)),
    (b"$HELLO,1,0.1.0*42\r\n", Hello(firmware="0.1.0")),
    (b"$BTN,play,press*3B\r\n", Button(name="play", event=Gesture.PRESS)),
    (b"$BTN,vol_up,long*7D\r\n", Button(name="vol_up", event=Gesture.LONG)),
    (b"$PING*10\r\n", Ping()),
]
CAPTURED_TO_PANEL: list[tuple[bytes, Message]] = [
    (b"$STATE,playing*1F\r\n", State(mode=Mode.PLAYING)),
    (b"$VOL,42*7F\r\n", Volume(percent=42)),
    (b"$LED,buffering*01\r\n", Led(pattern=Pattern.BUFFERING)),
    (b"$PONG*16\r\n", Pong()),
]


def frame_with_sum(payload: bytes) -> bytes:
    """A frame whose checksum is right, whatever the payload says."""
    total = 0
    for b in payload:
        total ^= b
    return b"$%s*%02X\r\n" % (payload, total)


@pytest.mark.parametrize(("wire", "message"), CAPTURED + CAPTURED_TO_PANEL)
def test_captured_frames_encode_to_the_exact_bytes(wire: bytes, message: Message) -> None:
    assert encode_message(message) == wire


@pytest.mark.parametrize(("wire", "message"), CAPTURED)
def test_captured_frames_from_a_panel_are_read(wire: bytes, message: Message) -> None:
    reader = FrameReader()
    assert reader.feed(wire) == [message]
    assert reader.received == 1
    assert sum(reader.dropped.values()) == 0


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"$ENC,3*57\r\n", Encoder(detents=3)),  # no sign: a count printed with %d
        (b"$ENC,+3*7c\r\n", Encoder(detents=3)),  # lower-case hex
        (b"$PING*10\n", Ping()),  # a bare line feed
        (b"\r\n\n$PING*10\r\n\r\n", Ping()),  # blank lines around it are no garbage
        (frame_with_sum(b"ENC,-1000"), Encoder(detents=-1000)),
    ],
)
def test_what_a_hurried_panel_sends_is_still_read(wire: bytes, message: Message) -> None:
    reader = FrameReader()
    assert reader.feed(wire) == [message]
    assert sum(reader.dropped.values()) == 0


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"$ENC,+3*7D\r\n", DropReason.BAD_CHECKSUM),
        (b"$ENC,+3\r\n", DropReason.BAD_CHECKSUM),  # none at all
        (b"$ENC,+3*7\r\n", DropReason.BAD_CHECKSUM),
        (b"$ENC,+3*ZZ\r\n", DropReason.BAD_CHECKSUM),
        (frame_with_sum(b"VOLUME,3"), DropReason.UNKNOWN_TYPE),
        (frame_with_sum(b"STATE,playing"), DropReason.UNKNOWN_TYPE),  # the speaker's, not ours
        (frame_with_sum(b""), DropReason.UNKNOWN_TYPE),
        (frame_with_sum(b"enc,+3"), DropReason.UNKNOWN_TYPE),
        (frame_with_sum(b"HELLO,2,0.1.0"), DropReason.BAD_FIELD),  # another protocol version
        (frame_with_sum(b"HELLO,1"), DropReason.BAD_FIELD),
        (frame_with_sum(b"HELLO,1,"), DropReason.BAD_FIELD),
        (frame_with_sum(b"BTN,stop,press"), DropReason.BAD_FIELD),
        (frame_with_sum(b"BTN,play,tap"), DropReason.BAD_FIELD),
        (frame_with_sum(b"BTN,play"), DropReason.BAD_FIELD),
        (frame_with_sum(b"ENC,+1001"), DropReason.BAD_FIELD),
        (frame_with_sum(b"ENC,1.5"), DropReason.BAD_FIELD),
        (frame_with_sum(b"ENC,++3"), DropReason.BAD_FIELD),
        (frame_with_sum(b"ENC, 3"), DropReason.BAD_FIELD),
        (frame_with_sum(b"ENC,"), DropReason.BAD_FIELD),
        (frame_with_sum(b"PING,1"), DropReason.BAD_FIELD),
        (b"$" + b"A" * 200 + b"\r\n", DropReason.TOO_LONG),
        (frame_with_sum(b"HELLO,1," + b"x" * 70), DropReason.TOO_LONG),
        (b"$PI\xffNG*10\r\n", DropReason.GARBAGE),
        (b"$PI\x00NG*10\r\n", DropReason.GARBAGE),
        (b"noise", DropReason.GARBAGE),
        (b"$ENC,+$PING*10\r\n", DropReason.GARBAGE),  # cut short by the next "$"
    ],
)
def test_each_kind_of_bad_frame_is_dropped_and_counted(wire: bytes, reason: DropReason) -> None:
    reader = FrameReader()
    messages = reader.feed(wire)
    assert reader.dropped[reason] == 1
    assert sum(reader.dropped.values()) == 1
    assert reason in reader.first_drop
    # ... and the next frame is read as if nothing had happened.
    assert reader.feed(b"$ENC,+3*7C\r\n") == [Encoder(detents=3)]
    assert len(messages) == (1 if wire.endswith(b"$PING*10\r\n") else 0)


def test_a_panel_of_another_protocol_version_is_told_apart_in_words() -> None:
    reader = FrameReader()
    assert reader.feed(frame_with_sum(b"HELLO,2,9.0")) == []
    assert "protocol version '2'" in reader.first_drop[DropReason.BAD_FIELD]


def test_a_line_without_an_end_never_grows_the_buffer() -> None:
    reader = FrameReader()
    for _ in range(1000):
        reader.feed(b"$" + b"x" * 63)  # every "$" starts a new frame and cuts the last
        assert reader.buffered_bytes <= MAX_FRAME_BYTES
    reader.feed(b"$")
    for _ in range(1000):
        reader.feed(b"y" * 100)
        assert reader.buffered_bytes <= MAX_FRAME_BYTES
    assert reader.dropped[DropReason.TOO_LONG] == 1  # one line, one drop
    assert reader.feed(b"$PING*10\r\n") == [Ping()]


def test_the_longest_frame_fits_and_one_more_byte_does_not() -> None:
    payload = "HELLO,1," + "v" * (MAX_FRAME_BYTES - 6 - len("HELLO,1,"))
    wire = encode(*payload.split(","))
    assert len(wire) == MAX_FRAME_BYTES
    assert FrameReader().feed(wire) == [Hello(firmware=payload.split(",")[2])]
    with pytest.raises(FrameError, match="at most 82 bytes"):
        encode(*(payload + "v").split(","))
    reader = FrameReader()
    assert reader.feed(frame_with_sum((payload + "v").encode())) == []
    assert reader.dropped[DropReason.TOO_LONG] == 1


@pytest.mark.parametrize("fields", [(), ("",), ("ENC", "+3,4"), ("HELLO", "1", "1.0*"), ("é",)])
def test_encode_refuses_what_the_protocol_cannot_carry(fields: tuple[str, ...]) -> None:
    with pytest.raises(FrameError):
        encode(*fields)


# --- hypothesis ---------------------------------------------------------------------------

FIELD_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="$*,"),
    min_size=1,
    max_size=40,
)
FROM_PANEL_MESSAGES = st.one_of(
    st.builds(Hello, firmware=FIELD_TEXT),
    st.builds(Button, name=st.sampled_from(BUTTONS), event=st.sampled_from(Gesture)),
    st.builds(Encoder, detents=st.integers(-1000, 1000)),
    st.just(Ping()),
)
TO_PANEL_MESSAGES = st.one_of(
    st.builds(State, mode=st.sampled_from(Mode)),
    st.builds(Volume, percent=st.integers(0, 100)),
    st.builds(Led, pattern=st.sampled_from(Pattern)),
    st.just(Pong()),
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@given(st.lists(FROM_PANEL_MESSAGES, max_size=20), st.lists(st.integers(0, 10_000)))
def test_messages_round_trip_in_any_split(messages: list[Message], cuts: list[int]) -> None:
    wire = b"".join(encode_message(m) for m in messages)
    reader = FrameReader()
    out = [m for piece in split(wire, cuts) for m in reader.feed(piece)]
    assert out == messages
    assert sum(reader.dropped.values()) == 0


@given(st.lists(TO_PANEL_MESSAGES, max_size=20))
def test_the_speakers_messages_round_trip(messages: list[Message]) -> None:
    reader = FrameReader(TO_PANEL)
    assert reader.feed(b"".join(encode_message(m) for m in messages)) == messages


PIECES = st.sampled_from([b"$", b"\r\n", b"\n", b"*", b"$PING*1", b"A" * 90, b"\xff"])
#: Lines as a noisy link delivers them: frames, noise, pieces of frames, over-long runs.
WIRE = st.lists(
    st.one_of(st.binary(max_size=50), FROM_PANEL_MESSAGES.map(encode_message), PIECES),
    max_size=15,
).map(b"".join)


@given(st.one_of(st.binary(max_size=600), WIRE), st.lists(st.integers(0, 10_000), max_size=30))
def test_any_bytes_in_any_split_never_raise_and_read_the_same(data: bytes, cuts: list[int]) -> None:
    whole = FrameReader()
    expected = whole.feed(data)
    pieces = FrameReader()
    got = []
    for piece in split(data, cuts):
        got.extend(pieces.feed(piece))
        assert pieces.buffered_bytes <= MAX_FRAME_BYTES
    assert got == expected
    assert pieces.dropped == whole.dropped
    assert pieces.received == whole.received == len(expected)


NOISY = st.binary(max_size=300).map(lambda b: b.replace(b"$", b"#"))


@given(WIRE, FROM_PANEL_MESSAGES)
def test_a_valid_frame_after_any_garbage_is_found(junk: bytes, message: Message) -> None:
    reader = FrameReader()
    out = reader.feed(junk + encode_message(message))
    assert out[-1] == message


@given(NOISY, st.lists(FROM_PANEL_MESSAGES, min_size=1, max_size=5))
def test_garbage_before_frames_is_one_drop(junk: bytes, messages: list[Message]) -> None:
    reader = FrameReader()
    out = reader.feed(junk + b"".join(encode_message(m) for m in messages))
    assert out == messages
    is_garbage = bool(junk.strip(b"\r\n"))
    assert reader.dropped[DropReason.GARBAGE] == int(is_garbage)
    assert sum(reader.dropped.values()) == int(is_garbage)
