"""The speaker's side of the panel link and the panel's firmware (hardware/mcu, its own
copy of the framing, run here under CPython) agree on every frame, byte for byte."""

from __future__ import annotations

import frames as firmware
from hypothesis import given
from hypothesis import strategies as st

from hardware.controls.keymap import BUTTONS, Gesture
from hardware.controls.status import Mode, Pattern
from hardware.panel.frames import (
    TO_PANEL,
    Button,
    Encoder,
    FrameReader,
    Hello,
    Led,
    Message,
    Ping,
    Pong,
    State,
    Volume,
    encode_message,
)

VERSIONS = st.text(alphabet="0123456789.abcdefghijklmnopqrstuvwxyz-+", min_size=1, max_size=20)


@given(
    st.one_of(
        VERSIONS.map(lambda v: (firmware.hello(v), Hello(firmware=v))),
        st.tuples(st.sampled_from(BUTTONS), st.sampled_from(Gesture)).map(
            lambda b: (firmware.button(b[0], b[1].value), Button(name=b[0], event=b[1]))
        ),
        st.integers(-1000, 1000).filter(bool).map(lambda n: (firmware.turn(n), Encoder(detents=n))),
        st.just((firmware.ping(), Ping())),
    )
)
def test_what_the_firmware_sends_the_speaker_reads(case: tuple[bytes, Message]) -> None:
    wire, message = case
    assert wire == encode_message(message)
    assert FrameReader().feed(wire) == [message]


@given(
    st.one_of(
        st.sampled_from(Mode).map(lambda m: (State(mode=m), ("STATE", m.value))),
        st.integers(0, 100).map(lambda n: (Volume(percent=n), ("VOL", str(n)))),
        st.sampled_from(Pattern).map(lambda p: (Led(pattern=p), ("LED", p.value))),
        st.just((Pong(), ("PONG", ""))),
    )
)
def test_what_the_speaker_sends_the_firmware_reads(case: tuple[Message, tuple[str, str]]) -> None:
    message, parsed = case
    reader = firmware.LineReader()
    payloads = reader.feed(encode_message(message))
    assert [firmware.parse_from_speaker(p) for p in payloads] == [parsed]
    assert FrameReader(TO_PANEL).feed(encode_message(message)) == [message]
