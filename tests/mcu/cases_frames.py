"""Frames of the front-panel link: encoding, parsing, the resynchronising reader.

Plain-assert cases run by pytest under CPython and by runner.py under MicroPython.
"""

import frames


def test_a_frame_is_dollar_payload_star_checksum_crlf() -> None:
    assert frames.encode("PING") == b"$PING*10\r\n"
    assert frames.ping() == b"$PING*10\r\n"
    assert frames.pong() == b"$PONG*16\r\n"


def test_the_checksum_is_the_xor_of_the_payload_bytes() -> None:
    value = 0
    for byte in b"BTN,play,press":
        value ^= byte
    assert frames.checksum(b"BTN,play,press") == value
    assert frames.button("play", "press").endswith(b"*%02X\r\n" % value)


def test_panel_messages_have_their_documented_shapes() -> None:
    assert frames.hello("1.0.0") == frames.encode("HELLO,1,1.0.0")
    assert frames.turn(3) == frames.encode("ENC,+3")
    assert frames.turn(-1) == frames.encode("ENC,-1")
    assert frames.button("vol_down", "long") == frames.encode("BTN,vol_down,long")


def test_no_frame_for_zero_detents() -> None:
    try:
        frames.turn(0)
    except ValueError:
        return
    raise AssertionError("ENC,+0 must not be sent")


def test_decode_takes_back_what_encode_made() -> None:
    for payload in ("PING", "STATE,playing", "VOL,0", "LED,not_paired", "ENC,-12"):
        assert frames.decode(frames.encode(payload)) == payload


def test_decode_accepts_a_bare_line_feed_and_lower_case_hex() -> None:
    assert frames.decode(b"$PONG*16\n") == "PONG"
    assert frames.decode(b"$ENC,+3*7c\r\n") == "ENC,+3"


def test_decode_refuses_bad_frames() -> None:
    assert frames.decode(b"$PING*11\r\n") is None  # checksum
    assert frames.decode(b"PING*1C\r\n") is None  # no $
    assert frames.decode(b"$PING1C\r\n") is None  # no *
    assert frames.decode(b"$PING*+C\r\n") is None  # not hex
    assert frames.decode(b"$*00\r\n") is None  # empty payload
    assert frames.decode(b"$PI\x01NG*11\r\n") is None  # control character
    long_payload = "STATE," + "x" * 80
    value = frames.checksum(long_payload.encode())
    assert frames.decode(b"$" + long_payload.encode() + b"*%02X\r\n" % value) is None


def test_encode_refuses_what_no_frame_can_carry() -> None:
    for payload in ("", "A*B", "A$B", "x" * 77, "caf\u00e9"):
        try:
            frames.encode(payload)
        except ValueError:
            continue
        raise AssertionError("encoded %r" % payload)
    assert len(frames.encode("x" * 76)) == frames.MAX_FRAME_BYTES


def test_the_reader_finds_frames_split_anywhere() -> None:
    stream = frames.state("playing") + frames.volume(40) + frames.pong()
    for size in (1, 2, 3, 7, 100):
        reader = frames.LineReader()
        found: list[str] = []
        for start in range(0, len(stream), size):
            found.extend(reader.feed(stream[start : start + size]))
        assert found == ["STATE,playing", "VOL,40", "PONG"]
        assert reader.dropped == 0


def test_the_reader_drops_bad_frames_and_resynchronises_at_the_next_dollar() -> None:
    reader = frames.LineReader()
    garbage = b"\x00\xff noise $STATE,pla" + b"$PING*00\r\n" + b"$" + b"A" * 200
    found = reader.feed(garbage + frames.pong() + b"junk\r\n" + frames.volume(7))
    assert found == ["PONG", "VOL,7"]
    assert reader.dropped == 3  # cut short by "$", bad checksum, too long
    assert reader.stray_bytes > 0
    assert reader.frames == 2


def test_speaker_messages_parse_into_type_and_argument() -> None:
    parse = frames.parse_from_speaker
    assert parse("STATE,buffering") == ("STATE", "buffering")
    assert parse("VOL,100") == ("VOL", "100")
    assert parse("VOL,007") == ("VOL", "7")
    assert parse("LED,spinning_rainbow") == ("LED", "spinning_rainbow")
    assert parse("PONG") == ("PONG", "")


def test_bad_speaker_messages_are_refused() -> None:
    parse = frames.parse_from_speaker
    for payload in ("STATE,dancing", "STATE", "VOL,101", "VOL,-1", "VOL,+5", "VOL,", "VOL,1,2"):
        assert parse(payload) is None, payload
    for payload in ("LED,", "PONG,1", "HELLO,1,x", "NOPE", "", "VOL,1e2", "VOL, 5"):
        assert parse(payload) is None, payload


def test_panel_messages_parse_as_the_speaker_reads_them() -> None:
    parse = frames.parse_from_panel
    assert parse("HELLO,1,1.0.0") == ("HELLO", "1", "1.0.0")
    assert parse("BTN,knob,release") == ("BTN", "knob", "release")
    assert parse("ENC,-3") == ("ENC", "-3")
    assert parse("PING") == ("PING",)
    for payload in ("HELLO,2,x", "BTN,stop,press", "BTN,play,hold", "ENC,3", "ENC,+0", "ENC,+"):
        assert parse(payload) is None, payload
